import type Hypercore from 'hypercore'
import type Hyperdrive from 'hyperdrive'
import type { Logger } from './log.js'
import type { BlockRange } from './own-drive-writer.js'
import { clearKeepingTree } from './replication/clear-blocks.js'
import { namedBlocks, scanLiveEntries } from './replication/live-entries-scan.js'

/** after the first candidate, how long the sweeper waits for more (a plugin update releases thousands at once) */
export const SWEEP_DELAY_MS = 10_000
/** a sweep reads every entry of our drive: at most this share of the time goes to it */
const MAX_SWEEP_SHARE = 0.05
/** cleared blocks' bytes after which the blob core's storage is compacted (RocksDB reclaims them then) */
export const COMPACT_AFTER_BYTES = 16 * 1024 * 1024
/** after a start, when every block of the blob core is looked at once (see `ready`) */
export const FULL_SWEEP_DELAY_MS = 20_000
/** a withdrawn large blob of more blocks is left to the next full sweep instead of listed */
const MAX_RANGE_CANDIDATES = 65_536

/**
 * Frees the blocks of our blob core that no entry of our drive names: above all the shared
 * blocks of small files (OwnDriveWriter's packs of up to PACK_BYTES), which a release cannot
 * free alone, as a pack holds many files. Without it every small file ever replaced or
 * deleted here kept its bytes in the data dir (a plugin update: its whole old version).
 *
 * Candidates are the blocks of released small files, and of large files whose entry was
 * withdrawn (a conflict lost: a copy may still name them). A sweep, SWEEP_DELAY_MS after the first
 * candidate, reads our drive's entries once, at one version (its length then: a conflict copy
 * and the withdrawal of the path it copies are one batch, so a copy's block is never seen
 * unnamed between them; read from the raw index blocks, live-entries-scan.ts: at 100,000
 * entries 2.3 s where Hyperdrive's listing of a checkout took 10.8-15.2 s), and clears each
 * candidate block no entry names and no file handed out but not yet put holds (`pinned`: its
 * entry may not be in that version yet; a large file being streamed; a touch's blob, `keep`).
 * New files never go into a block that was already written, so a block found dead stays dead.
 * Runs of dead blocks are cleared with clearKeepingTree (the first one or two of a run may
 * stay, for the Merkle tree).
 *
 * FULL_SWEEP_DELAY_MS after each start one sweep looks at every block of the blob core, not
 * only at candidates (`ready`): the same read of the entries, then every held block outside
 * what they and the pins name is cleared. It takes what no candidate list names (see
 * `ready`); at 100,000 entries it costs about what a sweep of candidates does.
 *
 * Candidates live in memory only: what a stop or a kill -9 leaves unswept, the full sweep after
 * the next start takes (until session 30 they were saved in the data dir, `blocks-to-sweep.json`,
 * written at every scheduled sweep; the full sweep made that list redundant).
 *
 * Cleared blocks leave RocksDB's files only when it compacts them, which a store that takes
 * few writes may not do for a long time: once COMPACT_AFTER_BYTES were cleared (here, or a
 * large file's own blocks: `freed`), the blob core's range is compacted (Hypercore's
 * `compact`, on RocksDB's threads). Measured: 500 blocks of 60 KiB, 480 cleared, 30.5 MiB
 * of store before, 11.9 MiB after.
 */
export class BlockSweeper {
  private candidates = new Set<number>()
  private timer: NodeJS.Timeout | null = null
  private fullTimer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private lastCostMs = 0
  private closed = false
  /** blocks freed since start (the log and tests read it) */
  freedBlocks = 0
  /** compactions since start */
  compactions = 0
  /** bytes cleared since the last compaction */
  private clearedBytes = 0
  /** the next sweep looks at every block of the blob core, not only the candidates */
  private full = false

  constructor(
    private readonly deps: {
      drive: Hyperdrive
      core: Hypercore
      /** blocks of files handed out whose entries are not flushed yet (and of a file being streamed) */
      pinned(): BlockRange[]
      log?: Logger
      delayMs?: number
      /** after `ready`, when the full sweep runs (FULL_SWEEP_DELAY_MS) */
      fullDelayMs?: number
    }
  ) {}

