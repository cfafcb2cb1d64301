import { createReadStream } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { isAbsolute, join, relative, sep } from 'node:path'
import { checkRelativePath, isSyncError, SyncError, type KeptVersion, type RestoreRequest, type RestoreResult, type VersionListing } from '@sync-agent/shared'
import { crashPoint } from './crash-points.js'
import { LocalChangeError, type FolderWriter } from './folder-writer.js'
import { recordOf } from './index-store.js'
import { insideOrEqual, realOrResolved } from './path-inside.js'
import type { Logger } from './log.js'
import type { VersionArchive } from './version-archive.js'

/** A version's bytes, read in pieces; crash point restore-partial once the first is written. */
async function* piecesOf(source: string, path: string): AsyncGenerator<Uint8Array> {
  let first = true
  for await (const piece of createReadStream(source)) {
    yield piece as Buffer
    // the writer asks for the next piece once it has written this one
    if (first) crashPoint('restore-partial', path)
    first = false
  }
}

/** versions one listing holds at most */
export const LIST_LIMIT = 10_000

/**
 * A folder path from what a user typed: relative to the folder (`themes/x/style.css`,
 * `./themes/x/`) or absolute inside it; '' for the folder itself. E_PATH_UNSAFE otherwise.
 */
export function folderPathOf(root: string, input: string): string {
  let rel = input
  if (isAbsolute(input)) {
    // the folder as configured, or where its links lead
    const base = [root, realOrResolved(root)].find((b) => insideOrEqual(b, input))
    if (base === undefined) throw new SyncError('E_PATH_UNSAFE', `${input} is not inside the folder ${root}`, { details: { path: input } })
    rel = relative(base, input).split(sep).join('/')
  }
  while (rel.startsWith('./')) rel = rel.slice(2)
  while (rel.endsWith('/')) rel = rel.slice(0, -1)
  if (rel === '' || rel === '.') return ''
  return checkRelativePath(rel)
}

/** Does `asked` (a version's name, its file name or its stamp) name `version`? */
function names(version: KeptVersion, asked: string): boolean {
  return version.name === asked || version.name.slice(version.name.lastIndexOf('/') + 1) === asked || version.stamp === asked
}

/**
 * `sync-agent versions`: lists what the versions dir keeps, and puts a version back in the
 * folder. A restore is a local change like an edit: written by the folder writer (temp file,
 * checks, rename; the file it replaces is kept as a version first, as Syncthing's restore
 * does), then handed to the engine, which publishes it to the peers. The version stays.
 */
export class VersionRestore {
  constructor(
    private readonly archive: VersionArchive | null,
    private readonly writer: FolderWriter,
    /** a restored path, for the engine to publish now (the watcher may be paused) */
    private readonly onRestored: (path: string) => void,
    private readonly log: Logger
  ) {}

  async list(input: string): Promise<VersionListing> {
    if (!this.archive) return { dir: null, versions: [], truncated: false }
    const { versions, truncated } = await this.archive.list(folderPathOf(this.writer.root, input), LIST_LIMIT)
    return { dir: this.archive.dir, versions, truncated }
  }

  async restore(request: RestoreRequest): Promise<RestoreResult> {
    const archive = this.archive
    if (!archive) throw new SyncError('E_NOT_FOUND', 'this agent keeps no versions (versionsDir is not set)')
    const path = folderPathOf(this.writer.root, request.path)
    if (path === '') throw new SyncError('E_USAGE', 'restore: give the path of a file, not the folder')
    const own = (await archive.list(path, LIST_LIMIT)).versions.filter((v) => v.path === path)
    if (own.length === 0) throw new SyncError('E_NOT_FOUND', `no version of ${path} is kept in ${archive.dir}`, { details: { path } })
    const asked = request.version
    const chosen = asked === undefined ? own[0] : own.find((v) => names(v, asked))
    if (!chosen) {
      const stamps = own.slice(0, 5).map((v) => v.stamp)
      throw new SyncError('E_NOT_FOUND', `no version ${JSON.stringify(asked)} of ${path}; kept: ${stamps.join(', ')}${own.length > 5 ? ', …' : ''}`, { details: { path } })
    }
    const source = join(archive.dir, ...chosen.name.split('/'))
    const st = await lstat(source)
    if (!st.isFile()) throw new SyncError('E_NOT_FOUND', `${chosen.name} in ${archive.dir} is not a file`, { details: { path } })
    const current = await this.writer.lstatOrNull(path)
    if (current && !current.isFile()) {
      throw new SyncError('E_REFUSED', `${path} is ${current.isDirectory() ? 'a directory' : 'not a regular file'} here: move it away first`, { details: { path } })
    }
    let keptAs: string | null = null
    try {
      await this.writer.writeFile(
        path,
        piecesOf(source, path),
        // a file of ours, read whole: the writer checks its size (no peer's hash to check)
        { size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o777, hash: '', hashChecked: true },
        // what is on disk now: the writer's check before its rename compares it
        current ? recordOf(current, 'file', null, null, {}) : undefined,
        { keptAs: (abs) => (keptAs = relative(archive.dir, abs).split(sep).join('/')) }
      )
    } catch (err) {
      if (err instanceof LocalChangeError) {
        throw new SyncError('E_REFUSED', `${path} changed while it was being restored: nothing was replaced; try again`, { details: { path } })
      }
      // the size check: the version grew or shrank while it was read
      if (isSyncError(err, 'E_PEER_PROTOCOL')) throw new SyncError('E_REFUSED', `${chosen.name} changed while it was read: nothing was replaced; try again`, { details: { path } })
      throw err
    }
    this.log.info({ path, version: chosen.name, replacedKeptAs: keptAs }, 'restored a version')
    this.onRestored(path)
    return { path, restored: chosen, replacedKeptAs: keptAs }
  }
}
