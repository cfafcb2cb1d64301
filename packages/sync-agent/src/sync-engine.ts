import { fromDriveKey, isSyncError, topLevelDir, type PendingByDir } from '@sync-agent/shared'
import type { Logger } from './log.js'
import { decodeEntry, isRequestedDelete, type EntryMeta } from './entry-format.js'
import type Hyperdrive from 'hyperdrive'
import type { DriveEntry } from 'hyperdrive'
import { LocalChangeError } from './folder-writer.js'
import type { IndexStore } from './index-store.js'
import type { DriveSet, MemberDrive } from './replication/drive-set.js'
import type { IndexSnapshot } from './replication/index-block-fetcher.js'
import type { SnapshotEntryList } from './replication/index-snapshot.js'
import type { PathReconciler } from './reconcile-path.js'
import { PathQueue, type Queued } from './priority/path-queue.js'
import { BULK, FRESH, type PriorityClasses, type Rank } from './priority/priority-classes.js'
import { BULK_MODE_PATHS } from './bulk-mode.js'
import { scaleOverride } from './scale-overrides.js'
import { BlobPrefetcher, type PrefetchCandidate } from './priority/blob-prefetcher.js'
import { ClassProgress } from './priority/class-progress.js'
import { SupersedeSignal } from './supersede-signal.js'

/**
 * The work loop: paths marked dirty (by the watcher, the start-up scan or a drive that grew)
 * wait in one priority queue and are reconciled by a pool of workers, one worker per path at
 * a time. Workers take one priority class at a time (themes before uploads before the rest),
 * and the prefetcher fetches only that class's contents, so a fresh node is usable early.
 * A drive that grew is diffed from the version we last applied; when the queue drains, those
 * versions become checkpoints in the index, so a restart resumes from there.
 *
 * Internal class numbers: 0 is urgent (a file someone asks for now), 1.. are the configured
 * classes in order.
 */
const WORKERS = 64
/**
 * Contents being fetched by the workers at once (sum of file sizes): enough to keep the
 * link busy, few enough that files arrive in the queue's order (newest uploads first)
 * rather than all at once.
 */
const RUNNING_BYTES = 16 * 1024 * 1024
/**
 * Workers kept for fresh changes (local edits, other peers' small diffs): the paths of a large
 * diff or listing take the others. Contents a peer never serves hold a worker for the whole
 * fetch timeout (FETCH_TIMEOUT_MS), and a compromised peer can publish thousands of them.
 */
const FRESH_WORKERS = 8
/**
 * A path running this long (its content is slow to come, or never comes: a peer that withholds
 * it) stops holding the later classes back; they start beside it.
 */
const HOLD_MAX_MS = 10_000
const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 30_000
/** a path that waits for a peer to fetch it from is also tried again this often (a peer's connect retries it at once) */
export const NO_PEER_RETRY_MS = 5_000
const DISK_FULL_RETRY_MS = 4_000
const UNSETTLED_RETRY_MS = 100
/**
 * A directory deleted on a peer that is not empty here is looked at again after 100, 200, 400,
 * 800 and 1,000 ms (2.5 s in all), then left: it holds files that stay (live or ignored ones).
 * A path inside it that settles later retries it at once (retryWaitingParents), so the timed
 * looks only cover what leaves without one (a temp file swept). Eight looks up to 12.8 s
 * apart (25.5 s) held the cluster's inSync and a restarted node's ready for that long (fault
 * suite seed 39002: a theme's assets directory kept a file another node wrote into it).
 */
const DIR_RETRIES = 5
const DIR_RETRY_MAX_MS = 1_000
/**
 * A diff this large (a fresh node, or one back after a long absence) runs alone: applying
 * while it runs makes its index reads wait behind content requests (measured: the index of
 * 9,000 entries took 25–31 s instead of 4 s), and the whole list is known before any file.
 */
const DIFF_ALONE_ENTRIES = 1_000
const DIFF_ALONE_MAX_MS = 20_000
/**
 * A diff (and the ranged listing of a fresh drive's ready classes) stops marking paths while
 * this many wait and its drive has its share of them (MAX_QUEUED over the drives with paths
 * queued), until the workers bring the queue below half: memory stays bounded (at most twice
 * this) whatever a drive holds (a peer can publish millions of entries), and a drive whose
 * paths never drain (contents a peer withholds) cannot keep the others' changes out. Each
 * queued path holds the decoded entry its diff saw (~1.5 KiB of heap with its hint and rank):
 * 20,000 of them added 30 MiB to the heap whenever a flood's diff outran the workers. Tests
 * may lower it (SYNC_AGENT_MAX_QUEUED_PATHS, not below the bulk-mode threshold) to reach the
 * bound with fewer entries.
 */
const MAX_QUEUED = scaleOverride('SYNC_AGENT_MAX_QUEUED_PATHS', 10_000, BULK_MODE_PATHS)

/**
 * What a diff already told us a drive holds for a path (saves a lookup in that drive), per
 * drive hex. `seen` orders hints: a path re-queued with the hints of an earlier run (a retry,
 * `again`) must not replace what a later diff saw, or the path is applied from a stale entry
 * and nothing marks it again (fault suite seed 601: a file deleted everywhere came back on one
 * node from a hint older than the delete).
 */
export interface Hint {
  entry: DriveEntry<EntryMeta> | null
  seen: number
}
export type Hints = Map<string, Hint>

/** What the engine has pending (see `SyncEngine.pendingSummary`) */
export interface PendingSummary {
  /** per top-level directory ('.' for names at the root); empty when not asked for */
  byDir: PendingByDir
  bytes: number
  /** per configured class, in the configured order */
  byClass: Array<{ files: number; bytes: number }>
}

/** while paths keep arriving, the prefetcher re-reads a class's order at most this often */
const PREFETCH_ORDER_MAX_AGE_MS = 250
/** How long a fresh drive's full diff waits for the classes needed for ready to be applied. */
const READY_CLASSES_FIRST_MAX_MS = 60_000
/**
 * ... and how long it waits while none of the paths settles: those left are waiting for bytes
 * (a version no connected peer holds), and what would end that wait, a newer entry for the
 * path, may be in the rest of this very drive, which comes after the wait (fault suite,
 * rebuild phase: a fresh node waited 30 s for a theme file the author had since rewritten)
 */
export const READY_CLASSES_STUCK_MS = 2_000
/** how long a fresh drive's index may take to download before it is read on demand */
const INDEX_DOWNLOAD_MAX_MS = 30_000
/**
 * How long a diff or listing waits for one block of a member drive's index before it gives up
 * and is tried again (as long as a content fetch waits, FETCH_TIMEOUT_MS). Without a bound, a
 * writer that signed a length and never served its blocks kept the diff waiting for good, with
 * nothing in status.
 */
export const INDEX_READ_TIMEOUT_MS = 30_000
/** below this, a fresh drive is diffed whole at once: reading it by ranges gains nothing */
const READY_FIRST_MIN_ENTRIES = 256
export const URGENT = 0

