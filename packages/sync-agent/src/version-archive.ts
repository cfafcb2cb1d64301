import { constants } from 'node:fs'
import { access, copyFile, link, lstat, mkdir, readdir, rmdir, unlink, utimes } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
import { SyncError, type KeptVersion } from '@sync-agent/shared'
import { lstatAt } from './folder-writer.js'
import type { Logger } from './log.js'
import { utcStamp } from './merge.js'

/** how often old versions are looked for (also once at start) */
const SWEEP_INTERVAL_MS = 60 * 60_000
const DAY_MS = 24 * 3600_000
/**
 * a version's file name: `name~YYYYMMDD-HHMMSS.ext`, or with `-N` after the stamp when that
 * second was taken; the groups: the stem, the stamp's six numbers, N, the extension
 */
const VERSION_NAME = /^(.+)~(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-(\d+))?(\.[^/.]*)?$/
/** names tried for one path in one second before giving up on keeping it */
const MAX_SAME_SECOND = 100

/**
 * Keeps what a peer's change replaces or deletes in the folder, as Syncthing's trash-can
 * versioning and Resilio Sync's Archive do: under `dir` (outside the folder and the data dir),
 * at the file's path, named `name~YYYYMMDD-HHMMSS.ext` (UTC, when it was replaced). A replaced
 * file is kept by a hard link (no copy) made before the writer checks the file and renames
 * over it, and taken back if it does not; a deleted file is moved there once out of the
 * folder. Where `dir` is on another file system, the bytes are copied (keep it on the folder's
 * file system). Versions older than `keepDays` (by the stamp in their name) are removed at
 * start and once an hour; 0 keeps them for ever.
 * Only the folder writer calls it, for changes it applies from peers: what the user changes
 * here is theirs to keep.
 */
export class VersionArchive {
  private timer: NodeJS.Timeout | null = null
  private sweeping: Promise<void> | null = null
  /** versions kept since start (less those taken back) */
  kept = 0

  constructor(
    readonly dir: string,
    private readonly keepDays: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now
  ) {}

