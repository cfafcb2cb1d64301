import { watch, type FSWatcher } from 'chokidar'
import { readdirSync, type Dirent, type Stats } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { basename, join, relative, resolve, sep } from 'node:path'
import { TEMP_PREFIX } from '@sync-agent/shared'
import type { Logger } from './log.js'

/**
 * chokidar → settled local change events. Every event (re)starts a per-path timer; a path is
 * handed on once it was quiet for `settleMs`, so a file still being written is not published
 * half-way (the publisher also re-checks its size and mtime after reading it).
 *
 * chokidar watches directories only: a file is never watched by itself. On Linux a
 * directory's inotify watch reports every change of the entries in it (created, written,
 * chmod-ed, deleted, moved), and chokidar passes them on as raw events with the entry's name.
 * Watching every file as chokidar does by default took one inotify watch per file: two agents
 * on one host with 100,000 files each ran out of the default limit (fs.inotify.max_user_watches)
 * and fell back to rescans, and the watchers' state was a large part of the agent's memory.
 */
export interface WatcherEvents {
  /**
   * A path's events settled. `stats` as chokidar saw them (absent for removals and raw
   * events: look yourself); `addedDir`: one of the events was chokidar's `addDir` (a later raw
   * event of the same path does not hide it)
   */
  onPath(path: string, stats: Stats | undefined, addedDir: boolean): void
  /** skip a path (ignored), so chokidar does not even watch it */
  isIgnored(path: string, isDir: boolean): boolean
  onDirGone(path: string): void
  onError(err: Error): void
}

export class FolderWatcher {
  private watcher: FSWatcher | null = null
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private lifecycle: Promise<void> = Promise.resolve()
  private paused = false
  /** chokidar lists directories without an lstat per entry (see listDirectoriesOnly) */
  listsDirectoriesOnly = false
  /** paths chokidar reported as added directories whose events have not settled yet */
  private readonly addedDirs = new Set<string>()
  /** subdirectories found unwatched in a new directory and handed to chokidar (for logs and tests) */
  missedDirsWatched = 0

  constructor(
    private readonly root: string,
    private readonly settleMs: number,
    private readonly events: WatcherEvents,
    private readonly log: Logger
  ) {}

  get pendingCount(): number {
    return this.timers.size
  }

  /** An event of `path` is waiting to settle (it is reported once it does). */
  isSettling(path: string): boolean {
    return this.timers.has(path)
  }

  ready(): Promise<void> {
    return this.serially(() => this.start())
  }

