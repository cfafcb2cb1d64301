import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { MAX_SUM_BLOCK, MAX_SUMS, MIN_SUM_BLOCK, SUM_BYTES } from '../protocol.js'

/**
 * The sha256 of each fixed-size block of a file: what both ends of a delta fetch compare
 * (content/delta-plan.ts). The peer that has the new version sums it on request
 * (content-server.ts, message 8); the node that has an older version sums that one, and
 * fetches only the blocks whose sums it does not hold (Syncthing's block list, rsync's
 * checksums, without a rolling hash: a block is reused where it starts at a multiple of the
 * block size in both versions, as after an append or an edit in place).
 *
 * The block size follows the new version's size: about TARGET_BLOCKS blocks, 128 KiB to
 * 16 MiB (a power of two). A block whose sum matches is still only a candidate: the whole
 * file's sha256, which the signed entry names, is checked as before.
 */
export const TARGET_BLOCKS = 2048
/** files are read for their sums in pieces of this size */
const READ_BYTES = 1024 * 1024

export function blockSizeFor(size: number): number {
  let blockSize = MIN_SUM_BLOCK
  while (blockSize < MAX_SUM_BLOCK && blockSize * TARGET_BLOCKS < size) blockSize *= 2
  return blockSize
}

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize)
}

/** Can a file of `size` bytes have sums of blocks of `blockSize` in one answer? */
export function sumsFit(size: number, blockSize: number): boolean {
  return blockCount(size, blockSize) <= MAX_SUMS
}

/** reads up to `length` bytes at `position` into `buf`, returns how many it read (0 at the end) */
export type ReadAt = (buf: Buffer, length: number, position: number) => Promise<number>

/**
 * Reads `size` bytes from the start with `read` and calls `onSum` with each block's sha256,
 * in order (the last block may be shorter). Returns the bytes read: fewer than `size` when
 * the file ended early (it changed meanwhile; the sums then describe only that much).
 */
export async function sumBlocks(read: ReadAt, size: number, blockSize: number, onSum: (sum: Buffer, index: number) => void | Promise<void>): Promise<number> {
  const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, blockSize, Math.max(size, 1)))
  let at = 0
  for (let index = 0; at < size; index++) {
    const end = Math.min(size, at + blockSize)
    const hash = createHash('sha256')
    while (at < end) {
      const got = await read(buf, Math.min(buf.length, end - at), at)
      if (got === 0) return at
      hash.update(buf.subarray(0, got))
      at += got
    }
    await onSum(hash.digest(), index)
  }
  return at
}

/** A block's sum as a map key (its bytes as a latin1 string), read at `start` of `sums`. */
export function sumKey(sums: Uint8Array, start = 0): string {
  return Buffer.from(sums.buffer, sums.byteOffset + start, SUM_BYTES).toString('latin1')
}

/**
 * sum key → offset of the first block with that sum, for the file at `abs` (the old version a
 * delta fetch copies from); fails at the next block once `stop.requested`
 */
export async function sumsOfFile(abs: string, blockSize: number, stop: { requested: boolean }): Promise<Map<string, number>> {
  const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    const { size } = await handle.stat()
    const sums = new Map<string, number>()
    const read = async (buf: Buffer, length: number, position: number) => (await handle.read(buf, 0, length, position)).bytesRead
    await sumBlocks(read, size, blockSize, (sum, index) => {
      if (stop.requested) throw new Error('no longer needed')
      const key = sumKey(sum)
      if (!sums.has(key)) sums.set(key, index * blockSize)
    })
    return sums
  } finally {
    await handle.close()
  }
}
