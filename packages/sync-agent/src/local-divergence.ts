import type { LocalChanges } from '@sync-agent/shared'

/**
 * A read-only peer publishes nothing: what is edited, added or deleted in its folder stays
 * local, is not overwritten by the folder's updates, and is listed here (for status) until
 * `sync-agent revert` puts the shared state back. Nothing is persisted: at start the scan
 * finds the same differences again (the index still describes the shared state).
 */
const SAMPLE = 10

export class LocalDivergence {
  private readonly diverging = new Set<string>()
  private readonly reverting = new Set<string>()

  add(path: string): void {
    this.diverging.add(path)
  }

  /** The disk agrees with the folder again (edited back, or reverted). */
  agreed(path: string): void {
    this.diverging.delete(path)
    this.reverting.delete(path)
  }

  isReverting(path: string): boolean {
    return this.reverting.has(path)
  }

  /** `sync-agent revert`: every diverging path is to be put back; returns them. */
  startRevert(): string[] {
    const all = [...this.diverging]
    for (const p of all) this.reverting.add(p)
    this.diverging.clear()
    return all
  }

  status(): LocalChanges | null {
    if (this.diverging.size === 0) return null
    const sample: string[] = []
    for (const p of this.diverging) {
      if (sample.length >= SAMPLE) break
      sample.push(p)
    }
    return { count: this.diverging.size, sample }
  }
}