/**
 * What the ranged listing of a fresh drive marked: every entry of the snapshot at version `to`
 * whose key lies in the listed ranges. Kept as ranges, not as a set of paths: a drive can hold
 * millions of entries there (a compromised peer's), and the full diff only asks "listed?".
 */
interface Listed {
  to: number
  covers(key: string): boolean
}

/** an entry as read with `valueEncoding: 'binary'` (or from a snapshot), not decoded yet */
type RawEntry = Parameters<typeof decodeEntry>[0]

interface Item {
  /** the drive whose diff or listing queued it (counted in `queuedBy` while queued) */
  source: string | null
  sizeBytes: number
  attempts: number
  hints: Hints | null
  classIndex: number
  rank: Rank
}

/** The newest mtime a hint claims (an untrusted number). */
function hintedMtime(hints: Hints | null): number | undefined {
  if (!hints) return undefined
  let best: number | undefined
  for (const { entry } of hints.values()) {
    const m = (entry?.value.metadata as { mtime?: unknown } | null | undefined)?.mtime
    if (typeof m === 'number' && Number.isFinite(m) && (best === undefined || m > best)) best = m
  }
  return best
}

type Waiter = () => void

/** Adds `hints` to the item's, keeping for each drive the hint seen last. */
export function mergeHints(into: { hints: Hints | null }, hints: Hints | null): void {
  if (!hints) return
  if (!into.hints) into.hints = new Map(hints)
  else {
    for (const [k, v] of hints) {
      const had = into.hints.get(k)
      if (!had || had.seen <= v.seen) into.hints.set(k, v)
    }
  }
}

/** Takes remote deletes instead of the engine, and lets them through later (mass-delete guard). */
export interface RemoteDeleteGate {
  submit(paths: readonly string[]): void
  /** deletes taken and not let through yet */
  readonly waitingCount: number
}

