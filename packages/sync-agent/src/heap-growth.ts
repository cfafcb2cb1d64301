import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'

/**
 * How far V8 lets the JS heap grow past what survived its last full collection before it
 * collects again (`--heap-growing-percent`), chosen after every full collection from what
 * survived it.
 *
 * Why not V8's default: it grows the heap up to 4× while allocation is fast (the diff of a
 * flood of entries): 40 MiB live became 160 MiB of heap, most of it garbage, and the peak RSS
 * of a node flooded with a million entries crossed 450 MiB. A fixed 30% (sessions 7–11)
 * fixed that, but on a small heap it made V8 collect all the time: 30% of 24 MiB is less than
 * the new space V8 keeps in reserve, so incremental marking started again as soon as a
 * collection ended. A fresh peer's initial sync (24 MiB live) ran 38 full collections on B
 * and 105 on A (which serves the files) in 1.3 s, and took 5.1–6.9 s against 3.9–4.7 s
 * without the flag (`BENCH_AGENT_NODE_ARGS=--trace-gc`, 2026-11-30).
 *
 * So the heap may grow by MIN_GROWTH_BYTES or GROWTH_PERCENT of what is live, whichever is
 * more (and at most MAX_PERCENT): a small heap is collected as rarely as V8 would, a large one
 * grows by 30% at most. This caps nothing: a folder whose index needs a large heap gets it.
 * V8 reads the flag at every collection, so setting it at run time takes effect from the next
 * one.
 */
export const GROWTH_PERCENT = 30
export const MIN_GROWTH_BYTES = 48 * 1024 * 1024
/**
 * V8 applies the percent at a collection; we learn of a collection only afterwards, so a
 * percent set for a small heap can still be in force at the next one, when the heap may be
 * large (a fresh node's index of 100,000 files): the heap then may grow that much. With 300%
 * the heap of such a node reached 465 MiB with ~80 MiB live (peak RSS 765 MiB, 496 with a
 * flat 30%). The percent is also re-read from the heap's size every POLL_MS, which keeps it
 * close, and is never more than 200%.
 */
export const MAX_PERCENT = 200
export const POLL_MS = 250

/** The growing percent for a heap with `liveBytes` live after a full collection. */
export function growthPercentFor(liveBytes: number): number {
  if (!(liveBytes > 0)) return MAX_PERCENT
  const percent = Math.ceil((MIN_GROWTH_BYTES / liveBytes) * 100)
  return Math.min(MAX_PERCENT, Math.max(GROWTH_PERCENT, percent))
}

export interface HeapGrowthDeps {
  setFlags(flags: string): void
  /**
   * bytes of JS heap in use now: right after a full collection, what survived it; between
   * collections more (garbage too), so the percent chosen is smaller, never larger
   */
  heapUsed(): number
  /** how often the heap's size is read between collections (0: only after them) */
  pollMs: number
}

const realDeps: HeapGrowthDeps = {
  setFlags: setFlagsFromString,
  heapUsed: () => getHeapStatistics().used_heap_size,
  pollMs: POLL_MS
}

/**
 * Sets the growing percent at start (for the heap there is then), after each full collection
 * and every `pollMs`. One per process; `close()` stops (the last percent stays set).
 */
export class HeapGrowthTuner {
  private observer: PerformanceObserver | null = null
  private poll: NodeJS.Timeout | null = null
  private current = -1
  /** how many times the percent was changed (for tests and logs) */
  changes = 0

  constructor(private readonly deps: HeapGrowthDeps = realDeps) {}

  ready(): void {
    if (this.observer) return
    this.apply()
    this.observer = new PerformanceObserver((list) => {
      if (list.getEntries().some(isFullCollection)) this.apply()
    })
    this.observer.observe({ entryTypes: ['gc'] })
    if (this.deps.pollMs > 0) {
      this.poll = setInterval(() => this.apply(), this.deps.pollMs)
      this.poll.unref()
    }
  }

  close(): void {
    this.observer?.disconnect()
    this.observer = null
    if (this.poll) clearInterval(this.poll)
    this.poll = null
  }

  private apply(): void {
    const percent = growthPercentFor(this.deps.heapUsed())
    if (percent === this.current) return
    this.current = percent
    this.changes++
    this.deps.setFlags(`--heap-growing-percent=${percent}`)
  }
}

function isFullCollection(entry: PerformanceEntry): boolean {
  const detail = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail
  return detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR
}
