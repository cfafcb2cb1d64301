/**
 * A token bucket for one direction of the peer traffic (maxSendKiBps / maxRecvKiBps): one
 * bucket is shared by every connection, so the limit holds for the agent as a whole, as
 * Syncthing's and Resilio Sync's do. `take` always grants and returns how long the caller
 * must wait before it uses what it took (the bucket goes into debt), so a piece larger than
 * the bucket still passes, at the rate.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    /** bytes per second */
    readonly rate: number,
    /** at most this many bytes pass at once after an idle spell */
    readonly burst: number,
    private readonly now: () => number = () => performance.now()
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new RangeError(`a token bucket needs a positive rate and burst (got ${rate}, ${burst})`)
    this.tokens = burst
    this.last = now()
  }

  /** Takes `bytes`; returns the milliseconds to wait before sending (or reading on) them. */
  take(bytes: number): number {
    this.refill()
    this.tokens -= bytes
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000)
  }

  private refill(): void {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
  }
}

/** The bucket for a limit in KiB/s (0: none); a burst of a quarter second, at least 16 KiB. */
export function bucketFor(kibPerSecond: number): TokenBucket | null {
  if (kibPerSecond <= 0) return null
  const rate = kibPerSecond * 1024
  return new TokenBucket(rate, Math.max(16 * 1024, rate / 4))
}
