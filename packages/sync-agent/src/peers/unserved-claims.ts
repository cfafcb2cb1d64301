/**
 * A peer's `have` says how far it has each drive; until we have applied that much, we are not
 * in sync with it. A peer can claim more than it ever serves: a length beyond the signed head
 * anyone sent, a drive that is no member. Left alone, one such peer keeps a node `inSync:
 * false` (and, if it is the only peer, not ready) forever.
 *
 * So a peer's claims are judged while there is nothing left to fetch (the engine idle): a peer
 * we stay behind for `afterMs` in that state is *not serving*. The caller then logs it once,
 * shows it in status, and stops counting the part of its claims that is out of reach against
 * inSync and readiness. Its drives are still followed: when the data arrives, or its claims
 * fall back to what it serves, it is serving again. Claims growing meanwhile do not restart
 * the clock (a liar could otherwise keep itself counted forever by raising them).
 */
export type ClaimChange = 'not-serving' | 'serving-again' | null

export class UnservedClaims<Peer> {
  /** since when we are idle and behind each peer's claims */
  private readonly behindSince = new Map<Peer, number>()
  private readonly notServing = new Set<Peer>()

  constructor(
    private readonly afterMs: number,
    private readonly now: () => number = Date.now
  ) {}

  /**
   * `behind`: true when there is nothing left to fetch and we are still behind what the peer
   * claims; false when we have all it claims; null when we cannot tell now (work in progress).
   * Returns what changed, for a log line.
   */
  observe(peer: Peer, behind: boolean | null): ClaimChange {
    if (behind === null) return null
    if (!behind) {
      this.behindSince.delete(peer)
      return this.notServing.delete(peer) ? 'serving-again' : null
    }
    const now = this.now()
    const since = this.behindSince.get(peer) ?? now
    this.behindSince.set(peer, since)
    if (this.notServing.has(peer) || now - since < this.afterMs) return null
    this.notServing.add(peer)
    return 'not-serving'
  }

  isNotServing(peer: Peer): boolean {
    return this.notServing.has(peer)
  }

  /** since when a not-serving peer has been behind (null while it serves) */
  notServingSince(peer: Peer): number | null {
    return this.notServing.has(peer) ? (this.behindSince.get(peer) ?? null) : null
  }

  forget(peer: Peer): void {
    this.behindSince.delete(peer)
    this.notServing.delete(peer)
  }
}
