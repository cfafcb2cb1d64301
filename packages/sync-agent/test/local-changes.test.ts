import { lstat, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildIgnoreRules } from '../src/ignore-rules.js'
import { LocalChanges } from '../src/local-changes.js'
import type { LocalRecord } from '../src/index-store.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

function recordOf(st: Awaited<ReturnType<typeof lstat>>, kind: LocalRecord['kind']): LocalRecord {
  return { kind, size: Number(st.size), mtimeMs: Number(st.mtimeMs), ino: Number(st.ino), mode: Number(st.mode) & 0o777, hash: kind === 'file' ? 'h' : null, target: null, vv: {} }
}

/** A folder, an index (path → record) and an engine that only records what it was asked to look at. */
async function scene(lookAgainMs = 60_000, pending: Set<string> = new Set(), removedByAgent: Set<string> = new Set()) {
  const root = await mkdtemp(join(tmpdir(), 'sa-local-'))
  cleanups.push(() => rm(root, { recursive: true, force: true }))
  const index = new Map<string, LocalRecord>()
  const marked: string[] = []
  const trees: string[] = []
  const errors: string[] = []
  const stale: string[] = []
  const changes = new LocalChanges({
    root,
    index,
    engine: { mark: (p) => marked.push(p), markTree: (d) => trees.push(d), isPending: (p) => pending.has(p) },
    rules: () => buildIgnoreRules([], [], null),
    onError: (m) => errors.push(m),
    onStaleWatch: (d) => stale.push(d),
    removedByAgentLately: (d) => removedByAgent.has(d),
    lookAgainMs
  })
  cleanups.push(() => changes.close())
  /** records what is on disk now, as the engine would after applying or publishing it */
  const record = async (rel: string, kind: LocalRecord['kind']) => index.set(rel, recordOf(await lstat(join(root, rel)), kind))
  return { root, index, marked, trees, errors, stale, changes, record }
}