  private async start(): Promise<void> {
    const watcher = watch(this.root, {
      ignoreInitial: true,
      followSymlinks: false,
      alwaysStat: true,
      atomic: false,
      ignored: (abs: string, stats?: Stats) => {
        if (abs.slice(abs.lastIndexOf(sep) + 1).startsWith(TEMP_PREFIX)) return true
        // files and links are reported by their directory's watch (raw events below)
        if (stats !== undefined && !stats.isDirectory()) return true
        const path = relative(this.root, abs).split(sep).join('/')
        return path !== '' && !path.startsWith('..') && stats !== undefined && this.events.isIgnored(path, stats.isDirectory())
      }
    })
    this.watcher = watcher
    this.listsDirectoriesOnly = listDirectoriesOnly(watcher)
    watcher.on('all', (event: string, abs: string, stats?: Stats) => {
      const path = relative(this.root, abs).split(sep).join('/')
      if (!path || path.startsWith('..')) return
      if (event === 'unlinkDir') {
        // at once, not settled: a directory deleted (or moved away) and created again within
        // the settle window would replace this with the `addDir`, and what the old directory
        // held would never be looked at (a WordPress theme update does exactly that)
        this.events.onDirGone(path)
        this.addedDirs.delete(path)
        this.settle(path, undefined)
      } else {
        if (event === 'addDir') this.addedDirs.add(path)
        this.settle(path, event === 'unlink' ? undefined : stats)
      }
    })
    // every change of a file (created, written, chmod-ed, deleted, moved) comes as a raw event
    // of its directory's watch, with its name; the receiver looks at the path itself. Each one
    // restarts the path's settle timer: a file still being written keeps it waiting
    watcher.on('raw', (_event: string, name: string, details: unknown) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath
      if (!watched || !name || name.startsWith(TEMP_PREFIX)) return
      // an event of the directory itself names it too: a file named like its directory
      // (themes/x/x) cannot be told from it, so both are looked at
      const candidates = basename(watched) === name ? [watched, join(watched, name)] : [join(watched, name)]
      for (const abs of candidates) {
        const path = relative(this.root, abs).split(sep).join('/')
        if (!path || path.startsWith('..')) continue
        this.settle(path, undefined)
      }
    })
    watcher.on('error', (err: unknown) => this.events.onError(err as Error))
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
    this.log.debug({ root: this.root }, 'watching')
  }

  /** (Re)starts a path's settle timer; the last event's stats are handed on. */
  private settle(path: string, stats: Stats | undefined): void {
    const existing = this.timers.get(path)
    if (existing) clearTimeout(existing)
    this.timers.set(
      path,
      setTimeout(() => {
        this.timers.delete(path)
        const addedDir = this.addedDirs.delete(path)
        if (addedDir) this.watchMissedSubdirs(path)
        this.events.onPath(path, stats, addedDir)
      }, this.settleMs)
    )
  }

  /**
   * chokidar reads a new directory, then watches it: a subdirectory made in between (`mkdir -p
   * a/b` racing that read) is in neither, so it is never watched, and files written into it
   * later have no event until something else changes in its parent (chokidar then reads the
   * parent again) or the periodic rescan (10 min) comes. Seen as a flaky unit test in CI
   * (session 11). So once a new directory's events settle, each subdirectory on disk that
   * chokidar does not list is handed to it, and reported as an added directory (chokidar adds
   * it without events), so what it holds is looked at. chokidar may still be reading the new
   * directory then (under load): the subdirectory is then added twice, which costs a second
   * listener on the same watch handle, nothing more. Reads chokidar's record of a directory's
   * entries (`_watched`, an internal, on this instance only); without it nothing is done (the
   * rescan stays the net).
   */
  private watchMissedSubdirs(path: string): void {
    const watcher = this.watcher
    if (!watcher) return
    const abs = join(this.root, path)
    readdir(abs, { withFileTypes: true }).then(
      (entries) => {
        if (this.watcher !== watcher) return // paused or restarted: a fresh watch reads everything
        const known = knownEntries(watcher, abs)
        if (!known) return
        for (const entry of entries) {
          if (!entry.isDirectory() || entry.name.startsWith(TEMP_PREFIX) || known.has(entry.name)) continue
          const sub = `${path}/${entry.name}`
          if (this.events.isIgnored(sub, true)) continue
          this.missedDirsWatched++
          this.log.debug({ path: sub }, 'a directory made while chokidar read its new parent was not watched: watching it')
          watcher.add(join(abs, entry.name))
          // reported as added, as chokidar would have: the receiver looks inside it once it
          // settles (its watch made by then) and again later, and its own subdirectories are
          // checked here the same way
          this.addedDirs.add(sub)
          this.settle(sub, undefined)
        }
      },
      () => undefined // gone again: its removal has its own events
    )
  }

  /** paused by `pause()` (bulk mode), until `resume()`; a restart is not a pause */
  get isPaused(): boolean {
    return this.paused
  }

  /**
   * Stops watching (pending settles still fire). During a bulk download every file we write
   * makes chokidar re-read its directory; a rescan after `resume()` finds what changed meanwhile.
   */
  pause(): Promise<void> {
    this.paused = true
    return this.serially(async () => {
      const watcher = this.watcher
      this.watcher = null
      await watcher?.close()
    })
  }

  resume(): Promise<void> {
    this.paused = false
    return this.serially(async () => {
      if (!this.watcher && !this.paused) await this.start()
    })
  }

  /**
   * Watches the folder afresh, if it is watched (false: paused, nothing done). For a directory
   * replaced in place that chokidar did not see go: it compares a directory's entries by name
   * only, so a directory moved away and created again between two of its reads keeps the old
   * directory's inotify watch, and nothing in the new one is reported (about 1 replacement in
   * 20 here). Its watch handles are shared by path across instances, so only closing them all
   * and starting again watches the new inode. Changes made in between have no event: the
   * caller rescans.
   */
  restart(): Promise<boolean> {
    return this.serially(async () => {
      if (this.paused || !this.watcher) return false
      const old = this.watcher
      this.watcher = null
      await old.close()
      await this.start()
      return true
    })
  }

  /** pause, resume and restart run one at a time, in call order */
  private serially<T>(op: () => Promise<T>): Promise<T> {
    const run = this.lifecycle.then(op)
    this.lifecycle = run.then(
      () => undefined,
      () => undefined
    )
    return run
  }

  close(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    this.addedDirs.clear()
    return this.serially(async () => {
      const watcher = this.watcher
      this.watcher = null
      await watcher?.close()
    })
  }
}

