import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { mkdtemp, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { FolderWatcher } from '../src/folder-watcher.js'
import { FolderWriter, type FileMeta } from '../src/folder-writer.js'
import { REMADE_WINDOW_MS, RemadeDirs } from '../src/remade-dirs.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'sa-remade-'))
  cleanups.push(() => rm(root, { recursive: true, force: true }))
  return root
}

function metaOf(content: string): FileMeta {
  return { mtimeMs: 1_700_000_000_000, mode: 0o644, size: Buffer.byteLength(content), hash: createHash('sha256').update(content).digest('hex') }
}

describe('RemadeDirs', () => {
  it('names a directory made again within the window of its removal, once', () => {
    let now = 1_000
    const remade: string[] = []
    const dirs = new RemadeDirs((abs) => remade.push(abs), () => now)
    dirs.made('/f/a') // never removed
    dirs.removed('/f/a')
    now += REMADE_WINDOW_MS
    dirs.made('/f/a')
    dirs.made('/f/a') // said once per removal
    dirs.removed('/f/b')
    now += REMADE_WINDOW_MS + 1
    dirs.made('/f/b') // too late: chokidar has long seen the removal
    expect(remade).toEqual(['/f/a'])
    dirs.removed('/f/c')
    expect(dirs.removedLately('/f/c')).toBe(true)
    expect(dirs.removedLately('/f/a')).toBe(false) // made again since
    now += REMADE_WINDOW_MS + 1
    expect(dirs.removedLately('/f/c')).toBe(false)
  })

  it('keeps a bounded number of removals', () => {
    let now = 0
    const remade: string[] = []
    const dirs = new RemadeDirs((abs) => remade.push(abs), () => now)
    for (let i = 0; i < 5_000; i++) dirs.removed(`/f/d${i}`)
    now += 1
    dirs.made('/f/d0') // dropped: 4,000 removals came after it
    dirs.made('/f/d4999')
    expect(remade).toEqual(['/f/d4999'])
  })
})

// fault suite seed 4909: a peer's delete of themes/t1/assets applied (the directory removed),
// then a conflict copy placed there (the directory made again at once): chokidar kept the old
// directory's dead watch, and a delete of the copy 2.4 s later was found by the periodic rescan
describe('FolderWriter: a directory it removed and makes again', () => {
  it('is named, whether made for a file or as a directory', async () => {
    const root = await tempRoot()
    const remade: string[] = []
    const writer = new FolderWriter(root, undefined, undefined, (dir) => remade.push(dir))
    mkdirSync(join(root, 'themes/t1/assets'), { recursive: true })
    mkdirSync(join(root, 'uploads/2024'), { recursive: true })
    expect(await writer.remove('themes/t1/assets', undefined)).toBe(true)
    expect(await writer.remove('uploads/2024', undefined)).toBe(true)
    await writer.writeFile('themes/t1/assets/app.sync-conflict-20261203-195810-ZZGHCQ5.js', [Buffer.from('x')], metaOf('x'), undefined)
    await writer.makeDir('uploads/2024', 0o755)
    // a new directory (never removed) is not
    await writer.writeFile('docs/new/a.txt', [Buffer.from('y')], metaOf('y'), undefined)
    expect(remade).toEqual(['themes/t1/assets', 'uploads/2024'])
  })

  it('once named and the folder watched afresh, changes in it are reported again', async () => {
    const root = await tempRoot()
    mkdirSync(join(root, 'themes/t1/assets'), { recursive: true })
    const seen = new Set<string>()
    const watcher = new FolderWatcher(root, 50, { onPath: (p) => seen.add(p), isIgnored: () => false, onDirGone: () => undefined, onError: (err) => { throw err } }, pino({ level: 'silent' }))
    await watcher.ready()
    cleanups.push(() => watcher.close())
    const remade: string[] = []
    const writer = new FolderWriter(root, undefined, undefined, (dir) => remade.push(dir))
    const copy = 'themes/t1/assets/app.sync-conflict-20261203-195810-ZZGHCQ5.js'
    expect(await writer.remove('themes/t1/assets', undefined)).toBe(true)
    await writer.writeFile(copy, [Buffer.from('x')], metaOf('x'), undefined)
    expect(remade).toEqual(['themes/t1/assets'])
    // chokidar then kept the old directory's dead watch in 14 of 16 runs here (the writer's rmdir
    // and mkdir ran in one turn of the event loop): not asserted, as it is not always so. The
    // daemon watches the folder afresh (WatchRenewal); after that the delete is reported
    expect(await watcher.restart()).toBe(true)
    await unlink(join(root, copy))
    await vi.waitFor(() => expect(seen.has(copy)).toBe(true), { timeout: 5_000, interval: 20 })
  }, 30_000)
})