  /**
   * Schedules the full sweep of a start: every block of the blob core no entry names and no
   * file handed out holds is cleared, whatever released it. That covers what no list of
   * candidates (kept in memory) names: blocks released just before a stop or a kill -9, a large
   * blob withdrawn with more blocks than are listed,
   * a large file that changed while it was stored, and everything an agent of session 28 or
   * before kept (it swept nothing: every small file it replaced or deleted).
   */
  ready(): void {
    // at once when due (through `schedule`, it waited SWEEP_DELAY_MS more)
    this.fullTimer = setTimeout(() => {
      this.fullTimer = null
      this.sweep({ full: true })
        .catch((err: unknown) => this.deps.log?.warn({ err }, 'sweeping every block failed (their bytes stay; tried again later)'))
        .finally(() => this.schedule())
    }, this.deps.fullDelayMs ?? FULL_SWEEP_DELAY_MS)
    this.fullTimer.unref()
  }

  /** `block` held a small file no entry of ours names any more. */
  add(block: number): void {
    if (this.closed) return
    this.candidates.add(block)
    this.schedule()
  }

  /** Blocks start..end - 1 held a large file an entry of ours may no longer name (withdrawn). */
  addRange(start: number, end: number): void {
    if (this.closed || end <= start) return
    if (end - start > MAX_RANGE_CANDIDATES) this.full = true
    else for (let b = start; b < end; b++) this.candidates.add(b)
    this.schedule()
  }

  /** A sweep is under way (its pins were taken when it started: a pin made now is not seen). */
  get busy(): boolean {
    return this.running !== null
  }

  /** Resolves when the sweep under way (if any) has ended, failed or not. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined)
  }

  /** `bytes` of a large file's own blocks were cleared (OwnDriveWriter.release). */
  freed(bytes: number): void {
    if (this.closed || bytes <= 0) return
    this.clearedBytes += bytes
    this.schedule()
  }

  /** Sweeps now (the candidates gathered so far, or `full`: every block), then compacts if due; resolves with the blocks cleared. */
  async sweep(opts: { full?: boolean } = {}): Promise<number> {
    while (this.running) await this.running
    if (this.closed) return 0
    if (opts.full) this.full = true
    let cleared = 0
    const run = this.sweepOnce().then(async (n) => {
      cleared = n
      if (this.clearedBytes >= COMPACT_AFTER_BYTES && !this.closed) await this.compact()
    })
    this.running = run.finally(() => (this.running = null))
    await this.running
    return cleared
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    if (this.fullTimer) clearTimeout(this.fullTimer)
    this.timer = this.fullTimer = null
    while (this.running) await this.running.catch(() => undefined)
  }

  private async compact(): Promise<void> {
    const started = Date.now()
    const bytes = this.clearedBytes
    this.clearedBytes = 0
    await this.deps.core.compact()
    this.compactions++
    this.deps.log?.info({ clearedMiB: Math.round(bytes / 2 ** 20), ms: Date.now() - started }, 'compacted the blob core\'s storage (cleared blocks reclaimed)')
  }

  private schedule(): void {
    if (this.timer || this.running || this.closed || (this.candidates.size === 0 && !this.full && this.clearedBytes < COMPACT_AFTER_BYTES)) return
    const delay = Math.max(this.deps.delayMs ?? SWEEP_DELAY_MS, this.lastCostMs / MAX_SWEEP_SHARE)
    this.timer = setTimeout(() => {
      this.timer = null
      this.sweep()
        .catch((err: unknown) => this.deps.log?.warn({ err }, 'sweeping blocks failed (their bytes stay; tried again later)'))
        // what is left (blocks not written yet, or added meanwhile) is swept later
        .finally(() => this.schedule())
    }, delay)
    this.timer.unref()
  }

