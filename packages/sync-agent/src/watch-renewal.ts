import type { Logger } from './log.js'

/** the watcher is restarted at most this often (a restart re-reads the folder's directories) */
export const RENEW_MIN_INTERVAL_MS = 5_000

export interface WatchRenewalDeps {
  /** watches the folder afresh; false if it is not watched now (paused: resuming watches afresh) */
  restart(): Promise<boolean>
  /** the stat-only rescan that finds what changed while nothing watched */
  rescan(): Promise<void>
  onError(err: Error): void
  log: Logger
  minIntervalMs?: number
}

/**
 * Renews the folder's watch when a directory's watch may have gone stale (a directory
 * replaced in place that chokidar did not report: FolderWatcher.restart), then rescans.
 * Requests coalesce: one renewal at a time, at most one per `minIntervalMs`, and a request
 * made while one runs gets one more after it (the directory may have been replaced again).
 */
export class WatchRenewal {
  private pending: string[] = []
  /** of `pending`, the directories the agent itself removed and made again (RemadeDirs) */
  private remade = new Set<string>()
  private running = false
  private timer: NodeJS.Timeout | null = null
  private lastAt = -Infinity
  private closed = false

  constructor(private readonly deps: WatchRenewalDeps) {}

  /** A renewal is waiting or running: changes may be unseen until it is done. */
  get busy(): boolean {
    return this.running || this.timer !== null || this.pending.length > 0
  }

  /** `byAgent`: the agent removed the directory and made it again itself (for the log) */
  request(dir: string, byAgent = false): void {
    if (this.closed) return
    if (!this.pending.includes(dir)) this.pending.push(dir)
    if (byAgent) this.remade.add(dir)
    this.schedule()
  }

  private schedule(): void {
    if (this.closed || this.running || this.timer || this.pending.length === 0) return
    const waitMs = Math.max(0, this.lastAt + (this.deps.minIntervalMs ?? RENEW_MIN_INTERVAL_MS) - Date.now())
    this.timer = setTimeout(() => {
      this.timer = null
      void this.renew()
    }, waitMs)
    this.timer.unref()
  }

  private async renew(): Promise<void> {
    const dirs = this.pending
    const remade = [...this.remade]
    this.pending = []
    this.remade = new Set()
    this.running = true
    this.lastAt = Date.now()
    try {
      this.deps.log.info({ dirs: dirs.slice(0, 10), count: dirs.length, remadeByAgent: remade.length }, 'a directory was replaced in place: watching the folder afresh, then rescanning')
      if (await this.deps.restart()) await this.deps.rescan()
    } catch (err) {
      if (!this.closed) this.deps.onError(err as Error)
    } finally {
      this.running = false
      this.schedule()
    }
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.pending = []
    this.remade.clear()
  }
}
