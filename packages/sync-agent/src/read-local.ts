import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readFile, readlink } from 'node:fs/promises'
import type { Stats } from 'node:fs'

/**
 * Reading the folder for publishing: a file is read once; its bytes are hashed and, when
 * they must be published, stored in our blob core from the same read. A file that changes
 * while it is read is reported as unsettled, never published half-written.
 */
export const SMALL_FILE_BYTES = 1024 * 1024

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
  for await (const chunk of createReadStream(abs, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  const after = await lstat(abs)
  if (!sameStat(st, after) || size !== st.size) return null
  return { hash: hash.digest('hex'), buffer: null }
}

export async function readLink(abs: string): Promise<string> {
  return readlink(abs)
}
