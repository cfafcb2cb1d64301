import type { Logger } from './log.js'
import { scaleOverride } from './scale-overrides.js'

/**
 * Watching starts again once the backlog is this small, not when it is empty: chokidar reads
 * the whole tree when it starts (seconds for 10,000 files), and that read is better spent
 * while the last files arrive than after them (the echo of those last writes costs an index
 * look-up each).
 */
export const BULK_RESUME_PATHS = 250
/**
 * The watcher is paused once this many remote paths wait (a fresh node's first sync). Tests
 * may lower it (SYNC_AGENT_BULK_MODE_PATHS, not below twice the resume point) to reach bulk
 * mode with fewer files.
 */
export const BULK_MODE_PATHS = scaleOverride('SYNC_AGENT_BULK_MODE_PATHS', 2_000, 2 * BULK_RESUME_PATHS)
/**
 * How often the backlog is looked at while there is one (or the watcher is paused). Every
 * 250 ms, a fresh node paused its watcher up to 250 ms late and resumed it up to 250 ms after
 * its last file (chokidar's walk of the tree then starts, and the agent is not inSync before
 * the rescan after it): five interleaved pairs, default corpus, 3.05 s against 3.25 s (means,
 * together with folder-scanner.ts's synchronous walk; 2026-11-30).
 */
export const BULK_MODE_CHECK_MS = 50
/** ...and with no backlog: an idle agent wakes up rarely (a peer's `have` wakes it at once) */
export const BULK_MODE_IDLE_CHECK_MS = 250
/**
 * While the watcher is paused, local edits are found by a stat-only rescan: bulk mode can last
 * minutes (a member flooding its drive with a million entries, or withholding the contents of
 * the files it lists), and a site's new upload must not wait for it to end. The next rescan is
 * due BULK_RESCAN_COST_FACTOR times the last one's duration after it ended (so rescans take at
 * most ~5% of a core), never sooner than BULK_RESCAN_MIN_MS nor later than BULK_RESCAN_MAX_MS.
 * At a fixed 15 s, a file written on a node whose watcher a peer's flood had paused took 14 s
 * to be published (hostile-volume's good peer, 2026-12-02). Not below 2 s: a fresh node's
 * bulk sync of the default bench corpus (~5 s that day) then ran two rescans (1,242 and 5,371
 * files) where it had run none, for nothing (such a node is not ready, so no site writes there).
 */
export const BULK_RESCAN_MIN_MS = 2_000
export const BULK_RESCAN_MAX_MS = 15_000
export const BULK_RESCAN_COST_FACTOR = 20

/** How long after a rescan that took `durationMs` the next one is due while the watcher stays paused. */
export function bulkRescanDelay(durationMs: number): number {
  return Math.min(BULK_RESCAN_MAX_MS, Math.max(BULK_RESCAN_MIN_MS, durationMs * BULK_RESCAN_COST_FACTOR))
}

export interface BulkModeDeps {
  /** remote paths waiting to be applied (queued in the engine, or announced and not diffed) */
  backlog(): number
  /** the engine is still diffing a peer's index: the backlog may grow yet */
  isDiffing(): boolean
  watcher: { readonly isPaused: boolean; pause(): Promise<void>; resume(): Promise<void> }
  /** the stat-only rescan that finds what was edited here while nothing watched */
  rescan(): Promise<void>
  /** the agent is stopping: no look is scheduled any more (said before the closers run) */
  isStopping(): boolean
  onError(message: string): void
  log: Logger
}

/**
 * Bulk mode: while thousands of remote paths wait to be applied (a fresh node's first sync),
 * the watcher is paused (chokidar would report each file the agent writes, each an index
 * look-up to drop); once the backlog has nearly drained it resumes and a stat-only rescan
 * finds whatever was edited here meanwhile. While the watcher is paused a rescan every
 * bulkRescanDelay() finds local edits. Writes stay safe either way: the folder writer refuses to
 * replace a file that differs from the index.
 */
export class BulkMode {
  private switching = false
  /** when the next rescan is due while the watcher stays paused */
  private rescanDueAt = 0
  private rescanning = false
  private timer: NodeJS.Timeout | null = null
  private idle = false
  private resumedRescanPending = false

  constructor(private readonly deps: BulkModeDeps) {}

  /**
   * The watcher was paused, or is back and the rescan that ends a bulk sync has not ended:
   * a file a site wrote here meanwhile may be unseen (a node serves once ready, before its
   * uploads are all here), so the agent is not inSync.
   */
  get mayMissLocalChanges(): boolean {
    return this.deps.watcher.isPaused || this.resumedRescanPending
  }

  ready(): void {
    this.schedule(false)
  }

  /** A peer announced what it has: a backlog may have appeared (a fresh node's first one). */
  wake(): void {
    if (!this.idle || !this.timer || this.deps.isStopping()) return
    clearTimeout(this.timer)
    this.idle = false
    this.timer = setTimeout(() => this.tick(), 0)
    this.timer.unref()
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private schedule(busy: boolean): void {
    if (this.deps.isStopping()) return
    this.idle = !busy
    this.timer = setTimeout(() => this.tick(), busy ? BULK_MODE_CHECK_MS : BULK_MODE_IDLE_CHECK_MS)
    this.timer.unref()
  }

  private tick(): void {
    this.timer = null
    if (this.deps.isStopping()) return
    if (this.switching) return this.schedule(true)
    const paused = this.deps.watcher.isPaused
    if (paused && !this.rescanning && Date.now() >= this.rescanDueAt) {
      this.rescanning = true
      const startedAt = Date.now()
      this.deps
        .rescan()
        .catch((err: unknown) => this.deps.onError(`rescan during bulk sync failed: ${(err as Error).message}`))
        .finally(() => {
          this.rescanning = false
          this.rescanDueAt = Date.now() + bulkRescanDelay(Date.now() - startedAt)
        })
    }
    const backlog = this.deps.backlog()
    if (!paused && backlog >= BULK_MODE_PATHS) {
      this.switching = true
      this.deps.log.info({ backlog }, 'bulk sync: pausing the watcher')
      this.rescanDueAt = Date.now() + BULK_RESCAN_MIN_MS
      this.deps.watcher.pause().finally(() => (this.switching = false))
    } else if (paused && backlog < BULK_RESUME_PATHS && !this.deps.isDiffing()) {
      this.switching = true
      this.resumedRescanPending = true
      this.deps.watcher
        .resume()
        .then(() => this.deps.rescan())
        .then(() => this.deps.log.info('bulk sync done: watching again'))
        .catch((err: unknown) => this.deps.onError(`cannot resume watching: ${(err as Error).message}`))
        .finally(() => {
          this.switching = false
          this.resumedRescanPending = false
        })
    }
    this.schedule(this.switching || paused || backlog > 0)
  }
}
