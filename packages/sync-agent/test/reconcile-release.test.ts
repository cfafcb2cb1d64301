import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { BlobId } from 'hyperblobs'
import { toDriveKey } from '@sync-agent/shared'
import { IndexStore } from '../src/index-store.js'
import { PathReconciler } from '../src/reconcile-path.js'
import { drive, entry, meta, publishingDeps } from './helpers/fake-drives.js'

const A = 'AAAAAAAAAAAAAAAA' // us

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/**
 * Our drive holds our version {A: 1} of big.bin (its blob: 2 MiB of blocks of its own), or of
 * a small file packed into a shared block after others' bytes (`at` > 0); the disk held it
 * (recorded); now it is deleted there, or a directory stands in its place.
 */
async function changedHere(disk: 'deleted' | 'dir', small = false): Promise<{ reconcile: () => Promise<string>; released: BlobId[]; blob: BlobId; index: IndexStore }> {
  const folder = await mkdtemp(join(tmpdir(), 'sa-release-'))
  const data = await mkdtemp(join(tmpdir(), 'sa-release-data-'))
  dirs.push(folder, data)
  const path = small ? 'themes/t/style.css' : 'uploads/big.bin'
  const ours = small ? { ...meta({ [A]: 1 }, 'file'), size: 1000, at: 3000 } : { ...meta({ [A]: 1 }, 'file'), size: 2 * 1024 * 1024 }
  const e = entry(path, ours)
  if (small) e.value.blob = { blockOffset: 7, blockLength: 1, byteOffset: 7 * 65536 + 3000, byteLength: 1000 }
  const blob = e.value.blob as BlobId
  const own = drive(A, { [toDriveKey(path)]: e }, true)
  Object.assign(own.drive, { version: 2, entries: async function* () {} })
  const index = new IndexStore(data, Buffer.alloc(32, 1))
  await index.ready()
  index.set(path, { kind: 'file', size: ours.size, mtimeMs: 1, ino: 1, mode: 0o644, hash: ours.hash, target: null, vv: { [A]: 1 } })
  if (disk === 'dir') await mkdir(join(folder, path), { recursive: true })
  const released: BlobId[] = []
  const reconciler = new PathReconciler(publishingDeps({ folder, index, drives: [own], own, puts: [], nextCounter: 5, released }))
  return { reconcile: () => reconciler.reconcile(path), released, blob, index }
}

// a 20 MiB file appended to five times took 158 MiB of data dir: every version's blocks stayed
describe('a local change over our own version', () => {
  it.each([['deleted here', 'deleted' as const], ['replaced by a directory', 'dir' as const]])('%s: the replaced version\'s blocks are released once the new entry is put', async (_name, disk) => {
    const t = await changedHere(disk)
    expect(await t.reconcile()).toBe('done')
    expect(t.released).toEqual([t.blob])
    await t.index.close()
  })

  // its shared block is freed once no entry names a file in it (OwnDriveWriter's sweeper);
  // before, a small file's old versions were never released
  it('a small file packed with others, deleted here: released too', async () => {
    const t = await changedHere('deleted', true)
    expect(await t.reconcile()).toBe('done')
    expect(t.released).toEqual([t.blob])
    await t.index.close()
  })
})