  private async sweepOnce(): Promise<number> {
    const full = this.full
    if (!full && this.candidates.size === 0) return 0
    const started = Date.now()
    const { core, drive } = this.deps
    const length = core.length
    // blocks not written yet (a pack being filled) wait for a later sweep; a full sweep looks
    // at every block written
    const sorted = full ? [] : [...this.candidates].filter((b) => b < length).sort((a, b) => a - b)
    for (const b of this.candidates) if (b < length) this.candidates.delete(b)
    this.full = false
    if (!full && sorted.length === 0) return 0
    // pinned first, then the entries: a file put meanwhile is in one or the other
    const pinned = this.deps.pinned()
    // once per start: when it began, should it not end
    if (full) this.deps.log?.info({ blocks: length, entries: drive.core.length }, 'sweeping every block of ours no entry names')
    const live = new Uint8Array(sorted.length)
    /** full sweep: every range an entry names */
    const named: BlockRange[] = []
    try {
      // our drive's entries at one version (its length now: a copy and the withdrawal of the
      // path it copies are one batch, one append), from its raw index blocks
      await scanLiveEntries(drive.core, drive.core.length, (value) => {
        const blob = namedBlocks(value)
        if (!blob) return
        if (full) named.push({ start: blob.blockOffset, end: blob.blockOffset + blob.blockLength })
        else markRange(sorted, live, blob.blockOffset, blob.blockOffset + blob.blockLength)
      })
    } catch (err) {
      // not read to the end: nothing is known dead; the candidates are tried again
      if (full) this.full = true
      for (const b of sorted) this.candidates.add(b)
      throw err
    }
    const kept = mergeRanges(pinned)
    // runs of blocks to clear: the candidates no entry names, or (full) every block none names
    const dead: BlockRange[] = []
    if (full) {
      for (const gap of gapsOf(mergeRanges([...named, ...kept]), length)) dead.push(...(await heldRuns(core, gap)))
    } else {
      for (let i = 0; i < sorted.length; i++) {
        const b = sorted[i] as number
        if (live[i] || covers(kept, b)) continue
        const last = dead[dead.length - 1]
        if (last && last.end === b) last.end++
        else dead.push({ start: b, end: b + 1 })
      }
    }
    let cleared = 0
    let keptForTree = 0
    for (const run of dead) {
      const from = await clearKeepingTree(core, run.start, run.end)
      cleared += run.end - from
      keptForTree += from - run.start
    }
    this.freedBlocks += cleared
    // an estimate (what compaction waits for): packs are up to 64 KiB, a large file's blocks 1 MiB
    this.clearedBytes += cleared * (length > 0 ? core.byteLength / length : 0)
    this.lastCostMs = Date.now() - started
    // info when it freed something (at most one line per sweep, SWEEP_DELAY_MS apart)
    const fields = { full, candidates: full ? length : sorted.length, cleared, keptForTree, ms: this.lastCostMs }
    if (cleared > 0 || full) this.deps.log?.info(fields, full ? 'swept every block of ours no entry names' : 'swept the blocks of files no entry names')
    else this.deps.log?.debug(fields, full ? 'swept every block of ours no entry names' : 'swept the blocks of files no entry names')
    return cleared
  }
}

/** Sorted, disjoint ranges covering the same blocks. */
function mergeRanges(ranges: readonly BlockRange[]): BlockRange[] {
  const out: BlockRange[] = []
  for (const r of [...ranges].filter((x) => x.end > x.start).sort((x, y) => x.start - y.start)) {
    const last = out[out.length - 1]
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end)
    else out.push({ start: r.start, end: r.end })
  }
  return out
}

/** Does one of `merged` (sorted, disjoint) hold block `b`? */
function covers(merged: readonly BlockRange[], b: number): boolean {
  let lo = 0
  let hi = merged.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((merged[mid] as BlockRange).end <= b) lo = mid + 1
    else hi = mid
  }
  const r = merged[lo]
  return r !== undefined && r.start <= b
}

/** The ranges of 0..length - 1 that none of `merged` (sorted, disjoint) covers. */
function gapsOf(merged: readonly BlockRange[], length: number): BlockRange[] {
  const gaps: BlockRange[] = []
  let at = 0
  for (const r of merged) {
    if (r.start >= length) break
    if (r.start > at) gaps.push({ start: at, end: r.start })
    at = Math.max(at, r.end)
  }
  if (at < length) gaps.push({ start: at, end: length })
  return gaps
}

/** The runs of blocks in `range` the core still holds (cleared ones are skipped). */
async function heldRuns(core: Hypercore, range: BlockRange): Promise<BlockRange[]> {
  const runs: BlockRange[] = []
  for (let b = range.start; b < range.end; b++) {
    if (!(await core.has(b))) continue
    const last = runs[runs.length - 1]
    if (last && last.end === b) last.end++
    else runs.push({ start: b, end: b + 1 })
  }
  return runs
}

/** Marks the candidates (sorted) in `start`..`end - 1` live. */
function markRange(sorted: readonly number[], live: Uint8Array, start: number, end: number): void {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as number) < start) lo = mid + 1
    else hi = mid
  }
  for (let i = lo; i < sorted.length && (sorted[i] as number) < end; i++) live[i] = 1
}
