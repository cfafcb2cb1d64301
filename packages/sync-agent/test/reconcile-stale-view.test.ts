import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { EntryMeta } from '../src/entry-format.js'
import { IndexStore } from '../src/index-store.js'
import { LocalDivergence } from '../src/local-divergence.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'
import type { MemberDrive } from '../src/replication/drive-set.js'
import { arrivingDrive, drive, entry, meta, publishingDeps } from './helpers/fake-drives.js'

const P = 'PPPPPPPPPPPPPPPP' // the peer whose conflict copy we applied before a restart
const C = 'CCCCCCCCCCCCCCCC' // us
const PATH = 'themes/t1/index.sync-conflict-20261203-123125-PPPPPPP.php'
/** the version our disk held (the record's), from past the point we had diffed the peer's drive to */
const APPLIED = { [P]: 111 }

const dirs: string[] = []
const indexes: IndexStore[] = []
afterEach(async () => {
  for (const index of indexes.splice(0)) await index.close().catch(() => undefined)
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/**
 * After a restart: the peer's drive is diffed (checkpoint) to an early length, its newest index
 * block is not here, so it is read as diffed and shows `asDiffed` for the path; the index
 * records the version `APPLIED` at the path, on disk unless `onDisk` is false.
 */
async function afterRestart(
  asDiffed: EntryMeta | null,
  onDisk: boolean,
  localOnly: LocalDivergence | null = null
): Promise<{ reconciler: PathReconciler; puts: EntryMeta[]; index: IndexStore; folder: string }> {
  const folder = await mkdtemp(join(tmpdir(), 'sa-stale-'))
  const data = await mkdtemp(join(tmpdir(), 'sa-stale-data-'))
  dirs.push(folder, data)
  const index = new IndexStore(data, Buffer.alloc(32, 1))
  indexes.push(index)
  await index.ready()
  await mkdir(join(folder, 'themes/t1'), { recursive: true })
  await writeFile(join(folder, PATH), 'applied\n')
  const st = await lstat(join(folder, PATH))
  index.set(PATH, { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash: 'a'.repeat(64), target: null, vv: APPLIED })
  if (!onDisk) await rm(join(folder, PATH))
  const own = drive(C, {}, true)
  Object.assign(own.drive, { version: 5, entries: async function* () {} })
  const peer: MemberDrive = arrivingDrive(P, 210, [], asDiffed ? entry(PATH, asDiffed) : null)
  const puts: EntryMeta[] = []
  const deps: ReconcileDeps = { ...publishingDeps({ folder, index, drives: [peer, own], own, puts, nextCounter: 9 }), appliedVersion: () => 1, indexUnserved: () => false, localOnly }
  return { reconciler: new PathReconciler(deps), puts, index, folder }
}

// fault suite seed 4001: a node applied a peer's conflict copy, was killed with its checkpoint of
// that peer's drive far behind (paths of it still pending), and a theme update removed the copy
// while it was down. The peer's newest index was not there at the restart, so its drive was read
// as diffed: no version of the path at all. The delete was taken as agreed, not published, and
// forgotten with the record; the copy came back with the peer's index (RESURRECTED)
describe('a drive read as diffed shows less than the version the disk held', () => {
  it('a local delete of it is published, after that version', async () => {
    const { reconciler, puts, index } = await afterRestart(null, false)
    await reconciler.reconcile(PATH)
    expect(puts).toHaveLength(1)
    expect(puts[0]).toMatchObject({ kind: 'deleted', vv: { [P]: 111, [C]: 9 } })
    expect(index.get(PATH)).toBeUndefined()
  })

  it('a local delete is published when the drive shows an older delete of the path (of the same content)', async () => {
    const { reconciler, puts } = await afterRestart({ ...meta({ [P]: 40 }, 'deleted'), was: 'a'.repeat(64) }, false)
    await reconciler.reconcile(PATH)
    expect(puts).toMatchObject([{ kind: 'deleted', vv: { [P]: 111, [C]: 9 } }])
  })

  it.each<[string, EntryMeta | null]>([
    ['not removed for want of a version', null],
    ['not replaced by an older version', { ...meta({ [P]: 40 }, 'file'), hash: 'b'.repeat(64) }]
  ])('the file on disk, unchanged, stays until the drive\'s diff: %s', async (_name, asDiffed) => {
    const { reconciler, puts, index, folder } = await afterRestart(asDiffed, true)
    expect(await reconciler.reconcile(PATH)).toBe('done')
    expect(await readFile(join(folder, PATH), 'utf8')).toBe('applied\n')
    expect(index.get(PATH)?.vv).toEqual(APPLIED)
    expect(puts).toEqual([])
  })

  // a read-only node (it publishes nothing) asked to revert a local edit of the file: the version
  // to go back to is past the drive's checkpoint, so the view shows none of it, or an older one
  it.each<[string, EntryMeta | null]>([
    ['not removed for want of a version', null],
    ['not replaced by an older version', { ...meta({ [P]: 40 }, 'file'), hash: 'b'.repeat(64) }]
  ])('a read-only revert of a local edit waits for the drive\'s diff: %s', async (_name, asDiffed) => {
    const localOnly = new LocalDivergence()
    const { reconciler, puts, index, folder } = await afterRestart(asDiffed, true, localOnly)
    await writeFile(join(folder, PATH), 'edited here, to be reverted\n')
    localOnly.add(PATH)
    localOnly.startRevert()
    expect(await reconciler.reconcile(PATH)).toBe('done')
    expect(await readFile(join(folder, PATH), 'utf8')).toBe('edited here, to be reverted\n')
    expect(index.get(PATH)?.vv).toEqual(APPLIED)
    expect(puts).toEqual([])
    // still to be reverted when the diff marks the path again
    expect(localOnly.isReverting(PATH)).toBe(true)
  })
})
