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

function before<T>(a: Queued<T>, b: Queued<T>): boolean {
  const byRank = compareRanks(a.rank, b.rank)
  return byRank !== 0 ? byRank < 0 : a.seq < b.seq
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

  constructor(readonly classCount: number) {
    this.heaps = Array.from({ length: classCount }, () => new Heap<T>())
    this.counts = new Array<number>(classCount).fill(0)
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

  /** The queued paths of a class in the order they will run (for prefetching), at most `limit`. */
  peekOrdered(classIndex: number, limit: number): Array<Queued<T>> {
    const live = [...this.byPath.values()].filter((q) => q.classIndex === classIndex)
    live.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0))
    return live.slice(0, limit)
  }

  values(): IterableIterator<Queued<T>> {
    return this.byPath.values()
  }

  clear(): void {
    this.byPath.clear()
    for (const h of this.heaps) h.clear()
    this.counts.fill(0)
  }
}
