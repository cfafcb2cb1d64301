import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cleanEnv, newSecret, runCli, type CliResult } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { binPath, repoRoot } from './helpers/paths.ts'
import { freePorts } from './helpers/ports.ts'
import { until } from './helpers/until.ts'

/**
 * docker/entrypoint.sh run directly with the real /bin/sh (dash on Debian, as in the image)
 * and the real agent: `sync-agent` is found on PATH, as in the image.
 */
const entrypoint = path.join(repoRoot, 'docker', 'entrypoint.sh')

interface Run {
  child: ChildProcess
  result: Promise<CliResult>
}

function runEntrypoint(args: string[], env: Record<string, string | undefined>, opts: { uid?: number; binDir: string }): Run {
  const child = spawn('/bin/sh', [entrypoint, ...args], {
    env: cleanEnv({ PATH: `${opts.binDir}:${process.env.PATH}`, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.uid })
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const result = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`entrypoint ${args.join(' ')} did not exit in time\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, 30_000)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { child, result }
}

describe('docker/entrypoint.sh', () => {
  const harness = useHarness()

  /** A dir with `sync-agent` → the repo's bin (the image links /usr/local/bin/sync-agent the same way). */
  async function setup() {
    const dir = await harness.tmpDir()
    await fs.chmod(dir, 0o755) // readable by the non-root cases
    const binDir = path.join(dir, 'bin')
    await fs.mkdir(binDir)
    await fs.symlink(binPath, path.join(binDir, 'sync-agent'))
    const folder = path.join(dir, 'wp-content')
    await fs.mkdir(folder)
    const secretFile = path.join(dir, 'sync_agent_secret')
    await fs.writeFile(secretFile, (await newSecret()) + '\n', { mode: 0o600 })
    const [listen, http, peer] = (await freePorts(3)) as [number, number, number]
    const env = {
      SYNC_AGENT_FOLDER: folder,
      SYNC_AGENT_DATA: path.join(dir, 'data'),
      SYNC_AGENT_SECRET_FILE: secretFile,
      SYNC_AGENT_LISTEN: `127.0.0.1:${listen}`,
      SYNC_AGENT_HTTP: `127.0.0.1:${http}`
    }
    return { dir, binDir, folder, secretFile, env, http, peer }
  }

  it('start: *_FILE values reach the agent, the secret file is read by the agent, SIGTERM stops it (exec, no shell left)', async () => {
    const s = await setup()
    const peersFile = path.join(s.dir, 'peers')
    await fs.writeFile(peersFile, `127.0.0.1:${s.peer}\n`)
    const run = runEntrypoint(['start'], { ...s.env, SYNC_AGENT_PEERS_FILE: peersFile }, { binDir: s.binDir })
    const control = path.join(s.env.SYNC_AGENT_DATA, 'control.sock')
    const status = await until(
      async () => {
        const r = await runCli(['status', '--json', '--control', control])
        return r.code === 0 ? (JSON.parse(r.stdout) as { peers: Array<{ address: string }>; folder: string }) : undefined
      },
      { timeoutMs: 20_000, message: 'the agent started by the entrypoint answers status' }
    )
    expect(status.folder).toBe(s.folder)
    // the peer came from SYNC_AGENT_PEERS_FILE
    expect(status.peers.map((p) => p.address)).toContain(`127.0.0.1:${s.peer}`)
    // exec: the process we started is the agent itself, so SIGTERM reaches it
    const cmdline = await fs.readFile(`/proc/${run.child.pid}/cmdline`, 'utf8')
    expect(cmdline.split('\0')).toContain('start')
    expect(cmdline).toMatch(/sync-agent/)
    run.child.kill('SIGTERM')
    const result = await run.result
    expect(result.code).toBe(0)
  })

  it('healthcheck: 0 while /healthz answers on SYNC_AGENT_HTTP (0.0.0.0 asked on loopback), 1 with a reason when nothing listens', async () => {
    const s = await setup()
    const run = runEntrypoint(['start'], { ...s.env, SYNC_AGENT_HTTP: `0.0.0.0:${s.http}` }, { binDir: s.binDir })
    try {
      const ok = await until(
        async () => {
          const r = await runEntrypoint(['healthcheck'], { SYNC_AGENT_HTTP: `0.0.0.0:${s.http}` }, { binDir: s.binDir }).result
          return r.code === 0 ? r : undefined
        },
        { timeoutMs: 20_000, message: 'the healthcheck passes' }
      )
      expect(ok.stderr).toBe('')
    } finally {
      run.child.kill('SIGTERM')
      await run.result
    }
    const down = await runEntrypoint(['healthcheck'], { SYNC_AGENT_HTTP: `127.0.0.1:${s.http}` }, { binDir: s.binDir }).result
    expect(down.code).toBe(1)
    expect(down.stderr).toMatch(new RegExp(`healthcheck: http://127\\.0\\.0\\.1:${s.http}/healthz: ECONNREFUSED`))
    const unset = await runEntrypoint(['healthcheck'], {}, { binDir: s.binDir }).result
    expect(unset.code).toBe(2)
    expect(unset.stderr).toMatch(/SYNC_AGENT_HTTP is not set/)
  })

  it('wait-ready: exits 0 once the agent is ready, then runs the command after --; times out with the reason', async () => {
    const s = await setup()
    const control = { SYNC_AGENT_DATA: s.env.SYNC_AGENT_DATA }
    // nothing runs yet: a short timeout fails, naming why
    const early = await runEntrypoint(['wait-ready'], { ...control, SYNC_AGENT_WAIT_TIMEOUT: '1' }, { binDir: s.binDir }).result
    expect(early.code).toBe(1)
    expect(early.stderr).toMatch(/not ready within 1s/)
    const run = runEntrypoint(['start'], s.env, { binDir: s.binDir })
    try {
      const waited = await runEntrypoint(['wait-ready', '--', 'sh', '-c', 'echo serving'], { ...control, SYNC_AGENT_WAIT_TIMEOUT: '30' }, { binDir: s.binDir }).result
      expect(waited.code, waited.stderr).toBe(0)
      expect(waited.stdout).toMatch(/^ready: .*\nserving\n$/s)
    } finally {
      run.child.kill('SIGTERM')
      await run.result
    }
  })

  it('secret new passes through to the CLI, and so do the control commands', async () => {
    const s = await setup()
    const r = await runEntrypoint(['secret', 'new'], {}, { binDir: s.binDir }).result
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toMatch(/^sa1rw-[a-z2-7]+$/)
    // the CLI's own answer (no agent there), not a shell's "not found"
    const socket = path.join(s.dir, 'no-agent.sock')
    for (const command of ['versions', 'rescan', 'pause', 'resume', 'accept-deletes', 'revert']) {
      const c = await runEntrypoint([command, '--control', socket], {}, { binDir: s.binDir }).result
      expect({ command, code: c.code, stderr: c.stderr }).toEqual({ command, code: 1, stderr: `sync-agent: cannot reach the agent at ${socket}: no agent is running there\n` })
    }
  })

  type Env = Record<string, string | undefined>
  const badCases: Array<[string, (s: Awaited<ReturnType<typeof setup>>) => Promise<Env>, RegExp]> = [
    ['no folder setting', async (s) => ({ ...s.env, SYNC_AGENT_FOLDER: undefined }), /^SYNC_AGENT_FOLDER is not set/],
    ['the folder volume not mounted', async (s) => ({ ...s.env, SYNC_AGENT_FOLDER: path.join(s.dir, 'nope') }), /^SYNC_AGENT_FOLDER=.*\/nope is not a directory: mount WordPress's wp-content volume there/],
    ['no secret at all', async (s) => ({ ...s.env, SYNC_AGENT_SECRET_FILE: undefined }), /^no folder secret: set SYNC_AGENT_SECRET_FILE=\/run\/secrets\/<name>/],
    ['the secret file missing', async (s) => ({ ...s.env, SYNC_AGENT_SECRET_FILE: path.join(s.dir, 'missing') }), /^SYNC_AGENT_SECRET_FILE: cannot read .*\/missing as uid 0/],
    ['secret and secret file', async (s) => ({ ...s.env, SYNC_AGENT_SECRET: 'x' }), /^SYNC_AGENT_SECRET and SYNC_AGENT_SECRET_FILE are both set/],
    ['a value and its _FILE', async (s) => ({ ...s.env, SYNC_AGENT_PEERS: 'a:1', SYNC_AGENT_PEERS_FILE: s.secretFile }), /^SYNC_AGENT_PEERS and SYNC_AGENT_PEERS_FILE are both set/],
    ['an unreadable _FILE', async (s) => ({ ...s.env, SYNC_AGENT_PEERS_FILE: path.join(s.dir, 'none') }), /^SYNC_AGENT_PEERS_FILE: cannot read .*\/none \(mount the file or compose secret there\)/],
    ['an empty _FILE setting', async (s) => ({ ...s.env, SYNC_AGENT_LOG_LEVEL_FILE: '' }), /^SYNC_AGENT_LOG_LEVEL_FILE is empty/],
    [
      'a data dir that is a file',
      async (s) => {
        await fs.writeFile(s.env.SYNC_AGENT_DATA, '')
        return s.env
      },
      /^SYNC_AGENT_DATA=.* is not a directory/
    ]
  ]

  it.each(badCases)('bad env: %s → exit 2, one line naming it, nothing started', async (_name, make, message) => {
    const s = await setup()
    const env = await make(s)
    const r = await runEntrypoint(['start'], env, { binDir: s.binDir }).result
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^sync-agent-entrypoint: /)
    expect(lines[0]!.replace(/^sync-agent-entrypoint: /, '')).toMatch(message)
    // the agent never ran: it stamps its data dir first thing
    expect(await fs.stat(path.join(s.dir, 'data', 'FORMAT')).catch((err: NodeJS.ErrnoException) => err.code)).toMatch(/^(ENOENT|ENOTDIR)$/)
  })

  it('a bad value from a _FILE is reported by the agent under the setting it sets (exit 2)', async () => {
    const s = await setup()
    const listenFile = path.join(s.dir, 'listen')
    await fs.writeFile(listenFile, 'nowhere\n')
    const r = await runEntrypoint(['start'], { ...s.env, SYNC_AGENT_LISTEN: undefined, SYNC_AGENT_LISTEN_FILE: listenFile }, { binDir: s.binDir }).result
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe('sync-agent: SYNC_AGENT_LISTEN: expected host:port, got "nowhere" (no port)')
  })

  it.runIf(process.geteuid?.() === 0)('as a user who cannot write the folder or the data dir: exit 2 saying which and as whom', async () => {
    const s = await setup()
    const r = await runEntrypoint(['start'], s.env, { binDir: s.binDir, uid: 1000 }).result
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toMatch(/^sync-agent-entrypoint: SYNC_AGENT_FOLDER=.* is not writable by uid 1000 \(gid 1000\): run the container as the folder's owner/)
    await fs.chown(s.folder, 1000, 1000)
    await fs.mkdir(s.env.SYNC_AGENT_DATA, { mode: 0o700 })
    const r2 = await runEntrypoint(['start'], s.env, { binDir: s.binDir, uid: 1000 }).result
    expect(r2.code).toBe(2)
    expect(r2.stderr.trim()).toMatch(/^sync-agent-entrypoint: SYNC_AGENT_DATA=.* is not writable by uid 1000 \(gid 1000\): chown the volume to 1000:1000$/)
  })

  it('SYNC_AGENT_WAIT_TIMEOUT must be whole seconds', async () => {
    const s = await setup()
    const r = await runEntrypoint(['wait-ready'], { SYNC_AGENT_WAIT_TIMEOUT: '10m' }, { binDir: s.binDir }).result
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe('sync-agent-entrypoint: SYNC_AGENT_WAIT_TIMEOUT=10m: expected whole seconds')
  })
})
