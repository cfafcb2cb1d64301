import { createHash, randomBytes } from 'node:crypto'
import { lstat, mkdir, open, rename, rmdir, symlink, unlink, type FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { dirname, join, resolve, sep } from 'node:path'
import { SyncError, TEMP_PREFIX } from '@sync-agent/shared'
import type { LocalRecord } from './index-store.js'

/**
 * The only code that writes into the synced folder. Every file lands by temp file + rename
 * in its own directory, so no file ever shows under its final name with partial content.
 * Before replacing or removing anything it checks that the disk still holds what the index
 * says (else a local edit not yet published would be lost) and throws E_LOCAL_CHANGED.
 */
export class LocalChangeError extends Error {
  constructor(readonly path: string) {
    super(`local change at ${path} not yet published`)
  }
}

export interface FileMeta {
  mtimeMs: number
  mode: number
  size: number
  hash: string
}

export function fingerprintMatches(st: Stats, record: LocalRecord): boolean {
  const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : null
  if (kind !== record.kind) return false
  if (kind === 'dir') return true
  return st.size === record.size && st.mtimeMs === record.mtimeMs && st.ino === record.ino && (st.mode & 0o777) === record.mode
}

export function tempName(): string {
  return TEMP_PREFIX + randomBytes(6).toString('hex')
}

/** Is `target` of a link at `linkPath` (relative to the root) inside the folder? */
export function linkStaysInside(root: string, linkPath: string, target: string): boolean {
  if (target.startsWith('/')) return false
  const abs = resolve(root, dirname(linkPath), target)
  return abs === root || abs.startsWith(root.endsWith(sep) ? root : root + sep)
}

export class FolderWriter {
  /** directories known to exist: saves a mkdir per file */
  private readonly knownDirs = new Set<string>()
  /** names of our temp files being written now (a directory move can carry one elsewhere) */
  private readonly writing = new Set<string>()

  /** `onLostTemp`: a temp file of ours was moved away with its directory and must be swept */
  constructor(
    readonly root: string,
    private readonly onLostTemp: () => void = () => undefined
  ) {}

  /** Is this temp file (by name) one we are writing right now? */
  isWriting(path: string): boolean {
    return this.writing.has(path.slice(path.lastIndexOf('/') + 1))
  }

  /** Removes our temp file; if it is gone, its directory was moved (or deleted) meanwhile. */
  private async dropTemp(tmp: string): Promise<void> {
    this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
    try {
      await unlink(tmp)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.onLostTemp()
    }
  }

  abs(path: string): string {
    return join(this.root, path)
  }

  async lstatOrNull(path: string): Promise<Stats | null> {
    try {
      return await lstat(this.abs(path))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null
      throw err
    }
  }

  /** Throws LocalChangeError unless the disk at `path` matches `expected` (or is absent when expected is undefined). */
  async assertUnchanged(path: string, expected: LocalRecord | undefined): Promise<void> {
    const st = await this.lstatOrNull(path)
    if (!st) {
      if (expected && expected.kind !== 'dir') throw new LocalChangeError(path)
      return
    }
    if (!expected || !fingerprintMatches(st, expected)) throw new LocalChangeError(path)
  }

  private async ensureParent(path: string): Promise<void> {
    const parent = dirname(this.abs(path))
    if (this.knownDirs.has(parent)) return
    try {
      await mkdir(parent, { recursive: true, mode: 0o755 })
      this.knownDirs.add(parent)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        throw new SyncError('E_IO', `cannot create the directory for ${path}: a file is in the way`, { cause: err, details: { path } })
      }
      throw err
    }
  }

  /**
   * Writes `chunks` to a temp file beside `path`, checks size and sha256 against `meta`, sets
   * mtime and mode, then renames over `path` if the disk still matches `expected`.
   */
  async writeFile(path: string, chunks: AsyncIterable<Uint8Array> | Uint8Array[], meta: FileMeta, expected: LocalRecord | undefined): Promise<Stats> {
    await this.ensureParent(path)
    const tmp = join(dirname(this.abs(path)), tempName())
    this.writing.add(tmp.slice(tmp.lastIndexOf(sep) + 1))
    let handle: FileHandle
    try {
      handle = await open(tmp, 'wx', 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
        throw translateDiskError(err, path)
      }
      // the directory went away (deleted meanwhile): create it again
      this.knownDirs.delete(dirname(tmp))
      try {
        await this.ensureParent(path)
        handle = await open(tmp, 'wx', 0o600)
      } catch (again) {
        this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
        throw translateDiskError(again, path)
      }
    }
    const hash = createHash('sha256')
    let size = 0
    let renamed = false
    try {
      for await (const chunk of chunks) {
        hash.update(chunk)
        size += chunk.byteLength
        if (size > meta.size) break
        await writeAll(handle, chunk, path)
      }
      const digest = hash.digest('hex')
      if (size !== meta.size || digest !== meta.hash) {
        throw new SyncError('E_PEER_PROTOCOL', `content of ${path} does not match its entry (size ${size} vs ${meta.size})`, { details: { path } })
      }
      await handle.chmod(meta.mode & 0o777)
      const seconds = meta.mtimeMs / 1000
      await handle.utimes(seconds, seconds)
      const st = await handle.stat()
      if (st.size !== meta.size) {
        throw new SyncError('E_IO', `wrote ${st.size} of ${meta.size} bytes of ${path}`, { details: { path } })
      }
      await handle.close()
      await this.assertUnchanged(path, expected)
      await rename(tmp, this.abs(path))
      renamed = true
      this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
      return st
    } catch (err) {
      // a directory moved away mid-write: the file is re-applied where it belongs now
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.knownDirs.delete(dirname(tmp))
      throw translateDiskError(err, path)
    } finally {
      if (!renamed) {
        await handle.close().catch(() => undefined)
        await this.dropTemp(tmp)
      }
    }
  }

  async writeSymlink(path: string, target: string, expected: LocalRecord | undefined): Promise<Stats> {
    if (!linkStaysInside(this.root, path, target)) {
      throw new SyncError('E_PATH_UNSAFE', `symlink ${path} points outside the folder`, { details: { path } })
    }
    await this.ensureParent(path)
    const tmp = join(dirname(this.abs(path)), tempName())
    this.writing.add(tmp.slice(tmp.lastIndexOf(sep) + 1))
    try {
      await symlink(target, tmp)
      await this.assertUnchanged(path, expected)
      await rename(tmp, this.abs(path))
      this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
      return await lstat(this.abs(path))
    } catch (err) {
      await this.dropTemp(tmp)
      throw translateDiskError(err, path)
    }
  }

  async makeDir(path: string, mode: number): Promise<Stats> {
    const st = await this.lstatOrNull(path)
    if (st && !st.isDirectory()) throw new LocalChangeError(path)
    if (!st) {
      await this.ensureParent(path)
      await mkdir(this.abs(path), { mode: mode & 0o777 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw translateDiskError(err, path)
      })
    }
    return await lstat(this.abs(path))
  }

  /** Removes a file or link (if unchanged) or an empty directory. Returns false when a directory still has content. */
  async remove(path: string, expected: LocalRecord | undefined): Promise<boolean> {
    const st = await this.lstatOrNull(path)
    if (!st) return true
    if (st.isDirectory()) {
      try {
        await rmdir(this.abs(path))
        return true
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOTEMPTY' || code === 'EEXIST') return false
        throw translateDiskError(err, path)
      }
    }
    if (!expected || !fingerprintMatches(st, expected)) throw new LocalChangeError(path)
    await unlink(this.abs(path))
    return true
  }

  /** Removes a leftover temp file found by a scan (never one we are writing now). */
  async removeTemp(path: string): Promise<void> {
    if (!path.slice(path.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX) || this.isWriting(path)) return
    await unlink(this.abs(path)).catch(() => undefined)
  }
}

/**
 * Writes all of `chunk`: a write to a filling disk can return short without an error (the
 * next one fails with ENOSPC). Ignoring that renamed a cut file into place, with an index
 * record that called it complete (fault suite seed 501).
 */
async function writeAll(handle: FileHandle, chunk: Uint8Array, path: string): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
    if (bytesWritten === 0) {
      throw new SyncError('E_DISK_FULL', `no space left on the device while writing ${path}`, { details: { path } })
    }
    offset += bytesWritten
  }
}

export function translateDiskError(err: unknown, path: string): unknown {
  if (err instanceof SyncError || err instanceof LocalChangeError) return err
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new SyncError('E_DISK_FULL', `no space left on the device while writing ${path}`, { cause: err, details: { path } })
  }
  return err
}
