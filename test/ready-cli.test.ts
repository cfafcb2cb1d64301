import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import path from 'node:path'
import { cleanEnv, newSecret, runCli } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { freePorts } from './helpers/ports.ts'
import { binPath } from './helpers/paths.ts'
import { until } from './helpers/until.ts'

describe('wait-ready, status --watch, /healthz and /readyz', () => {
  const harness = useHarness()

  it('wait-ready exits 1 after its timeout when no agent answers, and 2 on a bad --timeout', async () => {
    const dir = await harness.tmpDir()
    const control = path.join(dir, 'nobody.sock')
    const startedAt = Date.now()
    const result = await runCli(['wait-ready', '--timeout', '1', '--control', control])
    expect(result.code).toBe(1)
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_000)
    expect(result.stderr).toMatch(/not ready after 1 s: cannot reach the agent/)
    const bad = await runCli(['wait-ready', '--timeout', 'soon', '--control', control])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--timeout must be a positive number of seconds, got "soon"/)
  })

  it('a first node (no peers) is ready after its scan: wait-ready exits 0, /readyz says 200, status shows the classes', async () => {
    const [httpPort] = (await freePorts(1)) as [number]
    const agent = await harness.agent({ name: 'solo', secret: await newSecret(), env: { SYNC_AGENT_HTTP: `127.0.0.1:${httpPort}` } })
    // wait-ready started before the agent: it waits for it to come up
    const waiting = runCli(['wait-ready', '--timeout', '60', '--control', agent.control], { timeoutMs: 70_000 })
    await agent.start()
    const result = await waiting
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^ready: no peers configured/)
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok' })
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ ready: true, classes: [{ name: 'critical', requiredForReady: true }, { name: 'uploads' }, { name: 'other' }] })
    expect((await fetch(`http://127.0.0.1:${httpPort}/nothing-here`)).status).toBe(404)
    expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`, { method: 'POST' })).status).toBe(405)
    const human = await runCli(['status', '--control', agent.control])
    expect(human.stdout).toMatch(/^ready {4}no peers configured/m)
    expect(human.stdout).toMatch(/^ {2}critical\*/m)
  })

  it('status --watch prints a line per interval until interrupted', async () => {
    const agent = await harness.agent({ name: 'w', secret: await newSecret() })
    await agent.start()
    const child = spawn(process.execPath, [binPath, 'status', '--watch', '--interval', '0.2', '--control', agent.control], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
    await until(() => out.split('\n').filter((l) => l.includes('state=')).length >= 3, { timeoutMs: 15_000, message: 'three status lines' })
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    expect(out).toMatch(/ready=true inSync=true files=0/)
    // from the second line on, the peer traffic's rates since the line before
    const lines = out.split('\n').filter((l) => l.includes('state='))
    expect(lines[0]).not.toMatch(/ in=/)
    expect(lines[1]).toMatch(/ peers=0\/0 in=0 B\/s out=0 B\/s /)
  })

  it('an HTTP port in use is a clear start-up error (exit 2)', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()))
    const port = (blocker.address() as { port: number }).port
    try {
      const agent = await harness.agent({ name: 'busy', secret: await newSecret(), env: { SYNC_AGENT_HTTP: String(port) } })
      const result = await runCli(['start'], { env: agent.env() as Record<string, string> })
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(`cannot listen for HTTP on 127.0.0.1:${port}: address in use`)
    } finally {
      blocker.close()
    }
  })
})