/**
 * The entries chokidar recorded for directory `abs` (it records each subdirectory it watches
 * there), or null when it has no record or this chokidar keeps none where we look.
 */
function knownEntries(watcher: FSWatcher, abs: string): { has(name: string): boolean | undefined } | null {
  const watched = (watcher as unknown as { _watched?: unknown })._watched
  if (!(watched instanceof Map)) return null
  const entry = watched.get(resolve(abs)) as { has?: unknown } | undefined
  return entry && typeof entry.has === 'function' ? (entry as { has(name: string): boolean | undefined }) : null
}

/** what chokidar's listing hands its filters: readdirp entries (`dirent` when not stat-ed) */
interface ListedEntry {
  stats?: Pick<Stats, 'isDirectory' | 'isSymbolicLink' | 'isFile'>
  dirent?: Dirent
}
interface ListOptions {
  directoryFilter: (entry: ListedEntry) => boolean
  [option: string]: unknown
}

/**
 * chokidar lists a directory when it starts watching it and again after every change in it
 * (at most once a second), with an lstat of every entry, files included, which the `ignored`
 * above then drops: a node receiving 1,000 files into directories of 500 spent 16 s of its
 * main thread in those lstats (100,000-file benchmark), and appending to 1,000 files in
 * directories of 5,000 cost chokidar 153 s of CPU, 8 s without them (measured 2026-11-29).
 * Listed by dirent type instead, it gets the same directories (files are never watched here;
 * their changes come as raw events) and a stats stand-in from the dirent, which is all it and
 * `ignored` ask of them. Node's readdir fills in the type with an lstat where the filesystem
 * gives none.
 *
 * The listing is one synchronous `readdir` (on the next turn, as chokidar's own lister starts
 * on a later tick), handed over as a stream of the entries chokidar keeps: the readdirp stream
 * it replaces cost more than the read itself. A fresh node's watcher starts again when its
 * bulk sync ends, reading its whole tree (1,042 directories on the default corpus) after the
 * last file: 206 ms cold (97 ms warm) with readdirp, 135 ms (56 ms) this way (2026-11-30).
 * A directory that cannot be read ends its listing empty, as readdirp's does for a vanished
 * one (chokidar then drops what it held); an unexpected error is passed to chokidar's handler
 * first.
 *
 * Overrides a chokidar internal on this instance only: without it (another chokidar
 * version), chokidar lists as it always did. Returns whether it applies.
 */
function listDirectoriesOnly(watcher: FSWatcher): boolean {
  const internal = watcher as unknown as { _readdirp?: (root: string, options: ListOptions) => unknown; _streams?: unknown; closed?: boolean }
  const list = internal._readdirp
  if (typeof list !== 'function' || list.length !== 2 || !(internal._streams instanceof Set)) return false
  const streams = internal._streams as Set<Readable>
  internal._readdirp = function (this: unknown, root: string, options: ListOptions) {
    if (typeof options?.directoryFilter !== 'function') return list.call(this, root, options)
    if (internal.closed) return undefined
    const stream = new Readable({ objectMode: true, read: () => undefined })
    streams.add(stream)
    stream.once('close', () => streams.delete(stream))
    stream.once('end', () => streams.delete(stream))
    setImmediate(() => {
      if (stream.destroyed) return
      const dir = resolve(root)
      let dirents: Dirent[] = []
      try {
        dirents = readdirSync(dir, { withFileTypes: true })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        const expected = code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM' || code === 'ELOOP'
        if (!expected && stream.listenerCount('error') > 0) stream.emit('error', err)
      }
      for (const d of dirents) {
        if (!d.isDirectory()) continue
        const entry: ListedEntry & { path: string; fullPath: string; basename: string } = {
          path: d.name,
          fullPath: join(dir, d.name),
          basename: d.name,
          dirent: d,
          stats: { isDirectory: () => true, isSymbolicLink: () => false, isFile: () => false }
        }
        if (options.directoryFilter(entry)) stream.push(entry)
      }
      stream.push(null)
    })
    return stream
  }
  return true
}