describe('LocalChanges', () => {
  // fault suite seeds 40011 and 40507: a program moved a file away just after the agent placed
  // it (or while it published it); the event settled before the run recorded the path, so the
  // missing file looked like one we never held, and its delete waited 33–50 s for a rescan
  it('marks a path found gone when its event settles while the engine is still working on it (no record yet)', async () => {
    const pending = new Set(['docs/d0/c.php'])
    const s = await scene(60_000, pending)
    s.changes.onSettled('docs/d0/c.php', undefined, false)
    await vi.waitFor(() => expect(s.marked).toEqual(['docs/d0/c.php']))
  })

  // a periodic rescan names what it finds that no watcher event was on its way for
  // (daemon.ts, reportedByWatcher): a settled event being looked at still counts as reported
  it('is looking at a settled path from its event until the engine heard of it, for a change and for a removal', async () => {
    const s = await scene()
    await writeFile(join(s.root, 'a.txt'), 'x')
    s.changes.onSettled('a.txt', undefined, false)
    s.changes.onSettled('gone.txt', undefined, false)
    expect([s.changes.isLooking('a.txt'), s.changes.isLooking('gone.txt')]).toEqual([true, true])
    await vi.waitFor(() => expect(s.marked).toEqual(['a.txt']))
    expect(s.changes.isLooking('a.txt')).toBe(false)
    // nothing held there: looked at, nothing to mark
    await vi.waitFor(() => expect(s.changes.isLooking('gone.txt')).toBe(false))
    expect(s.marked).toEqual(['a.txt'])
  })

  it('marks a path found gone whose record reached the index while its lstat was under way', async () => {
    const s = await scene()
    await writeFile(join(s.root, 'a.txt'), 'x')
    await s.record('a.txt', 'file')
    await rm(join(s.root, 'a.txt'))
    const record = s.index.get('a.txt') as LocalRecord
    s.index.delete('a.txt')
    s.changes.onSettled('a.txt', undefined, false) // reads the index now: no record
    s.index.set('a.txt', record) // the run that placed it ends before the lstat answers
    await vi.waitFor(() => expect(s.marked).toEqual(['a.txt']))
  })

  // theme-update test, ~1 full-suite run in 4: themes/t0 was moved away and created again; the
  // removal's markTree had the engine reconcile themes/t0, which recorded the new directory;
  // when its addDir settled the index matched, nothing looked inside, and style.css (written
  // before chokidar watched the new directory) was never published
  it('looks inside a directory chokidar reports as added even when the index already holds it', async () => {
    const s = await scene()
    await mkdir(join(s.root, 'themes/t0'), { recursive: true })
    await s.record('themes', 'dir')
    await s.record('themes/t0', 'dir') // the new directory, recorded before its event settled
    await writeFile(join(s.root, 'themes/t0/style.css'), 'v2 css')

    // without chokidar's word: only what the index knew under it is looked at (a look inside
    // is decided at once, with its second look scheduled beside it)
    const looksAgain = () => (s.changes as unknown as { looksAgain: Map<string, unknown> }).looksAgain.size
    s.changes.onSettled('themes/t0', await lstat(join(s.root, 'themes/t0')), false)
    expect(s.trees).toEqual(['themes/t0'])
    expect(looksAgain()).toBe(0)

    s.changes.onSettled('themes/t0', await lstat(join(s.root, 'themes/t0')), true)
    expect(looksAgain()).toBe(1)
    await vi.waitFor(() => expect(s.marked).toContain('themes/t0/style.css'), { timeout: 5_000, interval: 10 })
    expect(s.marked).not.toContain('themes/t0') // the directory itself is as recorded
    expect(s.errors).toEqual([])
  })

  it('looks inside a new directory now and once more later, for files written between the two', async () => {
    const s = await scene(50)
    await mkdir(join(s.root, 'uploads/2026/11'), { recursive: true })
    await s.record('uploads', 'dir')
    await writeFile(join(s.root, 'uploads/2026/11/a.jpg'), 'a')
    s.changes.onSettled('uploads/2026', undefined, false) // no record: new
    await vi.waitFor(() => expect(s.marked).toEqual(expect.arrayContaining(['uploads/2026', 'uploads/2026/11', 'uploads/2026/11/a.jpg'])), { timeout: 5_000, interval: 5 })
    await writeFile(join(s.root, 'uploads/2026/11/b.jpg'), 'b')
    await vi.waitFor(() => expect(s.marked).toContain('uploads/2026/11/b.jpg'), { timeout: 5_000, interval: 5 })
  })

  it('marks the old tree and looks inside a directory replaced by another one', async () => {
    const s = await scene()
    await mkdir(join(s.root, 'themes/t0'), { recursive: true })
    await writeFile(join(s.root, 'themes/t0/old.php'), 'old')
    await s.record('themes/t0', 'dir')
    await s.record('themes/t0/old.php', 'file')
    const away = await mkdtemp(join(tmpdir(), 'sa-away-'))
    cleanups.push(() => rm(away, { recursive: true, force: true }))
    await rename(join(s.root, 'themes/t0'), join(away, 't0'))
    await mkdir(join(s.root, 'themes/t0'))
    await writeFile(join(s.root, 'themes/t0/new.php'), 'new')
    s.changes.onSettled('themes/t0', undefined, false)
    await vi.waitFor(() => expect(s.marked).toContain('themes/t0/new.php'), { timeout: 5_000, interval: 5 })
    expect(s.trees).toContain('themes/t0')
    // chokidar did not say it was added: its watch may be the old directory's
    expect(s.stale).toEqual(['themes/t0'])
  })

  it('asks for a fresh watch only for a replaced directory chokidar did not report as added', async () => {
    const s = await scene()
    await mkdir(join(s.root, 'a'))
    await mkdir(join(s.root, 'b'))
    await s.record('a', 'dir')
    s.index.set('b', { ...s.index.get('a')!, ino: -1 }) // b: recorded with another inode
    s.changes.onSettled('a', await lstat(join(s.root, 'a')), false) // same directory
    s.changes.onSettled('b', await lstat(join(s.root, 'b')), true) // replaced, and chokidar saw it come
    s.changes.onSettled('new', undefined, false)
    await mkdir(join(s.root, 'new'))
    s.changes.onSettled('new', await lstat(join(s.root, 'new')), false) // new, not replaced
    expect(s.stale).toEqual([])
    s.changes.onSettled('b', await lstat(join(s.root, 'b')), false)
    expect(s.stale).toEqual(['b'])
  })

  // the agent applied a peer's delete of a directory (removed it, and its record), and a program
  // made it again at once: no record holds the old inode, and chokidar may keep the old watch
  it('asks for a fresh watch for a directory made again right after the agent removed it, unless chokidar reported it as added', async () => {
    const s = await scene(60_000, new Set(), new Set(['uploads/2026/05', 'uploads/2026/06']))
    await mkdir(join(s.root, 'uploads/2026/05'), { recursive: true })
    await mkdir(join(s.root, 'uploads/2026/06'), { recursive: true })
    await mkdir(join(s.root, 'uploads/2026/07'), { recursive: true })
    s.changes.onSettled('uploads/2026/06', await lstat(join(s.root, 'uploads/2026/06')), true) // chokidar saw it come
    s.changes.onSettled('uploads/2026/07', await lstat(join(s.root, 'uploads/2026/07')), false) // not removed by the agent
    expect(s.stale).toEqual([])
    s.changes.onSettled('uploads/2026/05', await lstat(join(s.root, 'uploads/2026/05')), false)
    expect(s.stale).toEqual(['uploads/2026/05'])
  })

  it('marks a changed or removed file, and leaves an unchanged one (our own write coming back)', async () => {
    const s = await scene()
    await writeFile(join(s.root, 'same.txt'), 'same')
    await writeFile(join(s.root, 'edited.txt'), 'v1')
    await writeFile(join(s.root, 'gone.txt'), 'x')
    for (const p of ['same.txt', 'edited.txt', 'gone.txt']) await s.record(p, 'file')
    await writeFile(join(s.root, 'edited.txt'), 'v2 longer')
    await rm(join(s.root, 'gone.txt'))
    for (const p of ['same.txt', 'edited.txt', 'gone.txt', 'never-known.txt']) s.changes.onSettled(p, undefined, false)
    await vi.waitFor(() => expect(s.marked.sort()).toEqual(['edited.txt', 'gone.txt']), { timeout: 5_000, interval: 5 })
    // nothing more comes later
    s.changes.onSettled('same.txt', await lstat(join(s.root, 'same.txt')), false)
    await new Promise((resolve) => setImmediate(resolve))
    expect(s.marked.sort()).toEqual(['edited.txt', 'gone.txt'])
  })

  it('close cancels the second looks, and a closed instance marks nothing', async () => {
    const s = await scene()
    await mkdir(join(s.root, 'd'))
    s.changes.onSettled('d', await lstat(join(s.root, 'd')), true)
    expect((s.changes as unknown as { looksAgain: Map<string, unknown> }).looksAgain.size).toBe(1)
    s.changes.close()
    expect((s.changes as unknown as { looksAgain: Map<string, unknown> }).looksAgain.size).toBe(0)
    const before = [...s.marked]
    await writeFile(join(s.root, 'd/late.txt'), 'late')
    s.changes.onSettled('d/late.txt', await lstat(join(s.root, 'd/late.txt')), false) // stats given: decided at once
    s.changes.onDirGone('d')
    expect(s.marked).toEqual(before)
    expect(s.trees).toEqual([])
  })
})
