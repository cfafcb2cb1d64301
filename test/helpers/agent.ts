import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { DiscoveryStatus } from '../../packages/shared/dist/index.js'
import { cleanEnv } from './cli.ts'
import { binPath } from './paths.ts'
import { GiveUpError, until } from './until.ts'

type ControlClient = typeof import('../../packages/sync-agent/dist/control/control-client.js')
let controlClient: Promise<ControlClient> | undefined
/** The control client of the build the agents run (next to `binPath`, so SYNC_AGENT_IT_BIN holds). */
function loadControlClient(): Promise<ControlClient> {
  controlClient ??= import(pathToFileURL(path.join(path.dirname(binPath), '..', 'dist', 'control', 'control-client.js')).href) as Promise<ControlClient>
  return controlClient
}

export interface PeerStatus {
  address: string
  connected: boolean
  deviceId: string
}

/** What `sync-agent status --json` prints (the fields the tests rely on). */
export interface AgentStatus {
  ready: boolean
  inSync: boolean
  peers: PeerStatus[]
  files: number
  deviceId: string
  pending: number
  /** a mass delete held by the guard (see `sync-agent accept-deletes`) */
  heldDeletes?: { count: number; folderPaths: number; sample: string[] } | null
  /** DHT discovery, null when it is off */
  discovery?: DiscoveryStatus | null
  [key: string]: unknown
}

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface AgentOptions {
  /** Short name used in logs and paths, e.g. 'a'. */
  name: string
  /** The synced folder; created (empty) if missing. */
  folder: string
  /** The state dir; the agent creates it. */
  data: string
  /** `SYNC_AGENT_SECRET`; leave out when `env` or a config file provides the secret. */
  secret?: string
  /** Port for `SYNC_AGENT_LISTEN=127.0.0.1:<port>`. */
  listenPort?: number
  /** host:port entries for `SYNC_AGENT_PEERS`. */
  peers?: string[]
  settleMs?: number
  /** Passed as `start --config FILE`. */
  configFile?: string
  /** Extra SYNC_AGENT_* (or other) variables; an undefined value removes a variable. */
  env?: Record<string, string | undefined>
  /**
   * Command that runs node (it must exec, keeping the pid, so kill() reaches the agent), e.g.
   * `['ip', 'netns', 'exec', 'ns1']`: spawned as `wrapper… node bin/sync-agent.js start`.
   */
  wrapper?: string[]
}

/** Every child still running in this worker, killed if the worker exits abruptly. */
const liveChildren = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL')
})

const MAX_LOG_LINE_CHARS = 2_000

/**
 * One real `sync-agent start` process (and its restarts) with its folder, data dir and a
 * log buffer that collects stdout (pino JSON lines), stderr and notes from the test.
 */
export class Agent {
  readonly name: string
  readonly folder: string
  readonly data: string
  readonly control: string
  readonly listenPort: number | undefined
  peers: string[]
  private readonly options: AgentOptions
  private child: ChildProcess | undefined
  private exitPromise: Promise<ExitInfo> | undefined
  private lastExit: ExitInfo | undefined
  private stdoutText = ''
  private logLines: string[] = []
  private starts = 0
  /** Set by stop()/kill(), so an exit nobody asked for is reported as such. */
  private isExitExpected = false

  constructor(options: AgentOptions) {
    this.options = options
    this.name = options.name
    this.folder = options.folder
    this.data = options.data
    this.control = options.env?.SYNC_AGENT_CONTROL ?? path.join(options.data, 'control.sock')
    this.listenPort = options.listenPort
    this.peers = options.peers ?? []
  }

  /** `127.0.0.1:<listenPort>`, for other agents' peer lists. */
  get address(): string {
    if (this.listenPort === undefined) throw new Error(`agent ${this.name} has no listen port`)
    return `127.0.0.1:${this.listenPort}`
  }

  get isRunning(): boolean {
    return this.child !== undefined && this.lastExit === undefined
  }

