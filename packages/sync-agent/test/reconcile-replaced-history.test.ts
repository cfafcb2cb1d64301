import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { toDriveKey } from '@sync-agent/shared'
import type { BlobId } from 'hyperblobs'
import type { EntryMeta } from '../src/entry-format.js'
import { IndexStore } from '../src/index-store.js'
import { PathReconciler } from '../src/reconcile-path.js'
import { drive, entry, meta, publishingDeps } from './helpers/fake-drives.js'

const A = 'AAAAAAAAAAAAAAAA' // us
const B = 'BBBBBBBBBBBBBBBB' // a peer
const X = '1'.repeat(64) // content we wrote first
const Y = '2'.repeat(64) // what replaced it
const LATER = '3'.repeat(64)

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

async function temp(): Promise<{ folder: string; index: IndexStore }> {
  const folder = await mkdtemp(join(tmpdir(), 'sa-history-'))
  const data = await mkdtemp(join(tmpdir(), 'sa-history-data-'))
  dirs.push(folder, data)
  const index = new IndexStore(data, Buffer.alloc(32, 1))
  await index.ready()
  return { folder, index }
}

/**
 * Our version of style.css (`ours`: its hash, was, replaced; counter `counter` of ours) held on
 * disk and in the index, against a concurrent version of the peer's published later, which
 * wins (a symlink: applying it reads no blob). Reconciles the path; what we wrote to our drive.
 */
async function loseToLaterLink(folder: string, index: IndexStore, ours: Partial<EntryMeta> & { hash: string }, counter: number, forgotten: BlobId[] = []): Promise<EntryMeta[]> {
  const key = toDriveKey('style.css')
  const own = drive(A, { [key]: entry('style.css', { ...meta({ [A]: counter }, 'file'), ...ours }) }, true)
  Object.assign(own.drive, { version: counter, entries: async function* () {} })
  const link = entry('style.css', { ...meta({ [B]: counter + 1 }, 'symlink'), ts: 5_000 })
  Object.assign(link.value, { linkname: 'other.css' })
  const peer = drive(B, { [key]: link })
  await writeFile(join(folder, 'style.css'), 'abc')
  const st = await stat(join(folder, 'style.css'))
  index.set('style.css', { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash: ours.hash, target: null, vv: { [A]: counter } })
  const puts: EntryMeta[] = []
  await new PathReconciler(publishingDeps({ folder, index, drives: [own, peer], own, puts, nextCounter: counter + 1, forgotten })).reconcile('style.css')
  return puts
}

describe('the contents an entry replaced outlive it in the next entry of that drive', () => {
  it('a local delete of a version that had replaced X names X as replaced earlier', async () => {
    const { folder, index } = await temp()
    const key = toDriveKey('style.css')
    // our entry: Y, which replaced X here; the disk has lost the file since (deleted here)
    const own = drive(A, { [key]: entry('style.css', { ...meta({ [A]: 3 }, 'file'), hash: Y, was: X }) }, true)
    Object.assign(own.drive, { version: 3, entries: async function* () {} }) // no conflict copies
    index.set('style.css', { kind: 'file', size: 3, mtimeMs: 1, ino: 1, mode: 0o644, hash: Y, target: null, vv: { [A]: 3 } })
    const puts: EntryMeta[] = []
    await new PathReconciler(publishingDeps({ folder, index, drives: [own], own, puts, nextCounter: 4 })).reconcile('style.css')
    expect(puts).toMatchObject([{ kind: 'deleted', was: Y, replaced: [X] }])
    await index.close()
  })

  it('our version that had replaced X, withdrawn when it loses a conflict, leaves X named as replaced', async () => {
    const { folder, index } = await temp()
    const forgotten: BlobId[] = []
    const puts = await loseToLaterLink(folder, index, { hash: Y, was: X }, 3, forgotten)
    // our entry's blob is left to the sweeper (the copy names it: a sweep keeps its block)
    expect(forgotten).toEqual([expect.objectContaining({ byteLength: 3 })])
    // the copy (the loser's own metadata) and the withdrawn tombstone
    expect(puts).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'deleted', withdrawn: true, vv: { [A]: 3 }, replaced: [X] })]))
    // the copy carries our version's own vector and the mark of a copy we made (seed 12510)
    expect(puts).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'file', hash: Y, vv: { [A]: 3 }, copy: true })]))
    await index.close()
  })

  // fault suite seed 41010 (LOST): our version Y, touched (a write that failed on the full disk
  // set its mtime), was published again as Y with was=Y; it lost a conflict, and its tombstone
  // named Y as replaced: our next edit of the path carried that, and withdrew Y's conflict copy
  it('our touched version, withdrawn when it loses a conflict, does not name its own content as replaced', async () => {
    const { folder, index } = await temp()
    const puts = await loseToLaterLink(folder, index, { hash: Y, was: Y, replaced: [X] }, 5)
    const tombstone = puts.find((m) => m.kind === 'deleted' && m.withdrawn)
    expect(tombstone).toMatchObject({ vv: { [A]: 5 }, replaced: [X] })
    expect(puts).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'file', hash: Y, copy: true })]))
    await index.close()
  })

  // fault suite seed 4129: our version X lost a conflict and lives on as our conflict copy. A
  // peer had replaced X on purpose (its entry named X), and before we read that entry it edited
  // the path again on top of a later version of ours: its entry names only what that edit
  // replaced, and its vector holds our later counter. The copy of X stayed: RESURRECTED
  it("withdraws our conflict copy of X when the peer's later entry names X only in its history", async () => {
    const { folder, index } = await temp()
    const copyPath = 'style.sync-conflict-20261129-120000-AAAAAAA.css'
    const copyKey = toDriveKey(copyPath)
    const copyEntry = entry(copyPath, { ...meta({ [A]: 5 }, 'file'), hash: X })
    const own = drive(A, { [copyKey]: copyEntry }, true)
    // our drive holds the copy (found by a range read of the copies of style.css)
    Object.assign(own.drive, {
      version: 7,
      entries: async function* () {
        yield { ...copyEntry, value: Buffer.from(JSON.stringify(copyEntry.value)) }
      }
    })
    // the peer deleted style.css on top of our later version {A: 6}; it had replaced X before
    const peer = drive(B, { [toDriveKey('style.css')]: entry('style.css', { ...meta({ [A]: 6, [B]: 4 }, 'deleted'), was: LATER, replaced: [X] }) })
    // the copy is on our disk as we wrote it
    await writeFile(join(folder, copyPath), 'old')
    const st = await stat(join(folder, copyPath))
    index.set(copyPath, { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash: X, target: null, vv: { [A]: 5 } })
    const puts: EntryMeta[] = []
    const forgotten: BlobId[] = []
    const deps = publishingDeps({ folder, index, drives: [own, peer], own, puts, nextCounter: 8, forgotten })
    const told: string[] = []
    Object.assign(deps, { onNewPath: (p: string) => told.push(`new ${p}`), onOwnEntryReplaced: (p: string) => told.push(`replaced ${p}`) })
    await new PathReconciler(deps).reconcile('style.css')
    expect(puts).toMatchObject([{ kind: 'deleted', withdrawn: true, was: X, vv: { [A]: 5 } }])
    // the withdrawn copy's blob is left to the sweeper
    expect(forgotten).toEqual([copyEntry.value.blob])
    // withdrawn outside the copy's own run: a run of it waiting for those bytes must end
    // (fault suite seed 4904), so the engine hears of a replaced entry, not only of a path
    expect(told).toEqual([`replaced ${copyPath}`])
    await index.close()
  })
})