  async ready(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 })
      await access(this.dir, constants.W_OK)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw new SyncError('E_CONFIG', `versionsDir: cannot keep versions in ${this.dir} (${code})`, { cause: err, details: { setting: 'versionsDir' } })
    }
    this.sweepSoon()
    this.timer = setInterval(() => this.sweepSoon(), SWEEP_INTERVAL_MS)
    this.timer.unref()
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.sweeping
  }

  /**
   * Keeps the file at `abs` (about to be replaced at folder path `path`): a hard link, or a
   * copy where the archive is on another file system. Returns the version's absolute path, or
   * null when it could not be kept (logged); the caller replaces the file either way.
   */
  async keepBeforeReplace(abs: string, path: string): Promise<string | null> {
    // gone already (a program deleted or moved it): the writer's checks find that, and nothing
    // is replaced
    if (lstatAt(abs) === null) return null
    try {
      return await this.place(path, (target) => linkOrCopy(abs, target))
    } catch (err) {
      this.warn(path, err)
      return null
    }
  }

  /** Takes back a version kept by `keepBeforeReplace` whose replacement did not happen. */
  async unkeep(version: string): Promise<void> {
    await unlink(version).catch(() => undefined)
    this.kept--
  }

  /**
   * Moves the file at `abs` (out of the folder already, being deleted at folder path `path`)
   * into the archive. Returns false when it could not (the caller then deletes it).
   */
  async moveIn(abs: string, path: string): Promise<boolean> {
    try {
      await this.place(path, (target) => linkOrCopy(abs, target))
      await unlink(abs)
      return true
    } catch (err) {
      this.warn(path, err)
      return false
    }
  }

  /** The version's name for folder path `path` replaced at `at`; `attempt` > 0 when that second's name is taken. */
  static nameFor(path: string, at: number, attempt = 0): string {
    const slash = path.lastIndexOf('/')
    const base = path.slice(slash + 1)
    const dot = base.lastIndexOf('.')
    // a dotfile (.htaccess) has no extension
    const ext = dot <= 0 ? '' : base.slice(dot)
    const stem = dot <= 0 ? base : base.slice(0, dot)
    return `${path.slice(0, slash + 1)}${stem}~${utcStamp(at)}${attempt > 0 ? `-${attempt}` : ''}${ext}`
  }

  /** When the version at this file name was made (ms since epoch), null for a name that is not a version's. */
  static madeAt(name: string): number | null {
    return VersionArchive.parse(name)?.madeAt ?? null
  }

  /**
   * A version's file name taken apart: the file name it is a version of, when it was made, its
   * `-N` (0 without) and its stamp as the name shows it (`20261130-231500`, `20261130-231500-2`).
   */
  static parse(name: string): { original: string; madeAt: number; attempt: number; stamp: string } | null {
    const m = VERSION_NAME.exec(name.slice(name.lastIndexOf('/') + 1))
    if (!m) return null
    const [y, mo, d, h, mi, s] = m.slice(2, 8).map(Number) as [number, number, number, number, number, number]
    const attempt = m[8] === undefined ? 0 : Number(m[8])
    const stamp = `${m.slice(2, 5).join('')}-${m.slice(5, 8).join('')}${attempt > 0 ? `-${attempt}` : ''}`
    return { original: `${m[1]}${m[9] ?? ''}`, madeAt: Date.UTC(y, mo - 1, d, h, mi, s), attempt, stamp }
  }

  /**
   * The versions kept of the file at folder path `path` and, when `path` is a directory there
   * ('' for the whole folder), of every file under it: by path, newest first within one.
   * At most `limit` (`truncated` says when more were there).
   */
  async list(path: string, limit: number): Promise<{ versions: KeptVersion[]; truncated: boolean }> {
    const found: KeptVersion[] = []
    let truncated = false
    const add = async (name: string): Promise<boolean> => {
      const parsed = VersionArchive.parse(name)
      if (!parsed) return true
      if (found.length >= limit) {
        truncated = true
        return false
      }
      const st = await lstat(join(this.dir, name)).catch(() => null)
      if (!st?.isFile()) return true
      const slash = name.lastIndexOf('/')
      found.push({ path: name.slice(0, slash + 1) + parsed.original, name, stamp: parsed.stamp, madeAt: new Date(parsed.madeAt).toISOString().replace('.000Z', 'Z'), size: st.size, mtimeMs: st.mtimeMs })
      return true
    }
    // the file's own versions, beside where it was
    if (path !== '') {
      const slash = path.lastIndexOf('/')
      const parent = path.slice(0, slash + 1)
      const base = path.slice(slash + 1)
      for (const entry of await this.entries(parent)) {
        if (entry.isFile() && VersionArchive.parse(entry.name)?.original === base && !(await add(parent + entry.name))) break
      }
    }
    // and, if it was a directory, everything under it
    const walk = async (dir: string): Promise<boolean> => {
      for (const entry of await this.entries(dir)) {
        const name = dir + entry.name
        if (entry.isDirectory() ? !(await walk(name + '/')) : entry.isFile() && !(await add(name))) return false
      }
      return true
    }
    if (!truncated) await walk(path === '' ? '' : path + '/')
    found.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : newestFirst(x, y)))
    return { versions: found, truncated }
  }

  /** The directory `dir` (a folder path ending in `/`, or '') of the archive, sorted by name; empty when there is none. */
  private async entries(dir: string) {
    const entries = await readdir(join(this.dir, ...dir.split('/')), { withFileTypes: true }).catch(() => [])
    return entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
  }

  /** Runs `make(target)` at the first free version name for `path` (`make` fails with EEXIST on a taken one). */
  private async place(path: string, make: (target: string) => Promise<void>): Promise<string> {
    const at = this.now()
    let madeParent = false
    for (let attempt = 0; attempt < MAX_SAME_SECOND; attempt++) {
      const target = join(this.dir, ...VersionArchive.nameFor(path, at, attempt).split('/'))
      try {
        await make(target)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') continue
        // the first version in this directory: make it, then the same name again
        if (code !== 'ENOENT' || madeParent) throw err
        await mkdir(dirname(target), { recursive: true, mode: 0o700 })
        madeParent = true
        attempt--
        continue
      }
      this.kept++
      this.log.debug({ path, version: target }, 'kept the version a peer replaced')
      return target
    }
    throw Object.assign(new Error(`${MAX_SAME_SECOND} versions of ${path} in one second`), { code: 'EEXIST' })
  }

  private warn(path: string, err: unknown): void {
    this.log.warn({ path, code: (err as NodeJS.ErrnoException).code, err: (err as Error).message, versions: this.dir }, 'could not keep the version a peer replaced; it is gone')
  }

  private sweepSoon(): void {
    if (this.keepDays === 0 || this.sweeping) return
    this.sweeping = this.sweep()
      .then(() => undefined)
      .catch((err: unknown) => this.log.warn({ err, versions: this.dir }, 'removing old versions failed; will try again'))
      .finally(() => {
        this.sweeping = null
      })
  }

  /** Removes versions older than `keepDays`, and the directories that leaves empty. */
  async sweep(): Promise<number> {
    if (this.keepDays === 0) return 0
    const cutoff = this.now() - this.keepDays * DAY_MS
    let removed = 0
    const walk = async (dir: string): Promise<boolean> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      let left = entries.length
      for (const entry of entries) {
        const abs = dir + sep + entry.name
        if (entry.isDirectory()) {
          if (await walk(abs)) {
            await rmdir(abs).catch(() => undefined)
            left--
          }
          continue
        }
        const madeAt = VersionArchive.madeAt(entry.name)
        if (madeAt === null || madeAt >= cutoff) continue
        await unlink(abs).catch(() => undefined)
        removed++
        left--
      }
      return left === 0
    }
    await walk(this.dir)
    if (removed > 0) this.log.info({ removed, keepDays: this.keepDays, versions: this.dir }, 'removed old versions')
    return removed
  }
}

/** Two versions (of one path) newest first: by when made, then by `-N` (later in that second) */
function newestFirst(x: KeptVersion, y: KeptVersion): number {
  const a = VersionArchive.parse(x.name) as { madeAt: number; attempt: number }
  const b = VersionArchive.parse(y.name) as { madeAt: number; attempt: number }
  return b.madeAt - a.madeAt || b.attempt - a.attempt
}

/** `link(from, to)`, or a copy with `from`'s mtime where links cannot reach (another file system). */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err
    const st = await lstat(from)
    await copyFile(from, to, constants.COPYFILE_EXCL)
    await utimes(to, st.mtimeMs / 1000, st.mtimeMs / 1000)
  }
}
