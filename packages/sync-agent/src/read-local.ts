import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readFile, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import type Hyperblobs from 'hyperblobs'
import type { BlobId } from 'hyperblobs'

/**
 * Reading the folder for publishing: a file is read once; its bytes are hashed and, when
 * they must be published, stored in our blob core from the same read. A file that changes
 * while it is read is reported as unsettled, never published half-written.
 */
export const SMALL_FILE_BYTES = 1024 * 1024
export const BLOCK_BYTES = 1024 * 1024

export interface LocalFile {
  hash: string
  /** the content when the file was small enough to keep in memory */
  buffer: Buffer | null
}

export function sameStat(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino
}

/** Hashes a file; returns null when it changed while being read. */
export async function readLocalFile(abs: string, st: Stats): Promise<LocalFile | null> {
  if (st.size <= SMALL_FILE_BYTES) {
    const buffer = await readFile(abs)
    const after = await lstat(abs)
    if (!sameStat(st, after) || buffer.length !== st.size) return null
    return { hash: createHash('sha256').update(buffer).digest('hex'), buffer }
  }
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(abs, { highWaterMark: BLOCK_BYTES })) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  const after = await lstat(abs)
  if (!sameStat(st, after) || size !== st.size) return null
  return { hash: hash.digest('hex'), buffer: null }
}

/**
 * Stores a file's bytes as a blob, hashing them in the same pass (or reusing the buffer of
 * `readLocalFile`); returns null when the file changed while being read.
 */
export async function storeLocalFile(blobs: Hyperblobs, abs: string, st: Stats, small: LocalFile | null): Promise<{ blob: BlobId; hash: string } | null> {
  if (small?.buffer) return { blob: await blobs.put(small.buffer, { blockSize: BLOCK_BYTES }), hash: small.hash }
  const hash = createHash('sha256')
  const ws = blobs.createWriteStream()
  const done = new Promise<void>((resolve, reject) => {
    ws.once('error', reject)
    ws.once('close', () => resolve())
  })
  let size = 0
  for await (const chunk of createReadStream(abs, { highWaterMark: BLOCK_BYTES })) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
    if (!ws.write(chunk as Buffer)) await new Promise((r) => ws.once('drain', r))
  }
  ws.end()
  await done
  const after = await lstat(abs)
  if (!sameStat(st, after) || size !== st.size) return null
  return { blob: ws.id, hash: hash.digest('hex') }
}

export async function readLink(abs: string): Promise<string> {
  return readlink(abs)
}
