import type Hypercore from 'hypercore'
import { Node as BeeNode } from 'hyperbee/lib/messages.js'
import { FILES_PREFIX } from './index-snapshot.js'
import { decryptInPlace, readRawBlocks } from './raw-blocks.js'

/** Blocks per storage read, decoded before the next read (~30 ms of the event loop each; 4,096: ~120 ms). */
const CHUNK_BLOCKS = 1024

/**
 * Visits the value (Hyperdrive's JSON bytes) and path (`/themes/a.php`, UTF-8) of every file
 * entry a drive we hold whole holds at `length` (views, valid during the call), read from its raw index blocks, newest first.
 *
 * A drive's index blocks are Hyperbee nodes, each one key and its new value (null: deleted),
 * appended in order by its one writer (index-snapshot.ts), so the newest node of each key is
 * the entry: reading back from `length` and skipping keys already seen lists exactly what
 * Hyperdrive's listing of a checkout at `length` lists. Why not that listing: it walks the
 * B-tree one storage read per node; at 100,000 entries it took 10.8-15.2 s (CPU-bound) where
 * bulk reads of the blocks take 2.3 s (a sweep, measured 2026-12-02).
 *
 * Memory: the keys seen (as one-byte strings), and one chunk of blocks. A block not held, or not
 * a Hyperbee node, throws: a listing that cannot be read to the end tells nothing.
 */
export async function scanLiveEntries(core: Hypercore, length: number, visit: (value: Buffer, path: Buffer) => void): Promise<number> {
  const seen = new Set<string>()
  let visited = 0
  // block 0 is Hyperbee's header
  for (let end = length; end > 1; end -= CHUNK_BLOCKS) {
    const start = Math.max(1, end - CHUNK_BLOCKS)
    const blocks = await Promise.all(readRawBlocks(core, start, end))
    for (let k = blocks.length - 1; k >= 0; k--) {
      const seq = start + k
      const raw = blocks[k]
      if (!raw) throw new Error(`index block ${seq} of our drive is not held`)
      // a copy: what storage returns may be a buffer it still holds (an atomic session's pending
      // writes are read from its view as the very buffers written), never to be decrypted in place
      const block = await decryptInPlace(core, seq, Buffer.from(raw))
      const { key, value } = BeeNode.decode(block)
      if (!key || key.byteLength < FILES_PREFIX.length || FILES_PREFIX.compare(key, 0, FILES_PREFIX.length) !== 0) continue
      const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')
      if (seen.has(id)) continue
      seen.add(id)
      if (!value) continue
      visit(Buffer.from(value.buffer, value.byteOffset, value.byteLength), Buffer.from(key.buffer, key.byteOffset + FILES_PREFIX.length, key.byteLength - FILES_PREFIX.length))
      visited++
    }
  }
  return visited
}

/** The blocks a drive entry's value (Hyperdrive's JSON, as `scanLiveEntries` visits it) names, if any. */
export function namedBlocks(value: Buffer): { blockOffset: number; blockLength: number } | null {
  const blob = (JSON.parse(value.toString('utf8')) as { blob?: { blockOffset?: unknown; blockLength?: unknown } | null }).blob
  if (!blob || typeof blob.blockOffset !== 'number' || typeof blob.blockLength !== 'number' || blob.blockLength <= 0) return null
  return { blockOffset: blob.blockOffset, blockLength: blob.blockLength }
}
