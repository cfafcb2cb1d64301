import { appendFile, chmod, mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { FolderWatcher, type WatcherEvents } from '../src/folder-watcher.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

/** A watcher on `root` (torn down after the test); only onPath (and onDirGone) matter here. */
async function watching(root: string, settleMs: number, onPath: WatcherEvents['onPath'], extra: Partial<WatcherEvents> = {}): Promise<FolderWatcher> {
  const watcher = new FolderWatcher(root, settleMs, {
    onPath,
    isIgnored: () => false,
    onDirGone: () => undefined,
    onError: (err) => {
      throw err
    },
    ...extra
  }, pino({ level: 'silent' }))
  await watcher.ready()
  cleanups.push(() => watcher.close())
  return watcher
}

describe('FolderWatcher', () => {
  // fault suite seed 100: a theme update moved themes/t0 away and wrote it again within the
  // settle window; the addDir replaced the pending unlinkDir, the files of the old directory
  // were never reconciled and their deletes never published (the index still listed them)
  it('reports a directory that is moved away and created again at once', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    await mkdir(join(root, 'themes/t0'), { recursive: true })
    await writeFile(join(root, 'themes/t0/style.css'), 'old')
    const gone: string[] = []
    const seen: string[] = []
    await watching(root, 200, (p) => seen.push(p), { isIgnored: (p) => p.endsWith('.tmp'), onDirGone: (p) => gone.push(p) })
    await rename(join(root, 'themes/t0'), join(root, 'themes/.old-t0.tmp'))
    await mkdir(join(root, 'themes/t0'))
    await writeFile(join(root, 'themes/t0/style.css'), 'new')
    // chokidar reports the removal (unlinkDir) unless it sees the new directory first; the
    // agent then re-checks what the known directory held when it hears about it at all
    await vi.waitFor(() => expect(gone.includes('themes/t0') || seen.includes('themes/t0'), 'themes/t0 is reported').toBe(true), { timeout: 15_000, interval: 20 })
  }, 30_000)

  // files are not watched one by one (one inotify watch each: 100,000 files ran out of the
  // limit and filled the memory); their directory's watch reports every change of them
  it('reports every change of a file through its directory, with one inotify watch per directory only', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    await mkdir(join(root, 'uploads/x'), { recursive: true })
    for (let i = 0; i < 50; i++) await writeFile(join(root, `uploads/x/f${i}.jpg`), 'old')
    await writeFile(join(root, 'uploads/x/x'), 'named like its directory')
    const seen = new Map<string, number>()
    await watching(root, 100, (p) => seen.set(p, (seen.get(p) ?? 0) + 1))
    // the root and uploads/, uploads/x: three inotify watches, not 54
    expect(inotifyWatches()).toBeLessThanOrEqual(3)
    const reported = (p: string) => vi.waitFor(() => expect(seen.has(p), `${p} is reported`).toBe(true), { timeout: 5_000, interval: 20 })
    await appendFile(join(root, 'uploads/x/f1.jpg'), ' and more')
    await reported('uploads/x/f1.jpg')
    await chmod(join(root, 'uploads/x/f2.jpg'), 0o755)
    await reported('uploads/x/f2.jpg')
    await unlink(join(root, 'uploads/x/f3.jpg'))
    await reported('uploads/x/f3.jpg')
    await writeFile(join(root, 'uploads/x/new.jpg'), 'new')
    await reported('uploads/x/new.jpg')
    await rename(join(root, 'uploads/x/f4.jpg'), join(root, 'uploads/x/moved.jpg'))
    await reported('uploads/x/f4.jpg')
    await reported('uploads/x/moved.jpg')
    await appendFile(join(root, 'uploads/x/x'), '!')
    await reported('uploads/x/x')
    expect(seen.has('uploads/x/f5.jpg')).toBe(false)
  }, 30_000)
})


