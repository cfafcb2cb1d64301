/**
 * Publish times that do not depend on one device's wall clock being right.
 *
 * The merge breaks ties between concurrent versions by publish time, so a device whose clock
 * runs hours ahead would win every concurrent edit (and one behind would lose every one).
 * Every peer tells us its wall clock when a connection opens; our offset is the median of
 * (peer clock − our clock) over the peers we know, with our own 0 counted in (two devices
 * meet half-way). A lone skewed device is thus moved to the cluster's time, and the rest do
 * not move. The offsets are kept in the data dir, so a restarted device publishes with the
 * correction before any peer is back. Peers more than MAX_OFFSET_MS away are ignored (a broken or hostile clock must not
 * drag us years away). Times handed out never go backwards.
 */
export const MAX_OFFSET_MS = 30 * 24 * 3_600_000

export class ClusterClock {
  private readonly offsets = new Map<string, number>()
  private offset = 0
  private last = 0

  /** `known`: offsets per peer from an earlier run (see `offsets`), so a restart keeps them */
  constructor(
    private readonly wall: () => number = Date.now,
    known: Record<string, number> = {}
  ) {
    for (const [device, offset] of Object.entries(known)) {
      if (Number.isFinite(offset) && Math.abs(offset) <= MAX_OFFSET_MS) this.offsets.set(device, offset)
    }
    this.offset = this.median()
  }

  /** offset per peer, to persist */
  get peerOffsets(): Record<string, number> {
    return Object.fromEntries(this.offsets)
  }

  private median(): number {
    const sorted = [0, ...this.offsets.values()].sort((a, b) => a - b)
    const mid = sorted.length >> 1
    return sorted.length % 2 === 1 ? (sorted[mid] as number) : Math.round(((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2)
  }

  /**
   * A peer said its clock read `peerNowMs` (as we received it, so the network delay
   * counts against the peer: milliseconds, negligible here). Returns the new offset.
   */
  observePeer(device: string, peerNowMs: number): number {
    const offset = peerNowMs - this.wall()
    if (!Number.isFinite(offset) || Math.abs(offset) > MAX_OFFSET_MS) return this.offset
    this.offsets.set(device, offset)
    this.offset = this.median()
    return this.offset
  }

  /** ms the cluster's clock is ahead of ours (negative: behind) */
  get offsetMs(): number {
    return this.offset
  }

  /** The cluster's time now, in ms since the epoch; strictly increasing. */
  now(): number {
    this.last = Math.max(this.wall() + this.offset, this.last + 1)
    return this.last
  }
}
