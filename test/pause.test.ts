import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusReport } from '../packages/shared/dist/index.js'
import { newSecret, runCli } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { freePort } from './helpers/ports.ts'
import { waitConverged } from './helpers/sync.ts'
import { stays, until } from './helpers/until.ts'

/**
 * `sync-agent pause` / `resume` (Syncthing's and Resilio's pause): while paused, a node applies
 * no peer's change and publishes none of its own (a plugin update half-written there is not
 * sent), but still fetches a file a page asks for now; the pause survives a restart; on resume
 * both ways catch up.
 */
describe('sync-agent pause and resume', () => {
  const harness = useHarness()

  it('holds both ways, across a restart, but for files pages ask for; resume catches up', async () => {
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret })
    const http = await freePort()
    const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_HTTP: String(http) } })
    await writeFiles(a.folder, { 'index.php': '<?php // v1\n' })
    await a.start()
    await b.start()
    await waitConverged([a, b])

    const paused = await runCli(['pause', '--control', b.control])
    expect(paused.code, paused.stderr).toBe(0)
    expect(paused.stdout).toMatch(/^paused since \d{4}-\d\d-\d\dT[\d:.]+Z: nothing is applied or published until `sync-agent resume`\n$/)
    const status = async () => (await b.status()) as unknown as StatusReport
    expect((await status()).pausedSince).toEqual(expect.any(Number))
    expect((await runCli(['status', '--control', b.control])).stdout).toMatch(/^PAUSED   since .*: nothing is applied or published/m)

    const photo = randomBytes(50 * 1024)
    await writeFiles(a.folder, { 'uploads/2026/11/photo.jpg': photo, 'themes/t/style.css': 'from A\n' })
    await writeFiles(b.folder, { 'plugins/p/half-updated.php': '<?php // from B\n' })
    await until(async () => (await status()).pending >= 3, { timeoutMs: 20_000, message: 'B knows of A\'s two changes and its own' })
    const onB = (p: string) => fs.readFile(path.join(b.folder, p)).catch(() => null)
    const onA = (p: string) => fs.readFile(path.join(a.folder, p)).catch(() => null)
    await stays(async () => (await onB('themes/t/style.css')) === null && (await onA('plugins/p/half-updated.php')) === null, { durationMs: 2_000, message: 'nothing crosses while paused' })
    expect((await status()).inSync).toBe(false)

    // a file a page asks for now still comes
    const res = await fetch(`http://127.0.0.1:${http}/files/uploads/2026/11/photo.jpg`)
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(photo)).toBe(true)

    // still paused after a restart, and says so
    await b.restart()
    expect((await status()).pausedSince).toEqual(expect.any(Number))
    expect(b.stdout).toMatch(/"level":"warn".*"msg":"paused \(sync-agent pause\): nothing is applied or published until `sync-agent resume`"/)
    await stays(async () => (await onB('themes/t/style.css')) === null && (await onA('plugins/p/half-updated.php')) === null, { durationMs: 1_000, message: 'still nothing crosses' })

    const resumed = await runCli(['resume', '--control', b.control])
    expect(resumed.stdout).toBe('running: changes are applied and published\n')
    await waitConverged([a, b])
    expect((await onB('themes/t/style.css'))?.toString()).toBe('from A\n')
    expect((await onA('plugins/p/half-updated.php'))?.toString()).toBe('<?php // from B\n')
    expect((await status()).pausedSince).toBeNull()
    expect((await runCli(['resume', '--control', b.control])).stdout).toBe('running: changes are applied and published\n')
    expect((await runCli(['pause', 'now', '--control', b.control])).code).toBe(2)
  })
})