describe('FolderWatcher: added directories', () => {
  // the agent looks inside every directory chokidar reports as added (its files may predate
  // its watch); a later event of the same path within the settle window must not hide that
  it('says a settled path was an added directory, even when a later event of it came', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const settled: Array<{ path: string; addedDir: boolean }> = []
    await watching(root, 300, (path, _stats, addedDir) => settled.push({ path, addedDir }))
    await mkdir(join(root, 'themes'))
    await writeFile(join(root, 'themes/style.css'), 'x')
    await vi.waitFor(() => expect(settled.map((s) => s.path)).toContain('themes'), { timeout: 5_000, interval: 20 })
    expect(settled.find((s) => s.path === 'themes')?.addedDir).toBe(true)
    // (style.css, written before chokidar watched themes/, usually has no event at all: why
    // the agent looks inside added directories; see local-changes.test.ts)
    await appendFile(join(root, 'themes/style.css'), 'y')
    await vi.waitFor(() => expect(settled.map((s) => s.path)).toContain('themes/style.css'), { timeout: 5_000, interval: 20 })
    expect(settled.find((s) => s.path === 'themes/style.css')?.addedDir).toBe(false)
    // a directory made, then chmod-ed at once (a raw event of the same path, no stats)
    settled.length = 0
    await mkdir(join(root, 'plugins'))
    await chmod(join(root, 'plugins'), 0o700)
    await vi.waitFor(() => expect(settled.map((s) => s.path)).toContain('plugins'), { timeout: 5_000, interval: 20 })
    expect(settled.filter((s) => s.path === 'plugins')).toEqual([{ path: 'plugins', addedDir: true }])
  }, 30_000)
})

describe('FolderWatcher.restart', () => {
  // chokidar compares a directory's entries by name: moved away and created again in one tick,
  // the directory keeps the old one's watch, and nothing written in the new one is reported
  it('a directory replaced in one tick is unwatched until the watcher restarts; then its changes are reported', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    await mkdir(join(root, 'themes/t1/parts'), { recursive: true })
    const seen = new Set<string>()
    const watcher = await watching(root, 50, (p) => seen.add(p))
    renameSync(join(root, 'themes/t1'), join(root, 'themes/.old-t1.tmp'))
    mkdirSync(join(root, 'themes/t1/parts'), { recursive: true })
    await vi.waitFor(() => expect(seen.has('themes/t1')).toBe(true), { timeout: 5_000, interval: 20 })
    // a write that is reported proves the watcher is live; the one in the new t1 is not
    await writeFile(join(root, 'themes/t1/before.php'), 'x')
    await writeFile(join(root, 'themes/probe.txt'), 'x')
    await vi.waitFor(() => expect(seen.has('themes/probe.txt')).toBe(true), { timeout: 5_000, interval: 20 })
    expect(seen.has('themes/t1/before.php')).toBe(false)

    expect(await watcher.restart()).toBe(true)
    await writeFile(join(root, 'themes/t1/after.php'), 'x')
    await writeFile(join(root, 'themes/t1/parts/after.php'), 'x')
    await vi.waitFor(() => expect(seen.has('themes/t1/after.php') && seen.has('themes/t1/parts/after.php')).toBe(true), { timeout: 5_000, interval: 20 })
  }, 30_000)

  it('pause, resume and restart run in call order and leave one watch per directory', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    await mkdir(join(root, 'a/b'), { recursive: true })
    const watcher = await watching(root, 50, () => undefined)
    const watches = inotifyWatches()
    await Promise.all([watcher.restart(), watcher.pause(), watcher.resume(), watcher.restart(), watcher.restart()])
    expect(watcher.isPaused).toBe(false)
    expect(inotifyWatches()).toBe(watches)
    await watcher.pause()
    expect(await watcher.restart()).toBe(false) // paused: nothing to renew
    expect(watcher.isPaused).toBe(true)
    await watcher.resume()
    expect(inotifyWatches()).toBe(watches)
  }, 30_000)
})

