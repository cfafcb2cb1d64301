import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusReport } from '../packages/shared/dist/index.js'
import { newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { until } from './helpers/until.ts'

/**
 * The event-loop watchdog on the real agent: its main thread is made to spin for good (the
 * test's only hook: a preload, `--require` through NODE_OPTIONS, that starts a loop on
 * SIGUSR2), as in fault seeds 11009 and 3125. The agent must end itself after `watchdogS`,
 * saying where it spun, and start again where it was.
 */
describe('event-loop watchdog', () => {
  const harness = useHarness()

  it('ends an agent whose event loop is stuck, logs where it spins, and the agent resumes after a restart and reports the stall', async () => {
    const dir = await harness.tmpDir()
    const preload = path.join(dir, 'spin-on-signal.cjs')
    await fs.writeFile(preload, "process.on('SIGUSR2', () => setImmediate(function spinForever() { for (;;) {} }))\n")
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret })
    const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { NODE_OPTIONS: `--require ${preload}`, SYNC_AGENT_WATCHDOG_S: '10' } })
    await fs.writeFile(path.join(a.folder, 'index.php'), '<?php // v1\n')
    await a.start()
    await b.start()
    await waitConverged([a, b])

    const stuckAt = Date.now()
    process.kill(b.pid as number, 'SIGUSR2')
    // meanwhile the site on A goes on
    await fs.writeFile(path.join(a.folder, 'new-upload.txt'), 'written while B was stuck\n')
    await until(async () => !b.isRunning, { timeoutMs: 60_000, message: 'B ends itself' })
    const stuckForMs = Date.now() - stuckAt
    expect(b.exitInfo).toEqual({ code: null, signal: 'SIGKILL' })
    expect(stuckForMs).toBeGreaterThanOrEqual(10_000)
    const fatal = b.stdout.split('\n').filter((l) => l.includes('"E_LOOP_STALLED"')).map((l) => JSON.parse(l) as { level: string; samples?: string[] })
    expect(fatal, b.tail(20)).toHaveLength(2)
    expect(fatal.every((l) => l.level === 'fatal')).toBe(true)
    const samples = fatal[1]?.samples ?? []
    expect(samples).toHaveLength(5)
    for (const s of samples) expect(s).toMatch(/^spinForever spin-on-signal\.cjs:1:/)

    // it left them for its next run too
    expect(JSON.parse(await fs.readFile(path.join(b.data, 'last-stall.json'), 'utf8'))).toMatchObject({ samples })

    // what systemd or Docker does: start it again; it catches up
    await b.start()
    await waitConverged([a, b])
    expect(await fs.readFile(path.join(b.folder, 'new-upload.txt'), 'utf8')).toBe('written while B was stuck\n')
    // and says, in its status, that its previous run ended itself, and where it was: once
    const errors = ((await b.status()) as unknown as StatusReport).errors.filter((e) => e.code === 'E_LOOP_STALLED')
    expect(errors).toHaveLength(1)
    expect(errors[0]?.message).toMatch(/^the previous run ended itself at .*: its event loop had not turned for 1\d s; it was in spinForever spin-on-signal\.cjs:1:/)
    await expect(fs.stat(path.join(b.data, 'last-stall.json'))).rejects.toMatchObject({ code: 'ENOENT' })
  }, 120_000)
})
