import { createHash, randomBytes } from 'node:crypto'
import { chown, lchown, link, lstat, mkdir, open, readdir, rename, rmdir, statfs, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises'
import { chmodSync, chownSync, lstatSync, mkdirSync, type Stats } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { STAGING_DIR, SyncError, TEMP_PREFIX, type FileOwner } from '@sync-agent/shared'
import type { LocalRecord } from './index-store.js'
import { formatBytes } from './cli/format-status.js'
import { synchronousOps, threadPoolOps, type FileOps, type WritableFile } from './file-ops.js'
import { crashPoint } from './crash-points.js'
import type { VersionArchive } from './version-archive.js'
import { RemadeDirs } from './remade-dirs.js'

/** files up to this size, whose bytes are all in memory, are placed with synchronous calls (file-ops.ts) */
export const SYNC_WRITE_BYTES = 256 * 1024

/**
 * The only code that writes into the synced folder. Every file lands by temp file + rename,
 * so no file ever shows under its final name with partial content. The temp files are written
 * in the staging directory at the folder's root (`STAGING_DIR`), out of reach of what programs
 * do to the folder's directories: after a kill -9, a temp file still there proves its rename
 * never happened, even when a program deleted the file's directory meanwhile (a theme update;
 * see recoverPlacements). Directories on another file system than the staging directory (a
 * mount inside the folder) get their temp files beside the file, as before.
 * Before replacing or removing anything it checks that the disk still holds what the index
 * says (else a local edit not yet published would be lost) and throws E_LOCAL_CHANGED.
 * Everything it creates gets the configured owner and modes (`fileOwner`, `fileMode`,
 * `dirMode`), so the web server can always edit what was synced. With `archive` set
 * (`versionsDir`), a file it replaces or deletes is kept there first.
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
  /**
   * the chunks' source checks them against `hash` and fails before their end if they differ
   * (content-fetcher.ts): the writer then checks only the size (a file hashed once)
   */
  hashChecked?: boolean
}

/** What the caller of `writeFile` does around the rename that puts the file in place. */
export interface ReplaceHooks {
  /**
   * Awaited just before the rename, with the temp file's name (in the path's directory) and
   * its stat, which the rename keeps (the engine: the apply's intent, with them, reaches the
   * journal). `byLink`: a new file, placed with a hard link (the temp name then stays until it
   * is unlinked just after), not a rename (on a file system without hard links it is renamed
   * after all, and its temp name goes with it).
   */
  beforeRename?: (placing: { tmp: string; st: Stats; byLink: boolean }) => Promise<void>
  /**
   * Called when `beforeRename` was awaited and the rename then did not happen (a local change
   * found, an error): the caller takes its journal entry back. The temp file is removed only
   * when it resolves true (else the journal may still name it, and a temp file gone would read
   * as renamed after a crash: it stays until the next start).
   */
  abandoned?: () => Promise<boolean>
  /**
   * Names for saving an edit that landed on the replaced file between the last check and the
   * rename (it went to the inode the rename unlinked); without it such an edit is gone.
   */
  rescueAs?: (attempt: number) => string
  /** Told where the versions dir kept the file being replaced (an absolute path); taken back if the rename does not happen. */
  keptAs?: (version: string) => void
}

export function fingerprintMatches(st: Stats, record: LocalRecord): boolean {
  const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : null
  if (kind !== record.kind) return false
  if (kind === 'dir') return true
  // a link's size is its target's length, which records do not keep (a new target is a new
  // link: another inode). Compared, every recorded link looked changed, and a peer's delete of
  // one was taken for a local edit and undone
  if (kind === 'symlink') return st.mtimeMs === record.mtimeMs && st.ino === record.ino
  return st.size === record.size && st.mtimeMs === record.mtimeMs && st.ino === record.ino && (st.mode & 0o777) === record.mode
}

/** The lstat of an absolute path, or null if nothing is there (a parent that is a file included). */
export function lstatAt(abs: string): Stats | null {
  try {
    return lstatSync(abs, { throwIfNoEntry: false }) ?? null
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null
    throw err
  }
}

/** Does the disk (`st`, null: nothing there) differ from what the index recorded of the path? */
export function differsFromRecord(st: Stats | null, record: LocalRecord | undefined): boolean {
  return st ? !record || !fingerprintMatches(st, record) : record !== undefined
}

