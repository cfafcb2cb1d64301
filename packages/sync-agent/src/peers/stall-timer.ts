/** what a connection must carry within a wait's timeout for the wait to go on (a keep-alive is ~20 bytes every 5 s) */
export const PROGRESS_BYTES = 4096

/** What a stall timer reads of a connection: the bytes received on it so far. */
export interface ConnectionProgress {
  readonly bytesIn: number
}

/**
 * The timeout of a wait for a peer's answer (a content window, an index answer) that ends it
 * only when the peer's connection carried less than PROGRESS_BYTES in `ms`: an answer queued
 * behind others on a slow or rate-limited link (maxSendKiBps on the peer, maxRecvKiBps here)
 * is not a stall; a peer that sends nothing, or only keep-alives, is.
 */
export class StallTimer {
  private mark: number
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly connection: ConnectionProgress,
    ms: number,
    onStall: () => void
  ) {
    this.mark = connection.bytesIn
    this.timer = setTimeout(() => {
      const now = this.connection.bytesIn
      if (now - this.mark >= PROGRESS_BYTES) {
        this.mark = now
        this.timer.refresh()
      } else {
        onStall()
      }
    }, ms)
    this.timer.unref()
  }

  /** the answer made progress itself: the timeout starts again */
  refresh(): void {
    this.mark = this.connection.bytesIn
    this.timer.refresh()
  }

  clear(): void {
    clearTimeout(this.timer)
  }
}