  /** How the last run ended (undefined while it runs, or before the first start). */
  get exitInfo(): ExitInfo | undefined {
    return this.lastExit
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Raw stdout of all runs so far (pino JSON lines). */
  get stdout(): string {
    return this.stdoutText
  }

  /** stdout, stderr (prefixed) and test notes of all runs, in order. */
  get logs(): string {
    return this.logLines.join('\n')
  }

  /** Adds a line to this agent's log buffer so a failure dump shows what the test did when. */
  note(message: string): void {
    this.logLines.push(`--- test ${new Date().toISOString()}: ${message}`)
  }

  env(): NodeJS.ProcessEnv {
    const o = this.options
    return cleanEnv({
      SYNC_AGENT_FOLDER: o.folder,
      SYNC_AGENT_DATA: o.data,
      SYNC_AGENT_SECRET: o.secret,
      SYNC_AGENT_LISTEN: o.listenPort === undefined ? undefined : `127.0.0.1:${o.listenPort}`,
      SYNC_AGENT_PEERS: this.peers.length > 0 ? this.peers.join(',') : undefined,
      SYNC_AGENT_SETTLE_MS: o.settleMs === undefined ? undefined : String(o.settleMs),
      SYNC_AGENT_LOG_LEVEL: 'info',
      ...o.env
    })
  }

  /**
   * Spawns `sync-agent start` and waits until its control socket answers `status`
   * (not until it is ready or in sync: wait for that with `waitReady` / `waitConverged`).
   */
  async start({ timeoutMs = 20_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.isRunning) throw new Error(`agent ${this.name} is already running`)
    await fs.mkdir(this.folder, { recursive: true })
    this.starts++
    this.note(`start #${this.starts}`)
    const args = [binPath, 'start']
    if (this.options.configFile !== undefined) args.push('--config', this.options.configFile)
    const [command, ...prefix] = [...(this.options.wrapper ?? []), process.execPath]
    const child = spawn(command as string, [...prefix, ...args], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    this.lastExit = undefined
    this.isExitExpected = false
    liveChildren.add(child)
    let stdoutRest = ''
    let stderrRest = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdoutText += chunk
      const parts = (stdoutRest + chunk).split('\n')
      stdoutRest = parts.pop() ?? ''
      for (const line of parts) this.logLines.push(line.slice(0, MAX_LOG_LINE_CHARS))
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (stderrRest + chunk).split('\n')
      stderrRest = parts.pop() ?? ''
      for (const line of parts) this.logLines.push(`[stderr] ${line.slice(0, MAX_LOG_LINE_CHARS)}`)
    })
    this.exitPromise = new Promise<ExitInfo>((resolve) => {
      child.once('close', (code, signal) => {
        liveChildren.delete(child)
        if (stdoutRest !== '') this.logLines.push(stdoutRest)
        if (stderrRest !== '') this.logLines.push(`[stderr] ${stderrRest}`)
        this.lastExit = { code, signal }
        this.note(`process exited code=${code} signal=${signal}${this.isExitExpected ? '' : ' (UNEXPECTED: the test did not stop it)'}`)
        resolve(this.lastExit)
      })
    })
    const exitedEarly = this.exitPromise.then((exit) => {
      throw new Error(`agent ${this.name} exited while starting (code=${exit.code} signal=${exit.signal}):\n${this.tail(30)}`)
    })
    exitedEarly.catch(() => undefined) // only matters while racing below
    await Promise.race([
      exitedEarly,
      until(() => this.tryStatus(), { timeoutMs, intervalMs: 50, message: `agent ${this.name} answers status` })
    ])
  }

  /** SIGTERM (or `signal`), then waits for the exit (SIGKILL and throw if it takes longer than `timeoutMs`). */
  async stop({ timeoutMs = 10_000, signal = 'SIGTERM' }: { timeoutMs?: number; signal?: 'SIGTERM' | 'SIGINT' } = {}): Promise<ExitInfo> {
    const child = this.child
    if (child === undefined || this.exitPromise === undefined) throw new Error(`agent ${this.name} was never started`)
    if (this.lastExit !== undefined) return this.lastExit
    this.note(`stop (${signal})`)
    this.isExitExpected = true
    child.kill(signal)
    const result = await this.exitWithin(timeoutMs)
    if (result === 'timeout') {
      child.kill('SIGKILL')
      await this.exitPromise
      throw new Error(`agent ${this.name} did not exit within ${timeoutMs} ms of ${signal}`)
    }
    return result
  }

