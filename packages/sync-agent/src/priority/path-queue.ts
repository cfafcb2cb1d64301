import { compareRanks, type Rank } from './priority-classes.js'

/**
 * Paths waiting for a worker, by priority: a lower class first, inside a class the larger
 * rank first, then first come first served. Class 0 is reserved for urgent paths (a file a
 * visitor is asking for right now). A path is in the queue at most once; re-adding it
 * moves it if its class or rank changed.
 */
export interface Queued<T> {
  path: string
  value: T
  classIndex: number
  rank: Rank
  seq: number
}

function compareQueued<T>(a: Queued<T>, b: Queued<T>): number {
  return compareRanks(a.rank, b.rank) || a.seq - b.seq
}

function before<T>(a: Queued<T>, b: Queued<T>): boolean {
  return compareQueued(a, b) < 0
}

/** A class's paths in run order, as of one moment; consumed paths are skipped lazily. */
interface OrderSnapshot<T> {
  list: Array<Queued<T>>
  /** entries before this are known to be gone */
  start: number
  version: number
  builtAt: number
}

/** A binary heap with lazy deletion: stale heap slots are skipped when popped. */
class Heap<T> {
  private readonly items: Array<Queued<T>> = []

  get size(): number {
    return this.items.length
  }

  push(q: Queued<T>): void {
    const a = this.items
    a.push(q)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(a[i] as Queued<T>, a[parent] as Queued<T>)) break
      ;[a[i], a[parent]] = [a[parent] as Queued<T>, a[i] as Queued<T>]
      i = parent
    }
  }

  peek(): Queued<T> | undefined {
    return this.items[0]
  }

  pop(): Queued<T> | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let best = i
        if (l < a.length && before(a[l] as Queued<T>, a[best] as Queued<T>)) best = l
        if (r < a.length && before(a[r] as Queued<T>, a[best] as Queued<T>)) best = r
        if (best === i) break
        ;[a[i], a[best]] = [a[best] as Queued<T>, a[i] as Queued<T>]
        i = best
      }
    }
    return top
  }

  clear(): void {
    this.items.length = 0
  }
}

export class PathQueue<T> {
  private readonly byPath = new Map<string, Queued<T>>()
  private readonly heaps: Array<Heap<T>>
  private readonly counts: number[]
  private seq = 0
  /** bumped when a path is added to (or moved into) a class */
  private readonly versions: number[]
  private readonly snapshots = new Map<number, OrderSnapshot<T>>()

  constructor(readonly classCount: number) {
    this.heaps = Array.from({ length: classCount }, () => new Heap<T>())
    this.counts = new Array<number>(classCount).fill(0)
    this.versions = new Array<number>(classCount).fill(0)
  }

  get size(): number {
    return this.byPath.size
  }

  has(path: string): boolean {
    return this.byPath.has(path)
  }

  get(path: string): Queued<T> | undefined {
    return this.byPath.get(path)
  }

  /** Adds or moves a path. Keeps its place (sequence) when class and rank are unchanged. */
  set(path: string, value: T, classIndex: number, rank: Rank): void {
    const old = this.byPath.get(path)
    if (old && old.classIndex === classIndex && compareRanks(old.rank, rank) === 0) {
      old.value = value
      return
    }
    if (old) this.counts[old.classIndex]!--
    const q: Queued<T> = { path, value, classIndex, rank, seq: this.seq++ }
    this.versions[classIndex]!++
    this.byPath.set(path, q)
    this.counts[classIndex]!++
    const heap = this.heaps[classIndex] as Heap<T>
    heap.push(q)
    // paths moved again and again leave stale slots behind: rebuild before they pile up
    if (heap.size > 4 * (this.counts[classIndex] as number) + 1024) this.rebuild(classIndex)
  }

  private rebuild(classIndex: number): void {
    const heap = this.heaps[classIndex] as Heap<T>
    heap.clear()
    for (const q of this.byPath.values()) if (q.classIndex === classIndex) heap.push(q)
  }

  delete(path: string): boolean {
    const old = this.byPath.get(path)
    if (!old) return false
    this.byPath.delete(path)
    this.counts[old.classIndex]!--
    return true
  }

  /** Paths queued in a class. */
  countIn(classIndex: number): number {
    return this.counts[classIndex] ?? 0
  }

  /** The lowest class that has queued paths, or -1. */
  firstClass(): number {
    for (let c = 0; c < this.counts.length; c++) if ((this.counts[c] as number) > 0) return c
    return -1
  }

  /** The first path of the given class, left in the queue. */
  peekFrom(classIndex: number): Queued<T> | undefined {
    const heap = this.heaps[classIndex] as Heap<T>
    for (;;) {
      const top = heap.peek()
      if (!top) return undefined
      if (this.byPath.get(top.path) === top) return top
      heap.pop() // stale
    }
  }

  /** Removes and returns the first path of the given class. */
  shiftFrom(classIndex: number): Queued<T> | undefined {
    const heap = this.heaps[classIndex] as Heap<T>
    for (;;) {
      const top = heap.pop()
      if (!top) return undefined
      if (this.byPath.get(top.path) !== top) continue // moved or deleted since
      this.byPath.delete(top.path)
      this.counts[classIndex]!--
      return top
    }
  }

  /**
   * The first `limit` queued paths of a class in the order they will run (for prefetching).
   * Sorting a class is not cheap: the order is re-read at most every `maxAgeMs` while paths
   * keep arriving (paths added since then are left out until the next read).
   */
  peekOrdered(classIndex: number, limit: number, maxAgeMs = 0, now = Date.now()): Array<Queued<T>> {
    let snap = this.snapshots.get(classIndex)
    const version = this.versions[classIndex] ?? 0
    if (!snap || (snap.version !== version && now - snap.builtAt >= maxAgeMs)) {
      const list: Array<Queued<T>> = []
      for (const q of this.byPath.values()) if (q.classIndex === classIndex) list.push(q)
      list.sort(compareQueued)
      snap = { list, start: 0, version, builtAt: now }
      this.snapshots.set(classIndex, snap)
    }
    const live = (q: Queued<T>) => this.byPath.get(q.path) === q
    while (snap.start < snap.list.length && !live(snap.list[snap.start] as Queued<T>)) snap.start++
    // the paths already taken would stay referenced (with their entries) until the next read
    if (snap.start >= 1024 && snap.start * 2 >= snap.list.length) {
      snap.list = snap.list.slice(snap.start)
      snap.start = 0
    }
    const out: Array<Queued<T>> = []
    for (let i = snap.start; i < snap.list.length && out.length < limit; i++) {
      const q = snap.list[i] as Queued<T>
      if (live(q)) out.push(q)
    }
    return out
  }

  values(): IterableIterator<Queued<T>> {
    return this.byPath.values()
  }

  clear(): void {
    this.byPath.clear()
    for (const h of this.heaps) h.clear()
    this.counts.fill(0)
    this.snapshots.clear()
  }
}
