import { SyncError } from '@sync-agent/shared'
import type Hyperblobs from 'hyperblobs'
import type { Version } from './entry-format.js'

/**
 * Reads file contents out of member drives' blob cores. Small files share blocks, so the
 * blocks read recently are kept (a few MiB at most) and concurrent reads of one block share a
 * single request. Large files are streamed.
 */
const CACHE_BLOCKS = 64
const IN_MEMORY_BYTES = 1024 * 1024
export const FETCH_TIMEOUT_MS = 30_000
/**
 * How long one request for a version's blocks may go unanswered before it is dropped and asked
 * again, within the read's whole wait (`timeoutMs`). Fault suite (session 27, +3 h clock skew,
 * busy CPU): a request for a block a connected peer had (its bitfield said so, nothing was in
 * flight) went unanswered for the whole 30 s; the same read asked again a second later was
 * served at once. Hypercore does not re-send a request it has parked, so the reader does.
 */
export const STALL_MS = 5_000

/** A request of a read that went unanswered for `stallMs` and is asked again (see STALL_MS). */
export type OnStall = (version: Version, blobs: Hyperblobs, attempt: number) => void

export class BlobReader {
  private readonly cache = new Map<string, Promise<Buffer | null>>()

  /**
   * `timeoutMs`: how long a read waits for a block no connected peer has (requestTimeoutS);
   * `stallMs`: how long one request of it may go unanswered before it is asked again
   */
  constructor(
    private readonly timeoutMs = FETCH_TIMEOUT_MS,
    private readonly stallMs = STALL_MS,
    private readonly onStall: OnStall = () => undefined
  ) {}

  async read(version: Version, blobs: Hyperblobs): Promise<AsyncIterable<Uint8Array> | Uint8Array[]> {
    const blob = version.blob
    if (version.size === 0 || !blob) return []
    if (blob.blockLength === 1) {
      const block = await this.askingAgain(version, blobs, (timeout) => this.block(version.drive, blobs, blob.blockOffset, timeout))
      if (!block) throw new Error(`content of ${version.path} is not available from any peer`)
      if (version.at + version.size > block.length) {
        throw new SyncError('E_PEER_PROTOCOL', `content of ${version.path} lies outside its block`, { details: { path: version.path } })
      }
      return [block.subarray(version.at, version.at + version.size)]
    }
    if (version.size <= IN_MEMORY_BYTES) {
      const buf = await this.askingAgain(version, blobs, (timeout) => blobs.get(blob, { timeout }))
      if (!buf) throw new Error(`content of ${version.path} is not available from any peer`)
      return [buf]
    }
    // a stream's blocks are not asked again: each waits up to the whole timeout (a newer entry
    // for the path still ends the wait: supersedableChunks)
    return blobs.createReadStream(blob, { timeout: this.timeoutMs })
  }

  /**
   * `get(timeout)` until it answers, each request dropped and asked again after `stallMs`
   * unanswered, for `timeoutMs` in all; then its REQUEST_TIMEOUT is thrown.
   */
  private async askingAgain<T>(version: Version, blobs: Hyperblobs, get: (timeout: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs
    for (let attempt = 1; ; attempt++) {
      const left = Math.max(1, deadline - Date.now())
      const timeout = Math.min(this.stallMs, left)
      try {
        return await get(timeout)
      } catch (err) {
        if ((err as { code?: string }).code !== 'REQUEST_TIMEOUT' || timeout >= left) throw err
        this.onStall(version, blobs, attempt)
      }
    }
  }

  private block(drive: string, blobs: Hyperblobs, index: number, timeout: number): Promise<Buffer | null> {
    const key = drive + ':' + index
    let pending = this.cache.get(key)
    if (pending) {
      // refresh its place in the LRU order
      this.cache.delete(key)
      this.cache.set(key, pending)
      return pending
    }
    pending = blobs.core.get(index, { timeout })
    pending.catch(() => this.cache.delete(key))
    this.cache.set(key, pending)
    if (this.cache.size > CACHE_BLOCKS) this.cache.delete(this.cache.keys().next().value as string)
    return pending
  }
}