describe('FolderWatcher: directories listed without an lstat per file', () => {
  // chokidar lists a directory again after every change in it, with an lstat of every entry;
  // the watcher lists directories by their dirent type instead (16 s of a receiving node's main
  // thread at 100,000 files). On a chokidar without the internal it overrides, this fails: the
  // agent still works, slower, and someone should look
  it('is in effect on this chokidar, and subdirectories are still found, dropped and replaced', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const outside = await mkdtemp(join(tmpdir(), 'sa-outside-'))
    cleanups.push(() => rm(outside, { recursive: true, force: true }))
    await mkdir(join(root, 'uploads/2026'), { recursive: true })
    for (let i = 0; i < 20; i++) await writeFile(join(root, `uploads/2026/f${i}.jpg`), 'x')
    const settled: Array<{ path: string; addedDir: boolean }> = []
    const gone: string[] = []
    const watcher = await watching(root, 50, (path, _stats, addedDir) => settled.push({ path, addedDir }), { onDirGone: (p) => gone.push(p) })
    expect(watcher.listsDirectoriesOnly).toBe(true)
    // root, uploads, uploads/2026: the files are not watched
    expect(inotifyWatches()).toBe(3)
    const added = (p: string) => vi.waitFor(() => expect(settled.some((s) => s.path === p && s.addedDir), `${p} reported as added`).toBe(true), { timeout: 5_000, interval: 20 })
    // one level at a time: chokidar reads a new directory before it watches it, so a
    // subdirectory made in between (`mkdir -p` of two levels, racing its read) is never watched
    // (handled since: see the next describe). What this test checks is our listing
    await mkdir(join(root, 'uploads/2026/11'))
    await added('uploads/2026/11')
    await vi.waitFor(() => expect(inotifyWatches()).toBe(4), { timeout: 5_000, interval: 20 }) // reported before it is watched
    await mkdir(join(root, 'uploads/2026/11/deep'))
    await added('uploads/2026/11/deep')
    await vi.waitFor(() => expect(inotifyWatches()).toBe(5), { timeout: 5_000, interval: 20 })
    await writeFile(join(root, 'uploads/2026/11/deep/new.jpg'), 'x')
    await vi.waitFor(() => expect(settled.map((s) => s.path)).toContain('uploads/2026/11/deep/new.jpg'), { timeout: 5_000, interval: 20 })
    // a directory removed, and a file put where a directory was
    await rm(join(root, 'uploads/2026/11'), { recursive: true })
    await vi.waitFor(() => expect(gone).toContain('uploads/2026/11'), { timeout: 5_000, interval: 20 })
    await mkdir(join(root, 'uploads/x'))
    await added('uploads/x')
    await rm(join(root, 'uploads/x'), { recursive: true })
    await writeFile(join(root, 'uploads/x'), 'a file now')
    await vi.waitFor(() => expect(gone).toContain('uploads/x'), { timeout: 5_000, interval: 20 })
    // a link to a directory outside is not followed, so not watched
    await symlink(outside, join(root, 'uploads/linked'))
    await vi.waitFor(() => expect(settled.map((s) => s.path)).toContain('uploads/linked'), { timeout: 5_000, interval: 20 })
    expect(settled.find((s) => s.path === 'uploads/linked')?.addedDir).toBe(false)
    await writeFile(join(outside, 'elsewhere.txt'), 'x')
    await writeFile(join(root, 'uploads/probe.txt'), 'x')
    await vi.waitFor(() => expect(settled.map((s) => s.path)).toContain('uploads/probe.txt'), { timeout: 5_000, interval: 20 })
    expect(settled.map((s) => s.path).filter((p) => p.includes('elsewhere'))).toEqual([])
    await vi.waitFor(() => expect(inotifyWatches()).toBe(3), { timeout: 5_000, interval: 20 })
  }, 30_000)
})

