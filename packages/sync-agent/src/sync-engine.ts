import { fromDriveKey, isSyncError, topLevelDir, type PendingByDir } from '@sync-agent/shared'
import type { Logger } from './log.js'
import type { EntryMeta } from './entry-format.js'
import type { DriveEntry } from 'hyperdrive'
import { LocalChangeError } from './folder-writer.js'
import type { IndexStore } from './index-store.js'
import type { DriveSet, MemberDrive } from './replication/drive-set.js'
import type { PathReconciler } from './reconcile-path.js'

/**
 * The work loop: paths marked dirty (by the watcher, the start-up scan or a drive that grew)
 * wait in one queue and are reconciled by a pool of workers, one worker per path at a time.
 * A drive that grew is diffed from the version we last applied; when the queue drains, those
 * versions become checkpoints in the index, so a restart resumes from there.
 */
const WORKERS = 64
const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 30_000
const DISK_FULL_RETRY_MS = 4_000
const UNSETTLED_RETRY_MS = 100
const DIR_RETRIES = 8
/**
 * A diff this large (a fresh node, or one back after a long absence) runs alone: applying
 * while it runs makes its index reads wait behind content requests (measured: the index of
 * 9,000 entries took 25–31 s instead of 4 s), and the whole list is known before any file.
 */
const DIFF_ALONE_ENTRIES = 1_000
const DIFF_ALONE_MAX_MS = 20_000

/** What a diff already told us a drive holds for a path: saves a lookup in that drive. */
export type Hints = Map<string, DriveEntry<EntryMeta> | null>

interface Item {
  sizeBytes: number
  attempts: number
  hints: Hints | null
}

function mergeHints(into: Item, hints: Hints | null): void {
  if (!hints) return
  if (!into.hints) into.hints = new Map(hints)
  else for (const [k, v] of hints) into.hints.set(k, v)
}

