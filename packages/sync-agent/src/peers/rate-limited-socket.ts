import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { TokenBucket } from './token-bucket.js'

/**
 * A peer's TCP socket under the agent's bandwidth limits (maxSendKiBps, maxRecvKiBps), placed
 * between the socket and Noise, so everything on the connection counts (file contents, index
 * snapshots, Hypercore replication) once limiting starts (below). Bytes pass in pieces of at most
 * `pieceBytes(rate)`, each taken from the shared bucket, so the other side sees a steady
 * trickle (its idle timeout is refreshed by every piece) rather than a whole 4 MiB message
 * after a long silence. Receiving is limited by reading the socket no faster than the rate
 * (TCP's flow control slows the sender): at most one read of the kernel's (≤ 64 KiB) waits
 * here.
 *
 * The limits apply from `startLimiting()`, which the session calls once the peer proved the
 * folder secret: before that, a stranger (who may open connections again and again) would
 * take the budget the peers share; its bytes are bounded by the handshake's timeout and the
 * number of connections waiting for their proof instead.
 */
export class RateLimitedSocket extends Duplex {
  /** bytes passed on to the reader (the limited count) */
  bytesRead = 0
  /** received, not yet passed on */
  private readonly held: Buffer[] = []
  private wantsData = false
  private socketEnded = false
  private endPushed = false
  private recvTimer: NodeJS.Timeout | null = null
  private limiting = false
  /** waits of the send side (a piece's turn, a drain), ended by destroy */
  private readonly waits = new Set<() => void>()

  constructor(
    readonly socket: Socket,
    private readonly sendBucket: TokenBucket | null,
    private readonly recvBucket: TokenBucket | null
  ) {
    super({ allowHalfOpen: true })
    socket.on('data', (chunk: Buffer) => {
      this.held.push(chunk)
      this.pump()
    })
    socket.on('end', () => {
      this.socketEnded = true
      this.pump()
    })
    socket.on('error', (err) => this.destroy(err))
    socket.on('close', () => this.onSocketClose())
    socket.pause()
  }

  /** From now on, bytes pass no faster than the buckets allow. */
  startLimiting(): void {
    this.limiting = true
  }

  private get send(): TokenBucket | null {
    return this.limiting ? this.sendBucket : null
  }

  private get recv(): TokenBucket | null {
    return this.limiting ? this.recvBucket : null
  }

  override _read(): void {
    this.wantsData = true
    this.pump()
  }

  /** Passes held bytes on as the receive limit and the reader allow; reads the socket only when none are held. */
  private pump(): void {
    while (this.held.length > 0 && this.wantsData && this.recvTimer === null && !this.destroyed) {
      let piece = this.held[0] as Buffer
      const max = this.recv ? pieceBytes(this.recv.rate) : Infinity
      if (piece.length > max) {
        this.held[0] = piece.subarray(max)
        piece = piece.subarray(0, max)
      } else {
        this.held.shift()
      }
      const wait = this.recv ? this.recv.take(piece.length) : 0
      this.bytesRead += piece.length
      if (!this.push(piece)) this.wantsData = false
      if (wait > 0) {
        this.recvTimer = setTimeout(() => {
          this.recvTimer = null
          this.pump()
        }, wait)
      }
    }
    if (this.destroyed) return
    if (this.held.length > 0 || !this.wantsData) {
      this.socket.pause()
    } else if (this.socketEnded) {
      if (!this.endPushed) {
        this.endPushed = true
        this.push(null)
      }
    } else {
      this.socket.resume()
    }
  }

  private onSocketClose(): void {
    if (this.destroyed) return
    // closed after a graceful end: the bytes still held back and the end reach the reader first
    if (this.socketEnded) {
      if (this.readableEnded) this.destroy()
      else this.once('end', () => this.destroy())
      return
    }
    this.destroy()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.send === null) {
      if (this.socket.write(chunk)) cb()
      else this.drained().then(() => cb(), cb)
      return
    }
    this.writePaced(chunk, this.send).then(() => cb(), cb)
  }

  private async writePaced(chunk: Buffer, bucket: TokenBucket): Promise<void> {
    const max = pieceBytes(bucket.rate)
    for (let at = 0; at < chunk.length; ) {
      const piece = chunk.subarray(at, at + max)
      at += piece.length
      const wait = bucket.take(piece.length)
      const flushed = this.socket.write(piece)
      if (!flushed) await this.drained()
      // the next piece (or the next write) waits until this one's share of the rate has passed
      if (wait > 0) await this.delay(wait)
      if (this.destroyed) return
    }
  }

  private drained(): Promise<void> {
    return this.wait((done) => {
      this.socket.once('drain', done)
      return () => this.socket.off('drain', done)
    })
  }

  private delay(ms: number): Promise<void> {
    return this.wait((done) => {
      const timer = setTimeout(done, ms)
      return () => clearTimeout(timer)
    })
  }

  /** A wait that ends when `start`'s callback runs or when the stream is destroyed. */
  private wait(start: (done: () => void) => () => void): Promise<void> {
    if (this.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        this.waits.delete(done)
        stop()
        resolve()
      }
      this.waits.add(done)
      const stop = start(done)
    })
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.recvTimer) clearTimeout(this.recvTimer)
    this.recvTimer = null
    this.held.length = 0
    for (const done of [...this.waits]) done()
    this.socket.destroy()
    cb(err)
  }
}

/** Pieces of an eighth of a second's worth, 4–64 KiB: steady at low rates, few writes at high ones. */
export function pieceBytes(rate: number): number {
  return Math.max(4096, Math.min(65536, Math.floor(rate / 8)))
}
