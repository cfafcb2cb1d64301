import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
import { exists } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { repoRoot } from './helpers/paths.ts'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Agent, AgentStatus } from './helpers/agent.ts'
import { until } from './helpers/until.ts'

/**
 * The status once the agent is ready and has indexed `files` files: a node with no peers is
 * ready at the end of its start-up scan, and the files the scan found are counted a moment later.
 */
function readyWithFiles(agent: Agent, files: number): Promise<AgentStatus> {
  return until(
    async () => {
      const status = await agent.status()
      return status.ready && status.files === files ? status : undefined
    },
    { timeoutMs: 30_000, message: `agent ${agent.name} is ready with ${files} file(s) indexed` }
  )
}

describe('sync-agent CLI', () => {
  const harness = useHarness()

  it('secret new prints one sa1 secret per call, different every time', async () => {
    const first = await runCli(['secret', 'new'])
    expect(first.code).toBe(0)
    expect(first.stdout.trimEnd().split('\n')).toHaveLength(1)
    expect(first.stdout.trim()).toMatch(/^sa1\S+$/)
    const second = await runCli(['secret', 'new'])
    expect(second.stdout.trim()).toMatch(/^sa1\S+$/)
    expect(second.stdout.trim()).not.toBe(first.stdout.trim())
  })

  it('secret readonly / encrypted derive one way only; a weaker or malformed secret is one clear line, exit 2', async () => {
    const rw = await newSecret()
    const ro = await runCli(['secret', 'readonly', rw])
    expect(ro.code).toBe(0)
    expect(ro.stdout.trim()).toMatch(/^sa1ro-[a-z2-7]+$/)
    const fromRw = await runCli(['secret', 'encrypted', rw])
    const fromRo = await runCli(['secret', 'encrypted', ro.stdout.trim()])
    expect(fromRw.stdout.trim()).toMatch(/^sa1en-[a-z2-7]+$/)
    expect(fromRo.stdout.trim()).toBe(fromRw.stdout.trim()) // the same folder, however it was reached
    for (const [args, problem] of [
      [['secret', 'readonly', ro.stdout.trim()], /read-only secret is made from a read-write secret, not from "ro"/],
      [['secret', 'readonly', fromRw.stdout.trim()], /not from "en"/],
      [['secret', 'encrypted', fromRw.stdout.trim()], /encrypted secret is made from a read-write or read-only secret/],
      [['secret', 'readonly', rw.slice(0, -3) + (rw.endsWith('a') ? 'bbb' : 'aaa')], /checksum|wrong length/],
      [['secret', 'readonly', 'not-a-secret'], /malformed/]
    ] as const) {
      const result = await runCli([...args])
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stdout).toBe('')
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(problem)
    }
  })

  it('version, --version and -V print the package\'s version (read beside the bundle); an extra argument is a usage error', async () => {
    const manifest = JSON.parse(await fs.readFile(path.join(repoRoot, 'packages', 'sync-agent', 'package.json'), 'utf8')) as { version: string }
    for (const arg of ['version', '--version', '-V']) {
      const result = await runCli([arg])
      expect(result.code).toBe(0)
      expect(result.stdout).toBe(`sync-agent ${manifest.version}\n`)
    }
    const extra = await runCli(['version', 'now'])
    expect(extra.code).toBe(2)
    expect(extra.stderr).toMatch(/^sync-agent: version: unexpected argument "now"/)
  })

  it("`pnpm exec sync-agent` works from the repository root (the README's interface)", async () => {
    const { stdout } = await promisify(execFile)('pnpm', ['exec', 'sync-agent', 'secret', 'new'], { cwd: repoRoot })
    expect(stdout.trim()).toMatch(/^sa1rw-[a-z2-7]+$/)
  })

  it('status with no agent at the control socket exits 1 with a message on stderr', async () => {
    const dir = await harness.tmpDir()
    const control = path.join(dir, 'nobody.sock')
    const result = await runCli(['status', '--json', '--control', control])
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).not.toBe('')
    expect(result.stdout.trim()).toBe('')
  })

  it('status finds the default control socket from SYNC_AGENT_DATA, and fails when nothing runs there', async () => {
    const dir = await harness.tmpDir()
    const result = await runCli(['status', '--json'], { env: { SYNC_AGENT_DATA: path.join(dir, 'data') } })
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).not.toBe('')
  })

  it('status against a stale socket file (agent killed) exits 1', async () => {
    const agent = await harness.agent({ name: 'k', secret: await newSecret() })
    await agent.start()
    await agent.kill()
    const result = await runCli(['status', '--json', '--control', agent.control])
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).not.toBe('')
  })

  it('SIGTERM stops a running agent with exit code 0 within 10 s', async () => {
    const agent = await harness.agent({ name: 'g', secret: await newSecret() })
    await fs.writeFile(path.join(agent.folder, 'hello.txt'), 'hello\n')
    await agent.start()
    const status = await readyWithFiles(agent, 1)
    expect(typeof status.deviceId).toBe('string')
    expect(status.deviceId).not.toBe('')
    // the data dir's size on disk, measured in the background (the first answer may not have it)
    const measured = await until(async () => ((await agent.status()) as { dataDirBytes?: number | null }).dataDirBytes, { timeoutMs: 10_000, message: 'status has the data dir\'s size' })
    const { stdout: du } = await promisify(execFile)('du', ['-s', '--block-size=1', agent.data])
    // what du counts, give or take the files RocksDB wrote since
    expect(measured).toBeGreaterThan(0.5 * Number(du.split('\t')[0]))
    expect(measured).toBeLessThan(2 * Number(du.split('\t')[0]))
    const human = await runCli(['status', '--control', agent.control])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/^files +1 \(6 B\) +data dir [\d.]+ (KiB|MiB) +members: 1 +conflicts: 0$/m)
    // the CLI's JSON is the report the helpers read over the control socket
    const json = await runCli(['status', '--json', '--control', agent.control])
    expect(json.code, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ ready: true, files: 1, deviceId: status.deviceId, peers: [] })
    const startedStop = Date.now()
    const exit = await agent.stop({ timeoutMs: 10_000 })
    expect(exit).toEqual({ code: 0, signal: null })
    expect(Date.now() - startedStop).toBeLessThan(10_000)
    // the control socket no longer answers
    const after = await runCli(['status', '--json', '--control', agent.control])
    expect(after.code).toBe(1)
  })

  it('SIGINT stops a running agent with exit code 0 within 10 s', async () => {
    const agent = await harness.agent({ name: 'i', secret: await newSecret() })
    await agent.start()
    await agent.waitReady()
    expect(await agent.stop({ signal: 'SIGINT', timeoutMs: 10_000 })).toEqual({ code: 0, signal: null })
  })

  it('SIGTERM stops two connected agents with exit code 0', async () => {
    const [a, b] = await harness.startPair({ seedA: (folder) => fs.writeFile(path.join(folder, 'one.txt'), '1\n') })
    await b.waitReady()
    expect(await b.stop()).toEqual({ code: 0, signal: null })
    expect(await a.stop()).toEqual({ code: 0, signal: null })
  })

  it('the control socket has mode 0600', async () => {
    const agent = await harness.agent({ name: 'm', secret: await newSecret() })
    await agent.start()
    const stat = await fs.stat(agent.control)
    expect(stat.isSocket()).toBe(true)
    expect(stat.mode & 0o777).toBe(0o600)
  })

  it('starts from a YAML config file with a secret file, env overriding the file', async () => {
    const dir = await harness.tmpDir()
    const secretFile = path.join(dir, 'secret.txt')
    await fs.writeFile(secretFile, `${await newSecret()}\n`)
    const folder = path.join(dir, 'folder')
    const data = path.join(dir, 'state')
    await fs.mkdir(folder)
    await fs.writeFile(path.join(folder, 'x.txt'), 'x')
    const configFile = path.join(dir, 'agent.yaml')
    const fileLevel = 'fatal'
    await fs.writeFile(
      configFile,
      [`folder: ${JSON.stringify(folder)}`, `data: ${JSON.stringify(data)}`, `secretFile: ${JSON.stringify(secretFile)}`, `logLevel: ${fileLevel}`, 'settleMs: 20', ''].join('\n')
    )
    // logLevel comes from the agent helper's env (info) and must override the file's 'fatal'
    const agent = await harness.agent({ name: 'y', folder, data, configFile })
    await agent.start()
    await readyWithFiles(agent, 1)
    expect(await exists(path.join(data, 'control.sock'))).toBe(true)
    await agent.stop()
    expect(agent.stdout).toMatch(/"level":(30|"info")/)
  })

  it('starts from a JSON config file', async () => {
    const dir = await harness.tmpDir()
    const folder = path.join(dir, 'folder')
    const data = path.join(dir, 'state')
    await fs.mkdir(folder)
    const configFile = path.join(dir, 'agent.json')
    await fs.writeFile(configFile, JSON.stringify({ folder, data, secret: await newSecret(), ignore: { presets: ['wordpress'], patterns: ['*.bak'] } }))
    const agent = await harness.agent({ name: 'j', folder, data, configFile })
    await agent.start()
    await agent.waitReady()
    expect((await agent.stop()).code).toBe(0)
  })
})
