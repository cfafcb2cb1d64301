import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

export interface FileSpec {
  content: string | Buffer
  /** e.g. 0o755 */
  mode?: number
  /** Seconds since the epoch. */
  mtimeS?: number
}

/** Writes files (creating parent dirs) under root; a string value is the content. */
export async function writeFiles(root: string, files: Record<string, string | Buffer | FileSpec>): Promise<void> {
  for (const [rel, value] of Object.entries(files)) {
    const spec: FileSpec = typeof value === 'string' || Buffer.isBuffer(value) ? { content: value } : value
    const abs = path.join(root, rel)
    await fs.mkdir(path.dirname(abs), { recursive: true })
    // the mode is given at creation, so a watcher never sees the file without it
    await fs.writeFile(abs, spec.content, spec.mode === undefined ? {} : { mode: spec.mode })
    if (spec.mode !== undefined && ((await fs.stat(abs)).mode & 0o777) !== spec.mode) await fs.chmod(abs, spec.mode)
    if (spec.mtimeS !== undefined) await fs.utimes(abs, spec.mtimeS, spec.mtimeS)
  }
}

/**
 * `count` small files (a few hundred bytes each, unique contents) spread over nested dirs
 * (`d07/s3/f0123.txt`). Returns the relative paths.
 */
export async function writeManySmallFiles(root: string, count: number): Promise<string[]> {
  const paths: string[] = []
  const dirs = new Set<string>()
  for (let i = 0; i < count; i++) {
    const rel = `d${String(i % 30).padStart(2, '0')}/s${i % 4}/f${String(i).padStart(5, '0')}.txt`
    paths.push(rel)
    dirs.add(path.dirname(rel))
  }
  await Promise.all([...dirs].map((dir) => fs.mkdir(path.join(root, dir), { recursive: true })))
  const batchSize = 200
  for (let i = 0; i < paths.length; i += batchSize) {
    await Promise.all(
      paths.slice(i, i + batchSize).map((rel, j) => fs.writeFile(path.join(root, rel), `file ${i + j}\n${randomBytes(64 + ((i + j) % 400)).toString('hex')}\n`))
    )
  }
  return paths
}

/**
 * Random binary files of 1–5 MiB adding up to about `totalBytes`, under `big/`.
 * Returns relative path → size in bytes.
 */
export async function writeBigFiles(root: string, totalBytes: number): Promise<Map<string, number>> {
  const MiB = 1024 * 1024
  const sizes = new Map<string, number>()
  await fs.mkdir(path.join(root, 'big'), { recursive: true })
  let written = 0
  for (let i = 0; written < totalBytes; i++) {
    const sizeBytes = Math.min(MiB * (1 + (i % 5)) + 4099 * i, totalBytes - written)
    const rel = `big/blob-${String(i).padStart(3, '0')}.bin`
    await fs.writeFile(path.join(root, rel), randomBytes(sizeBytes))
    sizes.set(rel, sizeBytes)
    written += sizeBytes
  }
  return sizes
}

/** Whether a path exists (lstat: a dangling symlink exists). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}