  /** SIGKILL (crash) and wait for the process to be gone. */
  async kill(): Promise<ExitInfo | undefined> {
    if (this.child === undefined || this.exitPromise === undefined) return undefined
    if (this.lastExit !== undefined) return this.lastExit
    this.note('kill (SIGKILL)')
    this.isExitExpected = true
    this.child.kill('SIGKILL')
    return this.exitPromise
  }

  /** Sets (or, with undefined, removes) environment variables for the next start. */
  setEnv(vars: Record<string, string | undefined>): void {
    this.options.env = { ...this.options.env, ...vars }
  }

  /**
   * Waits for the process to exit on its own (a crash point, a fatal error), without signalling
   * it; the exit then counts as expected. Throws after `timeoutMs` with the log tail.
   */
  async waitExit({ timeoutMs }: { timeoutMs: number }): Promise<ExitInfo> {
    if (this.exitPromise === undefined) throw new Error(`agent ${this.name} was never started`)
    this.isExitExpected = true
    const result = await this.exitWithin(timeoutMs)
    if (result === 'timeout') {
      this.isExitExpected = false
      throw new Error(`agent ${this.name} did not exit within ${timeoutMs} ms; last log lines:\n${this.tail(15)}`)
    }
    return result
  }

  /** The current run's exit, or 'timeout' if it has not come within `timeoutMs`. */
  private async exitWithin(timeoutMs: number): Promise<ExitInfo | 'timeout'> {
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    })
    try {
      return await Promise.race([this.exitPromise as Promise<ExitInfo>, timedOut])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Graceful stop (asserting exit code 0) and start again with the same folder, data and port. */
  async restart(): Promise<void> {
    const exit = await this.stop()
    if (exit.code !== 0) throw new Error(`agent ${this.name} exited with code ${exit.code} signal ${exit.signal} on SIGTERM`)
    await this.start()
  }

  /**
   * The agent's status report over its control socket: the object `sync-agent status --json
   * --control <socket>` prints, read with the CLI's own client in this process (spawning the
   * CLI for every poll cost ~0.35 s of CPU each, a large share of the suite on 2 cores; the
   * CLI's printing is tested in cli.test.ts). Throws if the agent does not answer, and throws
   * a GiveUpError (which ends any `until`) if this agent's process has exited.
   */
  async status(): Promise<AgentStatus> {
    if (this.child !== undefined && this.lastExit !== undefined) {
      throw new GiveUpError(
        `agent ${this.name} is not running (exited code=${this.lastExit.code} signal=${this.lastExit.signal}${this.isExitExpected ? '' : ', not stopped by the test'}); last log lines:\n${this.tail(15)}`
      )
    }
    try {
      const { getStatus } = await loadControlClient()
      return (await getStatus(this.control, 15_000)) as unknown as AgentStatus
    } catch (error) {
      throw new Error(`status of ${this.name} failed: ${(error as Error).message}`)
    }
  }

  /** Like `status`, but undefined instead of throwing (e.g. while the agent starts). */
  async tryStatus(): Promise<AgentStatus | undefined> {
    try {
      return await this.status()
    } catch {
      return undefined
    }
  }

  async waitReady({ timeoutMs = 30_000 }: { timeoutMs?: number } = {}): Promise<AgentStatus> {
    return until(
      async () => {
        const status = await this.status()
        if (!status.ready) throw new Error(`ready=false ${JSON.stringify(status)}`)
        return status
      },
      { timeoutMs, message: `agent ${this.name} is ready` }
    )
  }

  /** Waits until a stdout line matches `pattern`, returns that line. */
  async waitForLog(pattern: RegExp, { timeoutMs = 20_000 }: { timeoutMs?: number } = {}): Promise<string> {
    return until(() => this.stdoutText.split('\n').find((line) => pattern.test(line)), {
      timeoutMs,
      message: `agent ${this.name} logs a line matching ${pattern}`
    })
  }

  /** The last `lines` lines of the log buffer. */
  tail(lines: number): string {
    return this.logLines.slice(-lines).join('\n')
  }

  /** Kills the process if it is still running (cleanup; never throws for a dead process). */
  async dispose(): Promise<void> {
    if (this.isRunning) await this.kill()
  }
}