/** What the writer applies to what it creates; null leaves the default (process owner, synced mode). */
export interface WritePermissions {
  owner: FileOwner | null
  fileMode: number | null
  dirMode: number | null
}

export const DEFAULT_PERMISSIONS: WritePermissions = { owner: null, fileMode: null, dirMode: null }

/**
 * The mode a synced file gets: the synced bits, or `fileMode` with the exec bits following the
 * synced file (exec is part of its content): 0644 stays 0644, or becomes 0755 for an executable.
 */
export function fileModeFor(synced: number, fileMode: number | null): number {
  if (fileMode === null) return synced & 0o777
  const exec = (synced & 0o111) !== 0 ? (fileMode & 0o444) >> 2 : 0
  return (fileMode & 0o666) | exec
}

/** per process: random (another process, or this one before a restart, never collides), then counted */
const TEMP_PROCESS = randomBytes(4).toString('hex')
let tempCounter = 0

export function tempName(): string {
  // a fresh random name for each of thousands of files cost more than the rest of naming them
  return `${TEMP_PREFIX}${TEMP_PROCESS}-${(tempCounter++).toString(36)}`
}

/** Files at least this large are checked against the free space before they are written. */
const CHECK_SPACE_BYTES = 16 * 1024 * 1024
const RESCUE_CHUNK_BYTES = 1024 * 1024
const RESCUE_MIN_CHUNK_BYTES = 64 * 1024
/** link(2) errors of file systems that have no hard links (FAT, some FUSE and network mounts) */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'])

/**
 * Is `target` of a link at `linkPath` (relative to the root) inside the folder? Absolute
 * targets are not, and neither is a `..` after a name (`d/b/..`): if `d/b` is itself a link,
 * the kernel resolves the `..` from wherever it points, not from `d`.
 */
export function linkStaysInside(root: string, linkPath: string, target: string): boolean {
  if (target.startsWith('/')) return false
  let seenName = false
  for (const segment of target.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment !== '..') seenName = true
    else if (seenName) return false
  }
  const abs = resolve(root, dirname(linkPath), target)
  return abs === root || abs.startsWith(root.endsWith(sep) ? root : root + sep)
}

export class FolderWriter {
  /** directories known to exist (and to be real directories inside the folder): saves a mkdir per file */
  private readonly knownDirs = new Set<string>()
  /** names of our temp files being written now (a directory move can carry one elsewhere) */
  private readonly writing = new Set<string>()
  /** directories being checked or created now, shared by the files written into them */
  private readonly ensuring = new Map<string, Promise<void>>()
  /** the device of the staging directory (the root's; null: temp files go beside their file) */
  private stagingDev: number | null = null
  /** per directory (absolute): is it on the staging directory's file system? */
  private readonly stagingReaches = new Map<string, boolean>()
  /** where a file this writer replaces or removes is kept first (`versionsDir`); null: nowhere */
  archive: VersionArchive | null = null
  /** directories this writer removed lately (see RemadeDirs) */
  private readonly remadeDirs: RemadeDirs

  /**
   * `onLostTemp`: a temp file of ours was moved away with its directory and must be swept.
   * `onDirRemade`: a directory this writer removed a moment ago was made again (a path
   * relative to the root): the folder's watch of it may be stale (see RemadeDirs).
   */
  constructor(
    readonly root: string,
    private readonly perms: WritePermissions = DEFAULT_PERMISSIONS,
    private readonly onLostTemp: () => void = () => undefined,
    onDirRemade: (path: string) => void = () => undefined
  ) {
    this.remadeDirs = new RemadeDirs((abs) => onDirRemade(relative(this.root, abs).split(sep).join('/')))
  }

  /**
   * Empties the staging directory of what an earlier run left (call it after
   * recoverPlacements, which reads those leftovers); the directory itself is made with the
   * first temp file. Returns why temp files must go beside their files instead (for the log),
   * or null.
   */
  async prepareStaging(): Promise<string | null> {
    const dir = this.abs(STAGING_DIR)
    try {
      const st = lstatAt(dir)
      if (st && !st.isDirectory()) return `${STAGING_DIR} is not a directory`
      if (st) {
        for (const name of await readdir(dir)) {
          if (!this.writing.has(name)) await unlink(join(dir, name)).catch(() => undefined)
        }
      }
      this.stagingDev = (await lstat(this.root)).dev
      this.stagingReaches.clear()
      return null
    } catch (err) {
      this.stagingDev = null
      return `cannot use ${STAGING_DIR}: ${(err as Error).message}`
    }
  }