describe('FolderWatcher: its listing of a directory for chokidar', () => {
  type Listed = { path: string; fullPath: string; stats: { isDirectory(): boolean } }
  /** what the listing chokidar was given hands over for `dir` (after every entry: the end) */
  async function listed(watcher: FolderWatcher, dir: string): Promise<Listed[]> {
    const chokidar = (watcher as unknown as { watcher: { _readdirp: (dir: string, options: unknown) => NodeJS.ReadableStream } }).watcher
    const stream = chokidar._readdirp(dir, { directoryFilter: () => true, fileFilter: () => true })
    const out: Listed[] = []
    stream.on('data', (entry: Listed) => out.push(entry))
    await new Promise<void>((resolve, reject) => {
      stream.once('end', () => resolve())
      stream.once('error', reject)
    })
    return out.sort((a, b) => a.path.localeCompare(b.path))
  }

  it('lists real subdirectories only (no files, no links), and a directory that is gone as empty', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    await mkdir(join(root, 'a/b'), { recursive: true })
    await mkdir(join(root, 'a/c d'))
    await writeFile(join(root, 'a/file.txt'), 'x')
    await symlink(join(root, 'a/b'), join(root, 'a/link-to-b'))
    const watcher = await watching(root, 50, () => undefined)
    expect(watcher.listsDirectoriesOnly).toBe(true)
    const entries = await listed(watcher, join(root, 'a'))
    expect(entries.map((e) => [e.path, e.fullPath, e.stats.isDirectory()])).toEqual([
      ['b', join(root, 'a/b'), true],
      ['c d', join(root, 'a/c d'), true]
    ])
    // removed before its listing ran (a directory deleted right after its event): empty, and
    // the listing ends, or chokidar would wait for it for ever
    expect(await listed(watcher, join(root, 'gone'))).toEqual([])
    expect(await listed(watcher, join(root, 'a/file.txt'))).toEqual([])
  })
})

describe('FolderWatcher: a subdirectory made while chokidar read its new parent', () => {
  // chokidar reads a new directory, then watches it; a subdirectory made in between was in
  // neither and was never watched (session 11's flaky CI test). The gap is made here for
  // certain: the subdirectory is created the moment chokidar's read of its parent ends
  it('is watched once the parent settles, so files written into it later are reported', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-watch-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const settled: string[] = []
    const added: string[] = []
    const watcher = await watching(root, 50, (path, _stats, addedDir) => {
      settled.push(path)
      if (addedDir) added.push(path)
    })
    const chokidar = (watcher as unknown as { watcher: { _readdirp: (dir: string, options: unknown) => NodeJS.EventEmitter } }).watcher
    const list = chokidar._readdirp
    let raced = false
    chokidar._readdirp = function (dir: string, options: unknown) {
      const stream = list.call(this, dir, options)
      // registered before chokidar's own 'end' listener, so this runs before it watches `dir`
      if (dir === join(root, 'new') && !raced) {
        raced = true
        stream.once('end', () => mkdirSync(join(root, 'new/sub')))
      }
      return stream
    }
    expect(inotifyWatches()).toBe(1)
    await mkdir(join(root, 'new'))
    await vi.waitFor(() => expect(settled).toContain('new'), { timeout: 5_000, interval: 20 })
    expect(raced).toBe(true)
    // the parent's settle starts the check; its readdir ends a moment later (under load, after
    // the poll that saw 'new' settle: this assertion was immediate and failed in a full run)
    await vi.waitFor(() => expect(watcher.missedDirsWatched).toBe(1), { timeout: 5_000, interval: 20 })
    // reported as added, as chokidar would have (the agent looks inside it), and watched:
    // root, new and new/sub
    await vi.waitFor(() => expect(added).toEqual(['new', 'new/sub']), { timeout: 5_000, interval: 20 })
    await vi.waitFor(() => expect(inotifyWatches()).toBe(3), { timeout: 5_000, interval: 20 })
    await writeFile(join(root, 'new/sub/later.jpg'), 'x')
    await vi.waitFor(() => expect(settled).toContain('new/sub/later.jpg'), { timeout: 5_000, interval: 20 })
  }, 30_000)
})

/** inotify watches this process holds (from /proc/self/fdinfo of its inotify descriptors). */
function inotifyWatches(): number {
  let count = 0
  for (const fd of readdirSafe('/proc/self/fd')) {
    let info: string
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    } catch {
      continue
    }
    count += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length
  }
  return count
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}