export class SyncEngine {
  private readonly queue: PathQueue<Item>
  private readonly running = new Map<string, Item>()
  /** stamps hints in the order diffs saw them */
  private hintsSeen = 0
  private readonly runningByClass: number[]
  private readonly progress: ClassProgress
  private readonly prefetcher: BlobPrefetcher
  /** per drive: the version up to which every path of the ready classes is marked or applied */
  private readonly readyKnownTo = new Map<string, number>()
  /** per drive: what a ranged read already marked, so the full diff skips it */
  private readonly listed = new Map<string, Listed>()
  private readonly settledWaiters = new Map<string, Waiter[]>()
  /** called whenever a worker finishes a path */
  private readonly settleListeners = new Set<() => void>()
  private readonly markedWhileRunning = new Map<string, Item>()
  /** per running path: aborted when a newer entry for it arrives (ends a wait for old bytes) */
  private readonly supersede = new Map<string, SupersedeSignal>()
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; item: Item }>()
  private readonly diffing = new Map<string, Promise<void>>()
  private readonly diffAgain = new Set<string>()
  private readonly diffedTo = new Map<string, number>()
  /** diffs waiting to be tried again after their index did not come (see diffLoop) */
  private readonly diffRetryWaiters = new Set<() => void>()
  /** drives whose diff gave up on their index (REQUEST_TIMEOUT) and waits to try again */
  private readonly indexUnserved = new Set<string>()
  /** when each running path and each running diff started (to report stalls) */
  private readonly startedAt = new Map<string, number>()
  /** directories deleted on a peer but not empty here: tried again as soon as a path inside settles */
  private readonly waitingDirs = new Set<string>()
  /** how often each path ran since the last stall report (a path that never settles) */
  private readonly runs = new Map<string, number>()
  private readonly idleListeners: Array<() => void> = []
  private readonly errorListeners: Array<(code: string) => void> = []
  private readonly roomWaiters: Array<() => void> = []
  /** per drive: queued paths its diffs and listings put there */
  private readonly queuedBy = new Map<string, number>()
  private workers = 0
  /** paths of the classes needed for ready settled so far (readyClassesApplied tells progress from a stall by it) */
  private readySettles = 0
  /** workers on paths of the bulk lane */
  private bulkWorkers = 0
  /**
   * Queued paths with no peer's entry to apply (a local change, a rescan's finding), in the
   * order marked: they take no bandwidth, so a class held by its running fetches does not hold
   * them (see pump). May hold paths since dequeued or given hints: takeLocal skips those.
   */
  private readonly localQueued = new Set<string>()
  /** wakes pump when a running path stops holding its class (HOLD_MAX_MS) */
  private holdTimer: NodeJS.Timeout | null = null
  private runningBytes = 0
  /** large diffs in progress: the workers wait for them */
  private largeDiffs = 0
  private readonly inflight = new Set<Promise<void>>()
  private closing = false
  /** `sync-agent pause`: queued paths wait (but urgent ones, a file a page asks for now) */
  private paused = false
  conflicts = 0
  /**
   * When set, the deletes a member drive's diff brings (of paths that exist here) are handed
   * to it instead of marked; it marks them when it lets them through (mass-delete hold).
   * While it holds any, the drives' checkpoints stay where they are: those deletes live only
   * in its pool until the engine has applied them, so a restart must diff them again (fault
   * suite seed 967 and CI seed 1: the checkpoint moved past a pooled delete while the engine
   * was idle, the pool was let through into the in-memory queue, a kill -9 came before the
   * queue drained, and the file deleted everywhere stayed on the restarted node, inSync).
   */
  deleteGate: RemoteDeleteGate | null = null
  /**
   * Our own drive's length when this run began. What this run publishes is recorded in the
   * index as it is published; only what an earlier run published may lack its record (a kill
   * -9 between the two), so the start-up diff of our own drive stops here. Diffed to its end,
   * a fresh node reconciled its whole folder a second time right after the start-up scan had
   * published it (the benchmark's peer A spent the whole initial sync of B doing that).
   */
  private ownRecordedFrom: number | null = null
  /** a fresh member drive's index as a verified snapshot from a peer, or null (daemon.ts) */
  indexSnapshot: ((drive: MemberDrive, length: number) => Promise<IndexSnapshot | null>) | null = null
  /** true while peers serve contents from their folders: then nothing is prefetched from Hypercore */
  contentFromPeers: (() => boolean) | null = null
  /** the last failure of a path or of a drive's diff, for status */
  lastError: { code: string; message: string; at: number } | null = null
  /** see INDEX_READ_TIMEOUT_MS (tests make it short) */
  indexReadTimeoutMs = INDEX_READ_TIMEOUT_MS

  constructor(
    private readonly index: IndexStore,
    private readonly drives: DriveSet,
    private readonly reconciler: PathReconciler,
    private readonly classes: PriorityClasses,
    /** how many leading configured classes must be complete for ready */
    private readonly readyClasses: number,
    private readonly log: Logger
  ) {
    this.queue = new PathQueue<Item>(classes.count + 1)
    this.runningByClass = new Array<number>(classes.count + 1).fill(0)
    this.progress = new ClassProgress(classes.count + 1)
    this.prefetcher = new BlobPrefetcher(drives, {
      activeClass: () => (this.contentFromPeers?.() ? -1 : this.activeClass()),
      candidates: (cls, limit) => this.candidates(cls, limit)
    }, log.child({ c: 'prefetch' }))
  }

  ready(): void {
    this.prefetcher.ready()
    this.ownRecordedFrom = this.drives.own?.drive.version ?? null
  }

  /**
   * Marks a path to be reconciled; `urgent` puts it before everything else, `bulk` (part of a
   * large diff) after the fresh changes of its class. `attempts`: failures so far (a retry
   * carries them, so its backoff grows and a directory that stays non-empty is given up on).
   */
  mark(path: string, sizeBytes = 0, hints: Hints | null = null, urgent = false, bulk = false, attempts = 0): void {
    if (this.closing) return
    if (this.running.has(path)) {
      const later = this.markedWhileRunning.get(path) ?? this.newItem(path, hints, urgent, bulk)
      later.sizeBytes = Math.max(later.sizeBytes, sizeBytes)
      mergeHints(later, hints)
      if (urgent) later.classIndex = URGENT
      later.attempts = Math.max(later.attempts, attempts)
      this.markedWhileRunning.set(path, later)
      if (hints) this.supersede.get(path)?.abort()
      return
    }
    const retry = this.retries.get(path)
    if (retry) {
      clearTimeout(retry.timer)
      this.retries.delete(path)
    }
    const queued = this.queue.get(path)
    let item = queued?.value
    if (!item) {
      item = this.newItem(path, hints, urgent, bulk)
      item.attempts = retry?.item.attempts ?? 0
      if (retry) mergeHints(item, retry.item.hints)
    }
    item.attempts = Math.max(item.attempts, attempts, retry?.item.attempts ?? 0)
    item.sizeBytes = Math.max(item.sizeBytes, sizeBytes)
    mergeHints(item, hints)
    // once fresh, a path stays fresh
    const lane = bulk && item.rank.lane === BULK ? BULK : FRESH
    if (urgent) item.classIndex = URGENT
    else if (item.classIndex !== URGENT) item.rank = this.classes.rankOf(item.classIndex - 1, path, hintedMtime(item.hints), lane)
    this.queue.set(path, item, item.classIndex, item.rank)
    if (item.hints === null && item.classIndex !== URGENT) this.localQueued.add(path)
    else this.localQueued.delete(path)
    this.pump()
    this.prefetcher.wake()
  }

  /**
   * Our own drive holds a newer entry for `path`, put outside that path's own run (a conflict
   * copy withdrawn by its family's reconcile): a run of it that waits for the older version's
   * bytes waits no more, and the path runs again. Marked without hints, a running path went on
   * waiting: fault seed 4904, a copy's run read our own blocks that the withdrawal let go (swept
   * while the read waited), 30 s of Hypercore's request timeout.
   */
  ownEntryReplaced(path: string): void {
    this.mark(path)
    this.supersede.get(path)?.abort()
  }

  /**
   * A diff saw a newer entry for a path it hands to the mass-delete guard instead of marking:
   * an item already queued, waiting, retrying or running for that path must not go on with
   * an older hint (fault suite seed 607: a queued path applied a drive's older version from
   * its hint; the guard's release marked it without hints, so nothing replaced the stale one,
   * and the file deleted everywhere stayed on one node), nor a running one wait on for an
   * older version's bytes.
   */
  private supersedeHints(path: string, hints: Hints): void {
    const queued = this.queue.get(path)?.value
    if (queued) mergeHints(queued, hints)
    this.localQueued.delete(path)
    const retry = this.retries.get(path)
    if (retry) mergeHints(retry.item, hints)
    const running = this.running.get(path)
    if (running) {
      mergeHints(running, hints)
      // a fetch of an older version must not wait on for its bytes (fault CI round: a node
      // fetching a version from its author, who had deleted it since, waited the whole 30 s
      // of a Hypercore request, 25 s after the delete had arrived): mark() ends its wait and
      // the path runs again with the newer entry (a delete the guard still has is not applied)
      this.mark(path, 0, hints)
    }
  }

  private newItem(path: string, hints: Hints | null, urgent: boolean, bulk: boolean): Item {
    const configured = this.classes.classOf(path)
    return {
      source: null,
      sizeBytes: 0,
      attempts: 0,
      hints: null,
      classIndex: urgent ? URGENT : configured + 1,
      rank: this.classes.rankOf(configured, path, hintedMtime(hints), bulk ? BULK : FRESH)
    }
  }

  /**
   * Resolves once the path is neither queued nor being worked on (applied, or failed and
   * waiting for a retry), or after `timeoutMs`.
   */
  whenSettled(path: string, timeoutMs: number): Promise<boolean> {
    if (!this.isPending(path)) return Promise.resolve(true)
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        const list = this.settledWaiters.get(path)
        const i = list?.indexOf(waiter) ?? -1
        if (list && i !== -1) list.splice(i, 1)
        resolve(false)
      }, timeoutMs)
      const waiter = () => {
        clearTimeout(timer)
        resolve(true)
      }
      const list = this.settledWaiters.get(path) ?? []
      list.push(waiter)
      this.settledWaiters.set(path, list)
    })
  }

  /**
   * Will the path be reconciled later without another mark (queued, waiting for a retry, or
   * marked again while it runs)? Each such reconcile reads the disk when it starts, so a scan
   * that finds the path differing from its record need not mark it (a rescan while a node
   * published 3,000 files of its own marked 1,344 of them again).
   */
  willReconcile(path: string): boolean {
    return this.queue.has(path) || this.retries.has(path) || this.markedWhileRunning.has(path)
  }

  /** The paths being worked on now. */
  runningPaths(): string[] {
    return [...this.running.keys()]
  }

  /** Is the path queued or being worked on? */
  isPending(path: string): boolean {
    return this.queue.has(path) || this.running.has(path) || this.markedWhileRunning.has(path)
  }

  private notifySettled(path: string): void {
    const list = this.settledWaiters.get(path)
    if (!list || this.isPending(path)) return
    this.settledWaiters.delete(path)
    for (const w of list) w()
  }

  /** The lowest class whose next path is a fresh change (-1: none). */
  private firstFreshClass(): number {
    for (let c = 1; c < this.runningByClass.length; c++) {
      if (this.queue.peekFrom(c)?.rank.lane === FRESH) return c
    }
    return -1
  }

  /**
   * The lowest configured class with paths queued, or running for less than HOLD_MAX_MS
   * (-1: none).
   */
  private activeClass(): number {
    const now = Date.now()
    for (let c = 1; c < this.runningByClass.length; c++) {
      if (this.queue.countIn(c) > 0 || this.heldSince(c, now) !== null) return c
    }
    return -1
  }

  /** When the youngest running path of class `c` started, if one started less than HOLD_MAX_MS ago. */
  private heldSince(c: number, now: number): number | null {
    if ((this.runningByClass[c] as number) === 0) return null
    let youngest: number | null = null
    for (const [path, item] of this.running) {
      const at = this.startedAt.get(path)
      if (item.classIndex === c && at !== undefined && now - at < HOLD_MAX_MS && (youngest === null || at > youngest)) youngest = at
    }
    return youngest
  }

  /** Pumps again once class `c`'s running paths stop holding the later classes. */
  private pumpWhenReleased(c: number): void {
    const since = this.heldSince(c, Date.now())
    if (since === null || this.holdTimer) return
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null
      this.pump()
      this.prefetcher.wake()
    }, since + HOLD_MAX_MS - Date.now() + 1)
  }

  private candidates(cls: number, limit: number): PrefetchCandidate[] {
    const out: PrefetchCandidate[] = []
    // urgent paths first, then the active class
    for (const q of this.queue.peekOrdered(URGENT, limit)) out.push({ hints: q.value.hints })
    for (const q of this.queue.peekOrdered(cls, limit - out.length, PREFETCH_ORDER_MAX_AGE_MS)) out.push({ hints: q.value.hints })
    return out
  }

  /**
   * Marks every known path under `dir` (a directory that vanished): those in the index, and
   * those being reconciled now. A new file's first publish is not in the index until it ends:
   * when its directory was moved away meanwhile, that publish went through with what it had
   * read, and nothing looked at the path again until a rescan, 55 s later (fault suite seed
   * 39514: the file's rename into the directory, 0.5 s later the directory's move). Marked
   * while running, it runs once more when this run ends and finds the file gone.
   */
  markTree(dir: string): void {
    const prefix = dir + '/'
    for (const [path] of this.index.entries()) if (path.startsWith(prefix)) this.mark(path)
    for (const path of [...this.running.keys()]) if (path.startsWith(prefix)) this.mark(path)
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
        this.indexUnserved.delete(drive.hex)
        this.startedAt.delete('drive:' + drive.hex)
        this.checkIdle()
      })
    this.diffing.set(drive.hex, run)
    this.startedAt.set('drive:' + drive.hex, Date.now())
  }

  private async diffLoop(drive: MemberDrive): Promise<void> {
    let attempts = 0
    do {
      this.diffAgain.delete(drive.hex)
      try {
        await this.diffOnce(drive)
        attempts = 0
        this.indexUnserved.delete(drive.hex)
      } catch (err) {
        if (this.closing || !isRequestTimeout(err)) throw err
        this.indexUnserved.add(drive.hex)
        // no connected peer served a block of this drive's index in time (gone, slow, or a
        // compromised writer withholding the index of a length it signed): said once per
        // attempt, in status too, and tried again with a backoff, at once when a peer connects
        // (retryNow). Until then the drive's diff is not done: the engine is not idle.
        attempts++
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempts, 10))
        const message = 'no connected peer served this drive’s index in time; will retry'
        this.log.warn({ code: 'REQUEST_TIMEOUT', drive: drive.shortId, from: this.appliedVersion(drive.hex), to: drive.drive.version, attempts, retryMs: delay }, message)
        this.lastError = { code: 'REQUEST_TIMEOUT', message: `${message}: drive of ${drive.shortId}`, at: Date.now() }
        this.reportError('REQUEST_TIMEOUT')
        await this.diffRetryDue(delay)
        this.diffAgain.add(drive.hex)
      }
    } while (this.diffAgain.has(drive.hex) && !this.closing)
  }

  /** One diff of a drive from where we left off; a read of its index that no peer serves in time throws REQUEST_TIMEOUT. */
  private async diffOnce(drive: MemberDrive): Promise<void> {
    const from = this.diffedTo.get(drive.hex) ?? this.index.checkpoint(drive.hex)
    const upTo = drive.isOwn ? this.ownRecordedFrom : null
    const to = upTo !== null ? Math.min(upTo, drive.drive.version) : drive.drive.version
    if (to <= from) {
      if (upTo !== null) this.diffedTo.set(drive.hex, Math.max(from, drive.drive.version))
      return
    }
    if (from === 0 && to >= READY_FIRST_MIN_ENTRIES && !drive.isOwn && (await this.fromSnapshot(drive, to))) {
      if (this.closing) return
      this.diffedTo.set(drive.hex, to)
      this.readyKnownTo.set(drive.hex, Math.max(to, this.readyKnownTo.get(drive.hex) ?? 0))
      return
    }
    // read through Hypercore: the whole index is fetched and followed
    this.drives.followIndex(drive)
    if (from === 0 && to >= READY_FIRST_MIN_ENTRIES) await this.readyClassesFirst(drive, to)
    if (this.closing) return
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
      await this.diffInto(drive, from, upTo !== null ? to : null, () => changes++, release, to - from >= DIFF_ALONE_ENTRIES)
    } finally {
      if (timer) clearTimeout(timer)
      release()
    }
    if (this.closing) return
    // our own drive: what this run published after `to` is recorded already
    this.diffedTo.set(drive.hex, upTo !== null ? Math.max(to, drive.drive.version) : to)
    this.readyKnownTo.set(drive.hex, Math.max(to, this.readyKnownTo.get(drive.hex) ?? 0))
    this.listed.delete(drive.hex)
    this.log.debug({ drive: drive.shortId, from, to, changes, ms: Date.now() - startedAt }, 'drive diffed')
  }

  /** Resolves after `delayMs`, or sooner when a peer connects (retryNow) or the engine closes. */
  private diffRetryDue(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const due = () => {
        clearTimeout(timer)
        this.diffRetryWaiters.delete(due)
        resolve()
      }
      const timer = setTimeout(due, delayMs)
      this.diffRetryWaiters.add(due)
    })
  }

  /**
   * A fresh drive holds the whole folder: before reading its full index, read only the parts
   * that hold the classes needed for ready (`themes/`, `plugins/`, root `*.php`), apply them,
   * and only then diff the rest. A few hundred index blocks instead of all of them, so the
   * node is ready in seconds.
   */
  private async readyClassesFirst(drive: MemberDrive, to: number): Promise<void> {
    const ranges = []
    for (let c = 0; c < this.readyClasses && c < this.classes.count; c++) {
      const r = this.classes.indexRanges(c)
      if (!r.complete) return // a class we cannot read by ranges: the full diff finds it
      ranges.push(r)
    }
    if (ranges.length === 0) return
    const startedAt = Date.now()
    // the listing reads index blocks one after the other: with each one a round trip it took
    // 16 s for 5,500 paths; fetched as one range first, the whole index takes a second or two
    await this.downloadIndex(drive, to)
    const downloadedMs = Date.now() - startedAt
    const snapshot = drive.drive.checkout(to)
    const isRootFile = (key: string) => key.lastIndexOf('/') === 0
    const prefixes = ranges.flatMap((r) => r.prefixes.map((p) => '/' + p))
    const rootFiles = ranges.some((r) => r.rootFiles)
    let paths = 0
    try {
      await snapshot.ready()
      // in key order, as the ranges are read: a drive's entries there are only ever listed once
      for (const prefix of prefixes) paths += await this.markListing(drive, snapshot.list<Buffer>(prefix.slice(0, -1), { valueEncoding: 'binary', timeout: this.indexReadTimeoutMs }), null)
      if (rootFiles) paths += await this.markListing(drive, snapshot.list<Buffer>('/', { recursive: false, valueEncoding: 'binary', timeout: this.indexReadTimeoutMs }), isRootFile)
      if (this.closing) return
    } finally {
      await snapshot.close().catch(() => undefined)
    }
    this.listed.set(drive.hex, { to, covers: (key) => (rootFiles && isRootFile(key)) || prefixes.some((p) => key.startsWith(p)) })
    this.readyKnownTo.set(drive.hex, Math.max(to, this.readyKnownTo.get(drive.hex) ?? 0))
    this.log.info({ drive: drive.shortId, paths, downloadMs: downloadedMs, ms: Date.now() - startedAt }, 'read the index of the classes needed for ready')
    // let the workers apply them before the full diff takes the bandwidth
    await this.readyClassesApplied()
  }

  /** Waits (bounded) until the classes needed for ready are applied, or none of them moves. */
  private async readyClassesApplied(): Promise<void> {
    const deadline = Date.now() + READY_CLASSES_FIRST_MAX_MS
    // only those classes' own paths count: files asked for on demand, or later classes started
    // beside a path that holds its class too long (HOLD_MAX_MS), settle meanwhile too
    let settles = this.readySettles
    let movedAt = Date.now()
    while (!this.closing && this.readyClassesBusy() && Date.now() < deadline) {
      await new Promise<void>((resolve) => this.onNextSettle(resolve, 500))
      if (this.readySettles !== settles) {
        settles = this.readySettles
        movedAt = Date.now()
      } else if (Date.now() - movedAt >= READY_CLASSES_STUCK_MS) {
        this.log.debug({ running: this.running.size }, 'the classes needed for ready wait for bytes: the rest of the index goes on')
        return
      }
    }
  }

  /**
   * A fresh drive's whole index as a verified snapshot from a peer (replication/index-block-
   * fetcher.ts) instead of Hypercore's block-by-block replication: the classes needed for ready
   * are marked and applied first, then the rest, as a diff from nothing would mark them.
   * Returns false (nothing marked) when no peer could give one.
   */
  private async fromSnapshot(drive: MemberDrive, to: number): Promise<boolean> {
    // all of it here already (a restart during the first sync): read where it is
    if (!this.indexSnapshot || drive.drive.core.contiguousLength >= to) return false
    const startedAt = Date.now()
    const snapshot = await this.indexSnapshot(drive, to)
    if (!snapshot || this.closing) return false
    const { stored } = snapshot
    const readMs = Date.now() - startedAt
    // stored: following the index from here costs nothing; if not, Hypercore fetches it all
    // again, which is left for when every class is applied (checkIdle)
    if (stored) this.drives.followIndex(drive)
    const list = snapshot.entries
    const first: number[] = []
    const rest: number[] = []
    for (let i = 0; i < list.length; i++) (this.inReadyClass(list.keyAt(i)) ? first : rest).push(i)
    let paths = await this.markHeld(drive, taking(list, first))
    this.readyKnownTo.set(drive.hex, Math.max(to, this.readyKnownTo.get(drive.hex) ?? 0))
    this.log.info({ drive: drive.shortId, entries: list.length, stored, paths, readMs, ms: Date.now() - startedAt }, 'read the index as a verified snapshot; the classes needed for ready go first')
    await this.readyClassesApplied()
    if (this.closing) return true
    paths += await this.markHeld(drive, taking(list, rest))
    this.log.debug({ drive: drive.shortId, paths, ms: Date.now() - startedAt }, 'snapshot marked')
    return true
  }

  /**
   * Marks entries with the workers held, as a large diff does: the whole list is queued (and
   * ordered: newest uploads first) before any of it is applied. Released at once when the
   * queue is full (the workers make room), and after DIFF_ALONE_MAX_MS whatever happens.
   */
  private async markHeld(drive: MemberDrive, entries: Iterable<RawEntry>): Promise<number> {
    let holding = true
    const release = () => {
      if (!holding) return
      holding = false
      this.largeDiffs--
      this.pump()
    }
    this.largeDiffs++
    const timer = setTimeout(release, DIFF_ALONE_MAX_MS)
    try {
      return await this.markListing(drive, entries, null, release)
    } finally {
      clearTimeout(timer)
      release()
    }
  }

  /** Is a queue class index (URGENT, or a configured class + 1) one of the classes needed for ready? */
  private isReadyClass(classIndex: number): boolean {
    return classIndex >= 1 && classIndex <= this.readyClasses
  }

  /** Is a drive key's path in one of the classes needed for ready? (Bad keys are sorted out by markListing.) */
  private inReadyClass(key: string): boolean {
    try {
      return this.classes.classOf(fromDriveKey(key)) < this.readyClasses
    } catch {
      return false
    }
  }

  /** Fetches a drive's file index up to `to` in one ranged download (bounded wait). */
  private async downloadIndex(drive: MemberDrive, to: number): Promise<void> {
    const range = drive.drive.core.download({ start: 0, end: to })
    let timer: NodeJS.Timeout | null = null
    try {
      await Promise.race([range.done(), new Promise<void>((resolve) => (timer = setTimeout(resolve, INDEX_DOWNLOAD_MAX_MS)))])
    } catch (err) {
      this.log.debug({ err, drive: drive.shortId }, 'index download interrupted; reading on demand')
    } finally {
      if (timer) clearTimeout(timer)
      range.destroy()
    }
  }

  /**
   * Marks the paths of a ranged read of an index; returns how many. Entries are decoded one by
   * one (a peer's undecodable entry is skipped, not fatal), deletes of paths we hold go through
   * the mass-delete guard, and the listing waits while the queue is full, as a diff does.
   */
  private async markListing(drive: MemberDrive, stream: AsyncIterable<RawEntry> | Iterable<RawEntry>, keep: ((key: string) => boolean) | null, releaseWorkers?: () => void): Promise<number> {
    const deletes: string[] = []
    let marked = 0
    let pauses = 0
    for await (const raw of stream) {
      if (this.closing) return marked
      if (keep && !keep(raw.key)) continue
      if (this.queueFullFor(drive.hex)) {
        // once at info (a drive that large is news), then at debug
        this.log[pauses++ === 0 ? 'info' : 'debug']({ drive: drive.shortId, marked, queued: this.queue.size }, 'listing paused: the queue is full')
        releaseWorkers?.()
        await this.roomFor(drive.hex)
        if (this.closing) return marked
      }
      let path: string
      let entry: DriveEntry<EntryMeta>
      try {
        path = fromDriveKey(raw.key)
        entry = decodeEntry(raw)
      } catch (err) {
        if (!isSyncError(err)) throw err
        this.log.warn({ code: err.code, drive: drive.shortId, ...err.details }, err.message)
        continue
      }
      marked++
      if (this.deleteGate && isRequestedDelete(entry.value.metadata) && this.index.get(path)) {
        this.supersedeHints(path, new Map([[drive.hex, { entry, seen: ++this.hintsSeen }]]))
        deletes.push(path)
        continue
      }
      this.markFrom(drive.hex, path, entry, true)
    }
    if (deletes.length > 0 && !this.closing) this.deleteGate?.submit(deletes)
    return marked
  }

  /** Marks a path a diff or listing of drive `hex` found in it, counted against the drive's share of the queue. */
  private markFrom(hex: string, path: string, entry: DriveEntry<EntryMeta> | null, bulk: boolean): void {
    const size = entry?.value.metadata?.size
    const wasQueued = this.queue.has(path)
    this.mark(path, typeof size === 'number' && size > 0 ? size : 0, new Map([[hex, { entry, seen: ++this.hintsSeen }]]), false, bulk)
    const item = wasQueued ? undefined : this.queue.get(path)?.value
    if (!item) return
    item.source = hex
    this.queuedBy.set(hex, (this.queuedBy.get(hex) ?? 0) + 1)
  }

  /** A path leaves the queue: its drive's share is freed. */
  private unqueued(item: Item): void {
    if (item.source === null) return
    const left = (this.queuedBy.get(item.source) ?? 1) - 1
    if (left > 0) this.queuedBy.set(item.source, left)
    else this.queuedBy.delete(item.source)
    item.source = null
  }

  /** Must drive `hex`'s diff or listing wait before it marks more? (See MAX_QUEUED.) */
  private queueFullFor(hex: string): boolean {
    if (this.queue.size < MAX_QUEUED) return false
    return (this.queuedBy.get(hex) ?? 0) >= MAX_QUEUED / Math.max(1, this.queuedBy.size)
  }

  /** Resolves once drive `hex` may mark again (or on close). */
  private async roomFor(hex: string): Promise<void> {
    while (this.queueFullFor(hex) && !this.closing) await new Promise<void>((resolve) => this.roomWaiters.push(resolve))
  }


  /** Paths of the classes needed for ready still queued or running (retries excluded). */
  private readyClassesBusy(): boolean {
    for (let c = 1; c <= this.readyClasses && c < this.runningByClass.length; c++) {
      if ((this.runningByClass[c] as number) > 0 || this.queue.countIn(c) > 0) return true
    }
    return false
  }

  private onNextSettle(listener: () => void, timeoutMs: number): void {
    const timer = setTimeout(done, timeoutMs)
    const self = this
    function done(): void {
      clearTimeout(timer)
      self.settleListeners.delete(done)
      listener()
    }
    this.settleListeners.add(done)
  }

  /** Marks every path that changed in `drive` since version `from`. */
  /** `bulk`: a large diff, whose paths wait behind fresh changes of their class */
  private async diffInto(drive: MemberDrive, from: number, upTo: number | null, counted: () => void, releaseWorkers: () => void, bulk: boolean): Promise<void> {
    // `upTo`: diff the drive as it was at that length, not as it is now
    const source = upTo !== null ? drive.drive.checkout(upTo) : drive.drive
    try {
      await this.diffFrom(drive, source, from, counted, releaseWorkers, bulk)
    } finally {
      if (source !== drive.drive) await source.close().catch(() => undefined)
    }
  }

  private async diffFrom(drive: MemberDrive, source: Hyperdrive, from: number, counted: () => void, releaseWorkers: () => void, bulk: boolean): Promise<void> {
    const listed = this.listed.get(drive.hex)
    const deletes: string[] = []
    // values decoded here, one by one: a peer's undecodable entry must not end the whole diff
    for await (const item of source.diff<Buffer>(from, null, { valueEncoding: 'binary', timeout: this.indexReadTimeoutMs })) {
      counted()
      if (this.closing) return
      if (this.queueFullFor(drive.hex)) {
        releaseWorkers()
        await this.roomFor(drive.hex)
        if (this.closing) return
      }
      const key = item.left?.key ?? item.right?.key
      if (!key) continue
      // already marked by the ranged read, and unchanged since (an entry older than the
      // listed snapshot is the very entry the snapshot held for its key): not even decoded
      if (listed && item.left && item.left.seq < listed.to && listed.covers(key)) continue
      let path: string
      let left: DriveEntry<EntryMeta> | null = null
      try {
        path = fromDriveKey(key)
        if (item.left) left = decodeEntry(item.left)
      } catch (err) {
        if (!isSyncError(err)) throw err
        this.log.warn({ code: err.code, drive: drive.shortId, ...err.details }, err.message)
        continue
      }
      if (this.deleteGate && isRequestedDelete(left?.value.metadata) && this.index.get(path)) {
        this.supersedeHints(path, new Map([[drive.hex, { entry: left, seen: ++this.hintsSeen }]]))
        deletes.push(path)
        continue
      }
      this.markFrom(drive.hex, path, left, bulk)
    }
    if (deletes.length > 0 && !this.closing) this.deleteGate?.submit(deletes)
  }

  /**
   * Is every path of the classes needed for ready, as of the drive lengths in `have`,
   * applied here? (The rest may still be arriving.)
   */
  readyClassesCaughtUp(have: ReadonlyArray<{ driveKey: Buffer; length: number }>): boolean {
    for (const h of have) {
      const hex = h.driveKey.toString('hex')
      const drive = this.drives.get(hex)
      if (!drive) return false
      if (drive.isOwn) continue
      const known = Math.max(this.readyKnownTo.get(hex) ?? 0, this.appliedVersion(hex))
      if (known < h.length) return false
    }
    if (this.readyClassesBusy()) return false
    for (const r of this.retries.values()) if (this.isReadyClass(r.item.classIndex)) return false
    for (const i of this.markedWhileRunning.values()) if (this.isReadyClass(i.classIndex)) return false
    return true
  }

  /**
   * Per configured class: what is pending and how fast it goes. `pending`: a `pendingSummary()`
   * taken just before (a status report walks the queue once, not once per part).
   */
  classProgress(pending: PendingSummary['byClass'] = this.pendingSummary(false).byClass): Array<{ name: string; requiredForReady: boolean; pendingFiles: number; pendingBytes: number; rate: ReturnType<ClassProgress['rate']> }> {
    return this.classes.names.map((name, i) => ({
      name,
      requiredForReady: i < this.readyClasses,
      pendingFiles: (pending[i] as { files: number }).files,
      pendingBytes: (pending[i] as { bytes: number }).bytes,
      rate: this.progress.rate(i + 1)
    }))
  }

  /** Has the diff of a drive given up on its index (no connected peer served it in time), and waits to try again? */
  isIndexUnserved(hex: string): boolean {
    return this.indexUnserved.has(hex)
  }

  /** How far we applied a drive (for `have` messages and exchange checks). */
  appliedVersion(hex: string): number {
    return this.diffedTo.get(hex) ?? this.index.checkpoint(hex)
  }

  get pendingCount(): number {
    return this.queue.size + this.running.size + this.retries.size + this.markedWhileRunning.size
  }

  get isDiffing(): boolean {
    return this.diffing.size > 0
  }

  /**
   * Is a diff running that is getting its index (not one waiting to try again because no peer
   * served it)? Bulk mode resumes the watcher only once none is: with every diff counted, a
   * writer withholding its index kept a node's watcher paused for as long as it did.
   */
  get isDiffingServed(): boolean {
    for (const hex of this.diffing.keys()) if (!this.indexUnserved.has(hex)) return true
    return false
  }

  get isIdle(): boolean {
    return this.pendingCount === 0 && this.diffing.size === 0
  }

  /**
   * What is queued, running or waiting for a retry, per configured class and (`byDir`) per
   * top-level directory, in one walk. A status report asks for it every time it is polled
   * (the bench: every 50 ms, while thousands of paths wait): three walks, and a directory name
   * sliced from each path, were ~3% of a fresh node's main thread.
   */
  pendingSummary(byDir = true): PendingSummary {
    const byClass = this.classes.names.map(() => ({ files: 0, bytes: 0 }))
    const dirs = new Map<string, { files: number; bytes: number }>()
    let bytes = 0
    const slotOf = (dir: string) => {
      let slot = dirs.get(dir)
      if (!slot) dirs.set(dir, (slot = { files: 0, bytes: 0 }))
      return slot
    }
    // paths come mostly in runs of one top-level directory: its slot is kept while they last
    let lastDir = ''
    let lastSlot: { files: number; bytes: number } | null = null
    const add = (path: string, item: Item) => {
      bytes += item.sizeBytes
      const cls = byClass[item.classIndex === URGENT ? this.classes.classOf(path) : item.classIndex - 1]
      if (cls) {
        cls.files++
        cls.bytes += item.sizeBytes
      }
      if (!byDir) return
      const slash = path.indexOf('/')
      if (lastSlot === null || slash === -1 || slash !== lastDir.length || !path.startsWith(lastDir)) {
        lastDir = topLevelDir(path)
        lastSlot = slotOf(lastDir)
      }
      lastSlot.files++
      lastSlot.bytes += item.sizeBytes
    }
    for (const q of this.queue.values()) add(q.path, q.value)
    for (const [p, i] of this.running) add(p, i)
    for (const [p, r] of this.retries) add(p, r.item)
    return { byDir: Object.fromEntries(dirs) as PendingByDir, bytes, byClass }
  }

  /**
   * Paths (and drive diffs, as `drive:<key>`) running for longer than `olderThanMs`, and paths
   * that ran more than `maxRuns` times since the last call (work that never settles).
   */
  stalled(olderThanMs: number, maxRuns: number): Array<{ what: string; ms?: number; runs?: number }> {
    const now = Date.now()
    const out: Array<{ what: string; ms?: number; runs?: number }> = []
    for (const [what, at] of this.startedAt) {
      // a diff waiting to try an index no peer served again: each attempt says so (REQUEST_TIMEOUT)
      if (now - at > olderThanMs && !(what.startsWith('drive:') && this.indexUnserved.has(what.slice(6)))) out.push({ what, ms: now - at })
    }
    for (const [what, runs] of this.runs) if (runs > maxRuns) out.push({ what, runs })
    this.runs.clear()
    return out
  }

  /** A path could not be synced, or a peer's entry was rejected: its error code (metrics). */
  onPathError(listener: (code: string) => void): void {
    this.errorListeners.push(listener)
  }

  private reportError(code: string): void {
    for (const l of this.errorListeners) l(code)
  }

  onIdle(listener: () => void): void {
    this.idleListeners.push(listener)
  }

  /**
   * Starts workers: urgent paths always; otherwise only paths of the lowest class that has
   * work, so a class is applied before the next one starts (a path running for longer than
   * HOLD_MAX_MS no longer counts as work of its class, and fresh changes of later classes may
   * use the workers kept for them while that class has only bulk paths queued). While a large
   * diff runs alone, only fresh changes run; bulk paths never take the workers kept for fresh ones.
   */
  /**
   * Paused, the engine starts no path but urgent ones (a file a page asks for now): local
   * changes are not published and peers' changes not applied, they wait in the queue (what
   * runs finishes). Diffs go on marking paths, within the queue's bound.
   */
  setPaused(paused: boolean): void {
    if (this.paused === paused) return
    this.paused = paused
    if (!paused) this.pump()
  }

  get isPaused(): boolean {
    return this.paused
  }

  private pump(): void {
    while (this.workers < WORKERS && this.queue.size > 0 && !this.closing) {
      let cls = this.queue.countIn(URGENT) > 0 ? URGENT : -1
      if (cls === -1 && this.paused) return
      if (cls === -1 && this.largeDiffs > 0) {
        // a large diff is being read alone: only fresh changes (a few: local edits, other
        // peers' small diffs) run beside it, so a flood or a fresh sync never holds them up
        cls = this.firstFreshClass()
        if (cls === -1) return
      }
      if (cls === -1) {
        cls = this.activeClass()
        if (cls === -1) return
        // the class being applied has only a backlog queued (a fresh sync, a flood, or contents
        // that never come): a fresh change of a later class (a live site's new upload) takes
        // one of the workers kept for fresh changes instead of waiting for all of it
        if (this.queue.peekFrom(cls)?.rank.lane === BULK && this.workers - this.bulkWorkers < FRESH_WORKERS) {
          const fresh = this.firstFreshClass()
          if (fresh !== -1) cls = fresh
        }
        if (this.queue.countIn(cls) === 0) {
          // the class is held by its running paths (a fetch that is slow, or a peer that
          // withholds it): a local change of a later class takes no bandwidth from them, so it
          // is published now (a new upload on the live node, while a theme file is stuck)
          const local = this.takeLocal()
          if (!local) return this.pumpWhenReleased(cls)
          this.start(local, false, 0)
          continue
        }
      }
      const head = this.queue.peekFrom(cls)
      if (!head) return
      const bulk = cls !== URGENT && head.value.rank.lane === BULK
      if (bulk && this.bulkWorkers >= WORKERS - FRESH_WORKERS) return
      const bytes = head.value.hints ? head.value.sizeBytes : 0
      if (cls !== URGENT && bytes > 0 && this.runningBytes > 0 && this.runningBytes + bytes > RUNNING_BYTES) return
      const next = this.queue.shiftFrom(cls)
      if (!next) return
      this.start(next, bulk, bytes)
    }
  }

  /** The first queued local change (no peer's entry), taken out of the queue; null: none. */
  private takeLocal(): Queued<Item> | null {
    for (const path of this.localQueued) {
      this.localQueued.delete(path)
      const q = this.queue.get(path)
      if (!q || q.value.hints !== null || q.classIndex === URGENT) continue
      this.queue.delete(path)
      return q
    }
    return null
  }

  /** Runs a path taken out of the queue on a worker. */
  private start(next: Queued<Item>, bulk: boolean, bytes: number): void {
    const { path, value: item } = next
    this.localQueued.delete(path)
    this.unqueued(item)
    this.running.set(path, item)
    this.runningByClass[item.classIndex]!++
    this.runningBytes += bytes
    this.startedAt.set(path, Date.now())
    this.runs.set(path, (this.runs.get(path) ?? 0) + 1)
    this.workers++
    if (bulk) this.bulkWorkers++
    const task: Promise<void> = this.work(path, item).finally(() => {
      this.inflight.delete(task)
      this.workers--
      if (bulk) this.bulkWorkers--
      this.running.delete(path)
      this.runningByClass[item.classIndex]!--
      this.runningBytes -= bytes
      this.startedAt.delete(path)
      const again = this.markedWhileRunning.get(path)
      if (again) {
        this.markedWhileRunning.delete(path)
        this.mark(path, again.sizeBytes, again.hints, again.classIndex === URGENT, again.rank.lane === BULK, again.attempts)
      }
      if (this.isReadyClass(item.classIndex)) this.readySettles++
      this.notifySettled(path)
      for (const l of [...this.settleListeners]) l()
      this.pump()
      this.prefetcher.wake()
      if (this.queue.size < MAX_QUEUED / 2) for (const wake of this.roomWaiters.splice(0)) wake()
      this.checkIdle()
    })
    this.inflight.add(task)
  }

  private async work(path: string, item: Item): Promise<void> {
    const supersede = new SupersedeSignal()
    this.supersede.set(path, supersede)
    try {
      const outcome = await this.reconciler.reconcile(path, item.hints, supersede, item.classIndex === URGENT)
      if (outcome === 'done' && item.hints) this.progress.applied(item.classIndex === URGENT ? this.classes.classOf(path) + 1 : item.classIndex, item.sizeBytes)
      if (outcome === 'unsettled') this.retry(path, item, UNSETTLED_RETRY_MS)
      else if (outcome === 'again') this.mark(path, item.sizeBytes, item.hints) // runs once more after this run
      else if (outcome === 'dir-not-empty') {
        // its children are usually being removed right now; a directory that keeps files
        // we do not sync (ignored ones, or live ones) stays, until one of them changes
        item.attempts++
        this.waitingDirs.add(path)
        if (item.attempts <= DIR_RETRIES) this.retry(path, item, Math.min(DIR_RETRY_MAX_MS, 50 * 2 ** item.attempts))
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
        this.log.warn({ code: err.code, ...err.details, path }, err.message)
        this.reportError(err.code)
        return
      }
      if (isSyncError(err) && err.code === 'E_SUPERSEDED') {
        // a newer entry arrived (markedWhileRunning): the path runs again with it at once
        this.log.debug({ path }, err.message)
        return
      }
      if (isSyncError(err) && err.code === 'E_NO_PEER') {
        // not an error: it waits for a peer, and is tried again as soon as one connects (retryNow)
        this.log.debug({ path }, err.message)
        this.retry(path, item, NO_PEER_RETRY_MS)
        return
      }
      item.attempts++
      const code = isSyncError(err) ? err.code : ((err as { code?: string }).code ?? 'E_IO')
      // a full disk gets space back at any moment: look again soon, not after a long backoff
      const maxMs = code === 'E_DISK_FULL' ? DISK_FULL_RETRY_MS : RETRY_MAX_MS
      const delay = Math.min(maxMs, RETRY_MIN_MS * 2 ** Math.min(item.attempts, 10))
      // Hypercore's: no connected peer served a block (of an index or a content) in time: slow,
      // gone, or withholding it; common and self-explaining, so without its stack
      const unserved = code === 'REQUEST_TIMEOUT'
      const message = isSyncError(err) ? err.message : unserved ? 'no connected peer served this path’s data in time; will retry' : 'could not sync a path; will retry'
      this.log.warn({ code, path, attempts: item.attempts, retryMs: delay, err: isSyncError(err) || unserved ? undefined : err }, message)
      this.lastError = { code, message: unserved ? `${message}: ${path}` : (err as Error).message, at: Date.now() }
      this.reportError(code)
      this.retry(path, item, delay)
    } finally {
      this.supersede.delete(path)
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
      this.mark(path, item.sizeBytes, item.hints, item.classIndex === URGENT, item.rank.lane === BULK, item.attempts)
    }, delayMs)
    this.retries.set(path, { timer, item })
  }

  /** Retry every waiting path and drive diff now (a peer connected, new data may be reachable). */
  retryNow(): void {
    for (const due of [...this.diffRetryWaiters]) due()
    for (const [path, r] of [...this.retries]) {
      clearTimeout(r.timer)
      this.retries.delete(path)
      this.mark(path, r.item.sizeBytes, r.item.hints, r.item.classIndex === URGENT, r.item.rank.lane === BULK, r.item.attempts)
    }
  }

  /** The gate let these deletes through: apply them (the checkpoint may move once they are). */
  deletesReleased(paths: readonly string[]): void {
    for (const p of paths) this.mark(p)
    this.checkIdle()
  }

  private checkIdle(): void {
    if (!this.isIdle || this.closing) return
    const deletesWaiting = (this.deleteGate?.waitingCount ?? 0) > 0
    for (const d of this.drives.all()) {
      // our own drive: everything we published is recorded once no reconcile runs
      const applied = d.isOwn && this.diffedTo.has(d.hex) ? d.drive.version : this.diffedTo.get(d.hex)
      if (applied !== undefined && !deletesWaiting) this.index.setCheckpoint(d.hex, applied)
      // every class is applied: now fetch and follow the whole index (a snapshot's drive), and
      // keep a full copy of the contents to serve others (read-only nodes)
      this.drives.followIndex(d)
      this.drives.keepFullCopy(d)
    }
    for (const l of this.idleListeners) l()
  }

  async close(): Promise<void> {
    this.closing = true
    if (this.holdTimer) clearTimeout(this.holdTimer)
    for (const r of this.retries.values()) clearTimeout(r.timer)
    this.retries.clear()
    for (const due of [...this.diffRetryWaiters]) due()
    this.queue.clear()
    this.localQueued.clear()
    this.queuedBy.clear()
    await this.prefetcher.close()
    for (const l of [...this.settleListeners]) l()
    for (const wake of this.roomWaiters.splice(0)) wake()
    // a path waiting for bytes has written nothing yet: it stops waiting (its next run is after the restart)
    for (const c of this.supersede.values()) c.abort()
    // let running writes finish: a graceful stop never leaves a half-applied path
    await Promise.allSettled([...this.inflight])
    await Promise.allSettled([...this.diffing.values()])
  }
}

/** Hypercore's error when no connected peer served a block within the read's timeout. */
function isRequestTimeout(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'REQUEST_TIMEOUT'
}

/** A snapshot's entries `ids`, in that order, each taken (its blocks let go with the last of them) as it is handed out. */
function* taking(list: SnapshotEntryList, ids: readonly number[]): Generator<RawEntry> {
  for (const i of ids) yield list.take(i)
}