  /** Makes the staging directory (again, if it was deleted), with the configured owner. */
  private async makeStaging(): Promise<void> {
    const dir = this.abs(STAGING_DIR)
    try {
      await mkdir(dir, { mode: 0o700 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return
      throw err
    }
    if (this.perms.owner) await chown(dir, this.perms.owner.uid, this.perms.owner.gid)
  }

  /** A new temp file's absolute path: in the staging directory when a rename from there can reach `path`. */
  private tempFor(path: string): string {
    const parent = dirname(this.abs(path))
    if (this.stagingDev !== null) {
      let reaches = this.stagingReaches.get(parent)
      if (reaches === undefined) {
        reaches = lstatAt(parent)?.dev === this.stagingDev
        this.stagingReaches.set(parent, reaches)
      }
      if (reaches) return join(this.root, STAGING_DIR, tempName())
    }
    return join(parent, tempName())
  }

  /** How the journal names a temp file: relative to the root if staged, else its name beside the file (see recoverPlacements). */
  private journalName(tmp: string): string {
    const staged = join(this.root, STAGING_DIR) + sep
    return tmp.startsWith(staged) ? `${STAGING_DIR}/${tmp.slice(staged.length)}` : tmp.slice(tmp.lastIndexOf(sep) + 1)
  }

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

  /** Does a directory we create get an owner or a mode of ours (claimDir)? */
  private get claimsDirs(): boolean {
    return Boolean(this.perms.owner) || this.perms.dirMode !== null
  }

  /** Owner and mode of a directory we just created (mkdir's mode is cut by the umask). */
  private claimDir(abs: string, syncedMode: number | null): void {
    const { owner, dirMode } = this.perms
    if (owner) chownSync(abs, owner.uid, owner.gid)
    const mode = dirMode ?? (syncedMode === null ? null : syncedMode & 0o777)
    if (mode !== null) chmodSync(abs, mode)
  }

  abs(path: string): string {
    return join(this.root, path)
  }

  /**
   * The path's lstat, or null when nothing is there. Synchronous: a lookup the kernel answers
   * from its dentry cache takes 2–3 µs, where the promise form cost ~20 µs of CPU, and ~37 µs
   * when the path is missing (an exception each time); a fresh node looks up every path it
   * writes twice before it exists (measured on the 2-core bench machine).
   */
  async lstatOrNull(path: string): Promise<Stats | null> {
    return lstatAt(this.abs(path))
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

  /**
   * Gives a file the folder's mtime when it already holds the folder's content (two peers
   * wrote the same bytes at once: the losing one takes the winner's mtime, so every folder
   * ends up the same). Throws LocalChangeError if the disk no longer matches `expected`.
   */
  async setMtime(path: string, mtimeMs: number, expected: LocalRecord): Promise<Stats> {
    if (expected.kind !== 'file') throw new Error(`setMtime is for files, not ${expected.kind}`)
    await this.assertUnchanged(path, expected)
    const abs = this.abs(path)
    await utimes(abs, mtimeMs / 1000, mtimeMs / 1000)
    return lstat(abs)
  }

  /**
   * Throws E_PATH_UNSAFE when a directory above `path` is a symlink: writing through it could
   * land outside the folder. Walks down from the root: a directory known to be real is passed,
   * an existing one is lstat'ed (a link is refused; a real directory is known from then on),
   * and the first one missing ends the walk (mkdir makes it and those below as real
   * directories). One lstat per new directory: a realpath each (a readlink per component of
   * the absolute path, and again for each missing level) was ~10 calls per directory a fresh
   * node made.
   */
  private assertNoLinkAbove(path: string): void {
    if (this.knownDirs.has(dirname(this.abs(path)))) return
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const rel = path.slice(0, slash)
      const abs = join(this.root, rel)
      if (this.knownDirs.has(abs)) continue
      const st = lstatAt(abs)
      if (!st) return // created below as a real directory
      if (st.isSymbolicLink()) {
        throw new SyncError('E_PATH_UNSAFE', `not writing ${path}: the directory ${rel} above it is a symlink`, { details: { path, problem: 'symlink-parent' } })
      }
      if (!st.isDirectory()) return // a file in the way: creating the directory says so
      this.knownDirs.add(abs)
    }
  }

  /**
   * Hard-links `tmp` in at `path`. Its directory, known to exist, may have been moved away or
   * deleted by a program since (the temp file is in the staging directory, so nothing failed
   * before): it is made again, once. A `versions restore` into a directory moved away a moment
   * before failed with ENOENT (fault suite seed 2637); a synced file waited for a retry.
   */
  private async linkIn(ops: FileOps, tmp: string, path: string): Promise<void> {
    try {
      await ops.link(tmp, this.abs(path))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      this.knownDirs.delete(dirname(this.abs(path)))
      await this.ensureParent(path)
      await ops.link(tmp, this.abs(path))
    }
  }

  /**
   * Makes sure the directory of `path` exists as a real directory inside the folder. Files
   * written at once into one new directory share a single check (a fresh node writes dozens
   * of files per directory concurrently: one realpath and mkdir each was thousands of calls).
   */
  private async ensureParent(path: string): Promise<void> {
    const parent = dirname(this.abs(path))
    if (this.knownDirs.has(parent)) return
    const running = this.ensuring.get(parent)
    if (running) {
      try {
        await running
        return
      } catch {
        // that check failed for another file: check again for this one, with its own error
      }
    }
    const check = this.createParent(path, parent)
    this.ensuring.set(parent, check)
    try {
      await check
    } finally {
      if (this.ensuring.get(parent) === check) this.ensuring.delete(parent)
    }
  }

  private async createParent(path: string, parent: string): Promise<void> {
    this.assertNoLinkAbove(path)
    try {
      // synchronous, as the directory calls below: see makeDir
      const first = mkdirSync(parent, { recursive: true, mode: 0o755 })
      if (first !== undefined) {
        // every directory mkdir made, from the outermost down to the parent
        const claim = this.claimsDirs
        let dir = first
        for (const segment of ['', ...relative(first, parent).split(sep).filter((p) => p !== '')]) {
          dir = join(dir, segment)
          if (claim) this.claimDir(dir, null)
          this.remadeDirs.made(dir)
        }
      }
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
  async writeFile(path: string, chunks: AsyncIterable<Uint8Array> | Uint8Array[], meta: FileMeta, expected: LocalRecord | undefined, hooks: ReplaceHooks = {}): Promise<Stats> {
    const { beforeRename, rescueAs } = hooks
    const ops = Array.isArray(chunks) && meta.size <= SYNC_WRITE_BYTES ? synchronousOps : threadPoolOps
    if (meta.size >= CHECK_SPACE_BYTES) await this.assertSpaceFor(path, meta.size)
    await this.ensureParent(path)
    const tmp = this.tempFor(path)
    this.writing.add(tmp.slice(tmp.lastIndexOf(sep) + 1))
    // created with its final mode: a chmod only when the umask cut it (checked on the stat below)
    const mode = fileModeFor(meta.mode, this.perms.fileMode)
    let handle: WritableFile
    try {
      handle = await ops.open(tmp, 'wx', mode)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
        throw translateDiskError(err, path)
      }
      // the directory went away (deleted meanwhile), or the staging directory is not made yet:
      // create it
      this.knownDirs.delete(dirname(this.abs(path)))
      try {
        await this.ensureParent(path)
        if (dirname(tmp) === this.abs(STAGING_DIR)) await this.makeStaging()
        handle = await ops.open(tmp, 'wx', mode)
      } catch (again) {
        this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
        throw translateDiskError(again, path)
      }
    }
    const hash = createHash('sha256')
    let size = 0
    let renamed = false
    let journaled = false
    /** the replaced file, kept in the archive (taken back unless the rename happens) */
    let version: string | null = null
    try {
      const checked = meta.hashChecked === true
      for await (const chunk of chunks) {
        if (!checked) hash.update(chunk)
        size += chunk.byteLength
        if (size > meta.size) break
        await writeAll(handle, chunk, path)
      }
      if (size !== meta.size || (!checked && hash.digest('hex') !== meta.hash)) {
        throw new SyncError('E_PEER_PROTOCOL', `content of ${path} does not match its entry (size ${size} vs ${meta.size})`, { details: { path } })
      }
      const { owner } = this.perms
      if (owner) await handle.chown(owner.uid, owner.gid)
      const seconds = meta.mtimeMs / 1000
      await handle.utimes(seconds, seconds)
      let st = await handle.stat()
      if ((st.mode & 0o7777) !== mode) {
        await handle.chmod(mode)
        st = await handle.stat()
      }
      if (st.size !== meta.size) {
        throw new SyncError('E_IO', `wrote ${st.size} of ${meta.size} bytes of ${path}`, { details: { path } })
      }
      await handle.close()
      // kept before the journal and the checks, for the same reason the journal comes before
      // them: a link (or a copy) between the check and the rename let a theme update's new
      // file be overwritten (fault suite seeds 46002, 46003, 46503). What it keeps is what the
      // checks then find there, or the checks fail and it is taken back.
      if (expected?.kind === 'file' && this.archive) version = await this.archive.keepBeforeReplace(this.abs(path), path)
      if (version) hooks.keptAs?.(version)
      // journaled before the checks, so that they come right before the rename: with the
      // journal's flush between them, a program that replaced the file meanwhile (a theme
      // update: directory moved away, new version written) had its new file overwritten by
      // the rename (fault suite seeds 3001, 3002, 3101, once temp files no longer moved away
      // with their directory and made that rename fail)
      if (beforeRename) {
        journaled = true
        await beforeRename({ tmp: this.journalName(tmp), st, byLink: expected === undefined })
      }
      // the file we replace, held open across the rename: a program that writes to it after
      // the check below and before the rename writes to an inode the rename unlinks (fault
      // suite seed 711: an append made then was lost); through this handle it is saved
      const displaced = expected?.kind === 'file' ? await ops.open(this.abs(path), 'r').catch(() => null) : null
      try {
        if (displaced && !fingerprintMatches(await displaced.stat(), expected as LocalRecord)) throw new LocalChangeError(path)
        if (expected === undefined) {
          // nothing may be there: placed with a hard link, which fails where a rename would
          // replace a file a program made after a check (fault suite seed 841: a file created
          // that instant was overwritten by the peer's version and lost). Its EEXIST is the
          // check: anything at the path (file, link, directory) fails it.
          let linked = true
          try {
            await this.linkIn(ops, tmp, path)
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code
            if (code === 'EEXIST') throw new LocalChangeError(path)
            // a file system without hard links: the check, then the rename, and its small window
            if (!code || !NO_HARD_LINKS.has(code)) throw err
            linked = false
            await this.assertUnchanged(path, expected)
            await ops.rename(tmp, this.abs(path))
          }
          renamed = true
          if (linked) {
            crashPoint('apply-linked', path)
            await ops.unlink(tmp).catch(() => undefined) // a leftover temp name is swept like any other
          }
        } else {
          await this.assertUnchanged(path, expected)
          await ops.rename(tmp, this.abs(path))
          renamed = true
        }
        this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
        if (displaced && rescueAs) {
          const now = await displaced.stat()
          if (!fingerprintMatches(now, expected as LocalRecord)) await this.rescue(displaced, now, rescueAs)
        }
      } finally {
        await displaced?.close().catch(() => undefined)
      }
      return st
    } catch (err) {
      // a directory moved away mid-write: the file is re-applied where it belongs now
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') this.knownDirs.delete(dirname(this.abs(path)))
      // a mount inside the folder appeared: its files get their temp files beside them
      if (code === 'EXDEV') this.stagingReaches.set(dirname(this.abs(path)), false)
      throw translateDiskError(err, path)
    } finally {
      if (!renamed) {
        if (version) await this.archive?.unkeep(version)
        await handle.close().catch(() => undefined)
        // the journal names this temp file: it goes only once the journal no longer does (a
        // temp file gone reads as "renamed" after a crash)
        if (!journaled || (await (hooks.abandoned?.() ?? Promise.resolve(true)))) await this.dropTemp(tmp)
        else this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
      }
    }
  }

  /**
   * Saves what `from` (an inode just replaced, changed during the replacement) holds as a new
   * file at the first free name `nameOf` gives, which the folder then publishes like any new
   * file. Never overwrites.
   */
  private async rescue(from: WritableFile, st: Stats, nameOf: (attempt: number) => string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const path = nameOf(attempt)
      let out: FileHandle
      try {
        out = await open(this.abs(path), 'wx', st.mode & 0o777)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 9) continue
        throw translateDiskError(err, path)
      }
      try {
        // not sized by `st`: the file may still be growing (a program that truncated it and is
        // writing it again: sized 0, the copy crawled along a byte per read for seconds, and
        // its writes mixed with a program's later writes to the copy; fault suite seed 1101)
        const chunk = Buffer.alloc(Math.min(RESCUE_CHUNK_BYTES, Math.max(RESCUE_MIN_CHUNK_BYTES, st.size)))
        for (let at = 0; ; ) {
          const { bytesRead } = await from.read(chunk, 0, chunk.length, at)
          if (bytesRead === 0) break
          await writeAll(out, chunk.subarray(0, bytesRead), path)
          at += bytesRead
        }
        await out.utimes(st.atime, st.mtime)
      } finally {
        await out.close()
      }
      return
    }
  }

  /** A claimed size the disk cannot hold is refused before a byte is fetched (E_DISK_FULL, retried later). */
  private async assertSpaceFor(path: string, sizeBytes: number): Promise<void> {
    const fsStats = await statfs(this.root)
    const freeBytes = fsStats.bavail * fsStats.bsize
    if (sizeBytes > freeBytes) {
      throw new SyncError('E_DISK_FULL', `not enough space for ${path}: it needs ${formatBytes(sizeBytes)}, ${formatBytes(freeBytes)} free`, { details: { path, sizeBytes, freeBytes } })
    }
  }

  async writeSymlink(path: string, target: string, expected: LocalRecord | undefined): Promise<Stats> {
    if (!linkStaysInside(this.root, path, target)) {
      throw new SyncError('E_PATH_UNSAFE', `symlink ${path} points outside the folder`, { details: { path, problem: 'symlink-outside' } })
    }
    await this.ensureParent(path)
    // a new link may stand where a directory was: forget what we knew about directories
    this.knownDirs.clear()
    const tmp = join(dirname(this.abs(path)), tempName())
    this.writing.add(tmp.slice(tmp.lastIndexOf(sep) + 1))
    let version: string | null = null
    let renamed = false
    try {
      await symlink(target, tmp)
      const { owner } = this.perms
      if (owner) await lchown(tmp, owner.uid, owner.gid)
      // kept before the check, which must come right before the rename (see writeFile)
      version = expected?.kind === 'file' && this.archive ? await this.archive.keepBeforeReplace(this.abs(path), path) : null
      await this.assertUnchanged(path, expected)
      await rename(tmp, this.abs(path))
      renamed = true
      this.writing.delete(tmp.slice(tmp.lastIndexOf(sep) + 1))
      return await lstat(this.abs(path))
    } catch (err) {
      if (version && !renamed) await this.archive?.unkeep(version)
      await this.dropTemp(tmp)
      throw translateDiskError(err, path)
    }
  }

  /** Did this writer remove the directory `path` a moment ago (see RemadeDirs)? */
  removedLately(path: string): boolean {
    return this.remadeDirs.removedLately(this.abs(path))
  }

  /**
   * Makes the directory `path` (its parents as needed) and returns its lstat. The calls are
   * synchronous, as for small files: a fresh node makes a thousand directories, and through
   * the thread pool each one was two or three round trips (a promise, a wake-up, a turn of
   * latency) for a call the kernel answers in microseconds.
   */
  async makeDir(path: string, mode: number): Promise<Stats> {
    this.assertNoLinkAbove(path)
    const st = await this.lstatOrNull(path)
    if (st && !st.isDirectory()) throw new LocalChangeError(path)
    if (!st) {
      await this.ensureParent(path)
      let created = true
      try {
        mkdirSync(this.abs(path), { mode: mode & 0o777 })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw translateDiskError(err, path)
        created = false
      }
      if (created && this.claimsDirs) this.claimDir(this.abs(path), mode)
      if (created) this.remadeDirs.made(this.abs(path))
    }
    const after = lstatSync(this.abs(path))
    // a real directory (lstat: no link) below checked parents: files go in without a check
    if (after.isDirectory()) this.knownDirs.add(this.abs(path))
    return after
  }

  /**
   * Removes a file or link (if unchanged) or an empty directory. Returns false when a directory
   * still has content. `rescueAs` names a place for an edit found on the file after it was
   * moved out (when a program made a new file at its path meanwhile).
   */
  async remove(path: string, expected: LocalRecord | undefined, rescueAs?: (attempt: number) => string): Promise<boolean> {
    this.assertNoLinkAbove(path)
    const st = await this.lstatOrNull(path)
    // a file we held, gone before we looked: a program deleted or moved it (fault suite seed
    // 13558: taken for done, no delete naming its content went out, and a conflict copy of it
    // stayed). A local change, which the engine publishes (or finds the folder agrees with)
    if (!st) {
      if (expected && expected.kind !== 'dir') throw new LocalChangeError(path)
      return true
    }
    if (st.isDirectory()) {
      try {
        this.knownDirs.clear()
        await rmdir(this.abs(path))
        this.remadeDirs.removed(this.abs(path))
        return true
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOTEMPTY' || code === 'EEXIST') return false
        throw translateDiskError(err, path)
      }
    }
    if (!expected || !fingerprintMatches(st, expected)) throw new LocalChangeError(path)
    // moved out of the folder first, then checked again: an edit that landed between the check
    // above and the move is seen, and the file goes back (fault suite seed 4020: an append made
    // as a peer's delete was applied was unlinked with the file, after the program had checked
    // that its write was in place: LOST). A write after the move reaches a file no longer in
    // the folder, as with a rename over it.
    const aside = this.tempFor(path)
    const name = aside.slice(aside.lastIndexOf(sep) + 1)
    this.writing.add(name)
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await rename(this.abs(path), aside)
          break
        } catch (err) {
          // deleted by a program meanwhile: a local delete of what it held, which the engine
          // publishes (naming that content, so a conflict copy of it goes too: fault suite
          // seed 5500, where taking it for our own delete left the copy for good)
          if (!lstatAt(this.abs(path))) throw new LocalChangeError(path)
          const code = (err as NodeJS.ErrnoException).code
          if (code !== 'ENOENT' || attempt > 0) {
            // a mount inside the folder appeared: its files are moved aside beside them
            if (code === 'EXDEV') this.stagingReaches.set(dirname(this.abs(path)), false)
            throw translateDiskError(err, path)
          }
          await this.makeStaging() // not made yet, or deleted
        }
      }
      const moved = lstatAt(aside)
      if (moved && !fingerprintMatches(moved, expected)) {
        await this.putBack(aside, path, rescueAs)
        throw new LocalChangeError(path)
      }
      if (!(expected.kind === 'file' && (await this.archive?.moveIn(aside, path)))) await unlink(aside).catch(() => undefined)
      return true
    } finally {
      this.writing.delete(name)
    }
  }

  /** Puts a file moved out by `remove` back at `path`, or, if a new file took the path, under a rescue name. */
  private async putBack(aside: string, path: string, rescueAs: ((attempt: number) => string) | undefined): Promise<void> {
    // rescue names one at a time, only once the one before is taken: naming one logs that the
    // edit is kept under it (named all at once, ten such warnings went out for an edit that
    // went back under its own name: fault suite seed 17032)
    for (let attempt = -1; attempt < (rescueAs ? 10 : 0); attempt++) {
      const name = attempt < 0 || !rescueAs ? path : rescueAs(attempt)
      try {
        await link(aside, this.abs(name)) // never over a file made meanwhile
        await unlink(aside).catch(() => undefined)
        return
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') continue
        if (code && NO_HARD_LINKS.has(code)) {
          await rename(aside, this.abs(name))
          return
        }
        throw translateDiskError(err, path)
      }
    }
    throw new SyncError('E_IO', `an edit of ${path} made while it was deleted could not be put back: it is in ${aside}`, { details: { path } })
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
async function writeAll(handle: WritableFile, chunk: Uint8Array, path: string): Promise<void> {
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
