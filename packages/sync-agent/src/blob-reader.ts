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
 * How long one request for a version's blocks may go unanswered before the reader looks
 * elsewhere (peers' folders) and asks again, within the read's whole wait (FETCH_TIMEOUT_MS):
 * Hypercore keeps a request it sent to a peer that does not answer (a link cut without a word)
 * or could not send until its timeout, and does not ask again. The fault suite logged such
 * stalls, with a peer that had the block, in every round of session 28's batch (reconcile-path.ts,
 * fetch). The slow CI rounds that led here (sessions 27–28) had another cause: clear-blocks.ts.
 */
export const STALL_MS = 5_000

export class BlobReader {
  private readonly cache = new Map<string, Promise<Buffer | null>>()

  /** `timeoutMs`: how long a read waits for a block no connected peer has (requestTimeoutS) */
  constructor(readonly timeoutMs = FETCH_TIMEOUT_MS) {}

  /**
   * One attempt: a small file's blocks are waited for up to `timeout` (REQUEST_TIMEOUT after
   * it); a large file's stream is returned at once and each of its blocks waits up to the
   * whole `timeoutMs`.
   */
  async read(version: Version, blobs: Hyperblobs, timeout = this.timeoutMs): Promise<AsyncIterable<Uint8Array> | Uint8Array[]> {
    const blob = version.blob
    if (version.size === 0 || !blob) return []
    if (blob.blockLength === 1) {
      const block = await this.block(version.drive, blobs, blob.blockOffset, timeout)
      if (!block) throw new Error(`content of ${version.path} is not available from any peer`)
      if (version.at + version.size > block.length) {
        throw new SyncError('E_PEER_PROTOCOL', `content of ${version.path} lies outside its block`, { details: { path: version.path } })
      }
      return [block.subarray(version.at, version.at + version.size)]
    }
    if (version.size <= IN_MEMORY_BYTES) {
      const buf = await blobs.get(blob, { timeout })
      if (!buf) throw new Error(`content of ${version.path} is not available from any peer`)
      return [buf]
    }
    return blobs.createReadStream(blob, { timeout: this.timeoutMs })
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