export class SyncEngine {
  private readonly queue = new Map<string, Item>()
  private readonly running = new Map<string, Item>()
  private readonly markedWhileRunning = new Map<string, Item>()
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; item: Item }>()
  private readonly diffing = new Map<string, Promise<void>>()
  private readonly diffAgain = new Set<string>()
  private readonly diffedTo = new Map<string, number>()
  /** when each running path and each running diff started (to report stalls) */
  private readonly startedAt = new Map<string, number>()
  /** directories deleted on a peer but not empty here: tried again as soon as a path inside settles */
  private readonly waitingDirs = new Set<string>()
  /** how often each path ran since the last stall report (a path that never settles) */
  private readonly runs = new Map<string, number>()
  private readonly idleListeners: Array<() => void> = []
  private workers = 0
  /** large diffs in progress: the workers wait for them */
  private largeDiffs = 0
  private readonly inflight = new Set<Promise<void>>()
  private closing = false
  conflicts = 0
  /** the last path failure, for status */
  lastError: { code: string; message: string; at: number } | null = null

  constructor(
    private readonly index: IndexStore,
    private readonly drives: DriveSet,
    private readonly reconciler: PathReconciler,
    private readonly log: Logger
  ) {}

  /**
   * Marks a path to be reconciled. `attempts`: failures so far (a retry carries them, so its
   * backoff grows and a directory that stays non-empty is given up on).
   */
  mark(path: string, sizeBytes = 0, hints: Hints | null = null, attempts = 0): void {
    if (this.closing) return
    if (this.running.has(path)) {
      const later = this.markedWhileRunning.get(path) ?? { sizeBytes, attempts, hints: null }
      later.attempts = Math.max(later.attempts, attempts)
      later.sizeBytes = Math.max(later.sizeBytes, sizeBytes)
      mergeHints(later, hints)
      this.markedWhileRunning.set(path, later)
      return
    }
    const retry = this.retries.get(path)
    if (retry) {
      clearTimeout(retry.timer)
      this.retries.delete(path)
    }
    let item = this.queue.get(path)
    if (!item) {
      item = { sizeBytes: 0, attempts: 0, hints: null }
      if (retry) mergeHints(item, retry.item.hints)
      this.queue.set(path, item)
    }
    item.attempts = Math.max(item.attempts, attempts, retry?.item.attempts ?? 0)
    item.sizeBytes = Math.max(item.sizeBytes, sizeBytes)
    mergeHints(item, hints)
    this.pump()
  }

  /** Marks every known path under `dir` (a directory that vanished). */
  markTree(dir: string): void {
    const prefix = dir + '/'
    for (const [path] of this.index.entries()) if (path.startsWith(prefix)) this.mark(path)
    this.mark(dir)
  }

  /** A drive grew (or was added): diff it from where we left off. */
  onDriveAppend(drive: MemberDrive): void {
    if (this.closing) return
    if (this.diffing.has(drive.hex)) {
      this.diffAgain.add(drive.hex)
      return
    }
    const run = this.diffLoop(drive)
      .catch((err: unknown) => {
        if (!this.closing) this.log.error({ err, drive: drive.shortId }, 'diff of a member drive failed')
      })
      .finally(() => {
        this.diffing.delete(drive.hex)
        this.startedAt.delete('drive:' + drive.hex)
        this.checkIdle()
      })
    this.diffing.set(drive.hex, run)
    this.startedAt.set('drive:' + drive.hex, Date.now())
  }

  private async diffLoop(drive: MemberDrive): Promise<void> {
    do {
      this.diffAgain.delete(drive.hex)
      const from = this.diffedTo.get(drive.hex) ?? this.index.checkpoint(drive.hex)
      const to = drive.drive.version
      if (to <= from) continue
      const startedAt = Date.now()
      let changes = 0
      // hold the workers, but never for long: a diff stalled on a vanished peer must not
      // keep local changes from being published
      let holding = to - from >= DIFF_ALONE_ENTRIES
      const release = () => {
        if (!holding) return
        holding = false
        this.largeDiffs--
        this.pump()
      }
      const timer = holding ? setTimeout(release, DIFF_ALONE_MAX_MS) : null
      if (holding) this.largeDiffs++
      try {
        await this.diffInto(drive, from, () => changes++)
      } finally {
        if (timer) clearTimeout(timer)
        release()
      }
      if (this.closing) return
      this.diffedTo.set(drive.hex, to)
      this.log.debug({ drive: drive.shortId, from, to, changes, ms: Date.now() - startedAt }, 'drive diffed')
      this.drives.prefetchBlobs(drive)
    } while (this.diffAgain.has(drive.hex) && !this.closing)
  }

  /** Marks every path that changed in `drive` since version `from`. */
  private async diffInto(drive: MemberDrive, from: number, counted: () => void): Promise<void> {
    for await (const item of drive.drive.diff<EntryMeta>(from)) {
      counted()
      if (this.closing) return
      const key = item.left?.key ?? item.right?.key
      if (!key) continue
      let path: string
      try {
        path = fromDriveKey(key)
      } catch (err) {
        if (!isSyncError(err)) throw err
        this.log.warn({ code: err.code, drive: drive.shortId }, err.message)
        continue
      }
      const size = item.left?.value.metadata?.size
      this.mark(path, typeof size === 'number' && size > 0 ? size : 0, new Map([[drive.hex, item.left]]))
    }
  }

  /** How far we applied a drive (for `have` messages and exchange checks). */
  appliedVersion(hex: string): number {
    return this.diffedTo.get(hex) ?? this.index.checkpoint(hex)
  }

  get pendingCount(): number {
    return this.queue.size + this.running.size + this.retries.size + this.markedWhileRunning.size
  }

  get isIdle(): boolean {
    return this.pendingCount === 0 && this.diffing.size === 0
  }

  pendingByDir(): { byDir: PendingByDir; bytes: number } {
    const byDir: PendingByDir = {}
    let bytes = 0
    const add = (path: string, item: Item) => {
      const dir = topLevelDir(path)
      const slot = (byDir[dir] ??= { files: 0, bytes: 0 })
      slot.files++
      slot.bytes += item.sizeBytes
      bytes += item.sizeBytes
    }
    for (const [p, i] of this.queue) add(p, i)
    for (const [p, i] of this.running) add(p, i)
    for (const [p, r] of this.retries) add(p, r.item)
    return { byDir, bytes }
  }

  /**
   * Paths (and drive diffs, as `drive:<key>`) running for longer than `olderThanMs`, and paths
   * that ran more than `maxRuns` times since the last call (work that never settles).
   */
  stalled(olderThanMs: number, maxRuns: number): Array<{ what: string; ms?: number; runs?: number }> {
    const now = Date.now()
    const out: Array<{ what: string; ms?: number; runs?: number }> = []
    for (const [what, at] of this.startedAt) if (now - at > olderThanMs) out.push({ what, ms: now - at })
    for (const [what, runs] of this.runs) if (runs > maxRuns) out.push({ what, runs })
    this.runs.clear()
    return out
  }

  onIdle(listener: () => void): void {
    this.idleListeners.push(listener)
  }

  private pump(): void {
    if (this.largeDiffs > 0) return
    while (this.workers < WORKERS && this.queue.size > 0 && !this.closing) {
      const [path, item] = this.queue.entries().next().value as [string, Item]
      this.queue.delete(path)
      this.running.set(path, item)
      this.startedAt.set(path, Date.now())
      this.runs.set(path, (this.runs.get(path) ?? 0) + 1)
      this.workers++
      const task: Promise<void> = this.work(path, item).finally(() => {
        this.inflight.delete(task)
        this.workers--
        this.running.delete(path)
        this.startedAt.delete(path)
        const again = this.markedWhileRunning.get(path)
        if (again) {
          this.markedWhileRunning.delete(path)
          this.mark(path, again.sizeBytes, again.hints, again.attempts)
        }
        this.pump()
        this.checkIdle()
      })
      this.inflight.add(task)
    }
  }

  private async work(path: string, item: Item): Promise<void> {
    try {
      const outcome = await this.reconciler.reconcile(path, item.hints)
      if (outcome === 'unsettled') this.retry(path, item, UNSETTLED_RETRY_MS)
      else if (outcome === 'again') this.mark(path, item.sizeBytes, item.hints) // runs once more after this run
      else if (outcome === 'dir-not-empty') {
        // its children are usually being removed right now; a directory that keeps files
        // we do not sync (ignored ones, or live ones) stays, until one of them changes
        item.attempts++
        this.waitingDirs.add(path)
        if (item.attempts <= DIR_RETRIES) this.retry(path, item, 50 * 2 ** item.attempts)
        else this.log.info({ path }, 'directory deleted on a peer kept here: it holds files that are not deleted')
      } else {
        this.waitingDirs.delete(path)
        this.retryWaitingParents(path)
      }
    } catch (err) {
      if (this.closing) return
      if (err instanceof LocalChangeError) {
        // the disk changed under us: publish that change first
        this.mark(path, item.sizeBytes, item.hints) // lands in markedWhileRunning
        return
      }
      if (isSyncError(err) && (err.code === 'E_PATH_UNSAFE' || err.code === 'E_PEER_PROTOCOL')) {
        this.log.warn({ code: err.code, path }, err.message)
        return
      }
      item.attempts++
      const code = isSyncError(err) ? err.code : ((err as { code?: string }).code ?? 'E_IO')
      // a full disk gets space back at any moment: look again soon, not after a long backoff
      const maxMs = code === 'E_DISK_FULL' ? DISK_FULL_RETRY_MS : RETRY_MAX_MS
      const delay = Math.min(maxMs, RETRY_MIN_MS * 2 ** Math.min(item.attempts, 10))
      this.log.warn({ code, path, attempts: item.attempts, retryMs: delay, err: isSyncError(err) ? undefined : err }, isSyncError(err) ? err.message : 'could not sync a path; will retry')
      this.lastError = { code, message: (err as Error).message, at: Date.now() }
      this.retry(path, item, delay)
    }
  }

  private retryWaitingParents(path: string): void {
    if (this.waitingDirs.size === 0) return
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      const dir = path.slice(0, slash)
      if (this.waitingDirs.has(dir)) this.mark(dir)
    }
  }

  private retry(path: string, item: Item, delayMs: number): void {
    if (this.closing) return
    const timer = setTimeout(() => {
      this.retries.delete(path)
      this.mark(path, item.sizeBytes, item.hints, item.attempts)
    }, delayMs)
    this.retries.set(path, { timer, item })
  }

  /** Retry every waiting path now (a peer connected, new data may be reachable). */
  retryNow(): void {
    for (const [path, r] of [...this.retries]) {
      clearTimeout(r.timer)
      this.retries.delete(path)
      this.mark(path, r.item.sizeBytes, r.item.hints, r.item.attempts)
    }
  }

  private checkIdle(): void {
    if (!this.isIdle || this.closing) return
    for (const d of this.drives.all()) {
      const applied = this.diffedTo.get(d.hex)
      if (applied !== undefined) this.index.setCheckpoint(d.hex, applied)
    }
    for (const l of this.idleListeners) l()
  }

  async close(): Promise<void> {
    this.closing = true
    for (const r of this.retries.values()) clearTimeout(r.timer)
    this.retries.clear()
    this.queue.clear()
    // let running writes finish: a graceful stop never leaves a half-applied path
    await Promise.allSettled([...this.inflight])
    await Promise.allSettled([...this.diffing.values()])
  }
}
