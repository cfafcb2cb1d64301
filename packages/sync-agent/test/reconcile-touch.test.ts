import { createHash } from 'node:crypto'
import { mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { toDriveKey } from '@sync-agent/shared'
import type { EntryMeta } from '../src/entry-format.js'
import type { BlobId } from 'hyperblobs'
import { IndexStore } from '../src/index-store.js'
import { PathReconciler } from '../src/reconcile-path.js'
import { drive, entry, meta, publishingDeps } from './helpers/fake-drives.js'

const A = 'AAAAAAAAAAAAAAAA' // us
const B = 'BBBBBBBBBBBBBBBB' // a peer
const BYTES = 'abc'
const HASH = createHash('sha256').update(BYTES).digest('hex')

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/**
 * Our disk holds the bytes of our version {A: 1} of c.php, under a new mtime (touched); the
 * peer's `theirs` is what the folder holds for the path.
 */
async function touched(theirs: EntryMeta): Promise<{ reconcile: () => Promise<string>; index: IndexStore; puts: EntryMeta[]; released: unknown[]; abs: string }> {
  const folder = await mkdtemp(join(tmpdir(), 'sa-touch-'))
  const data = await mkdtemp(join(tmpdir(), 'sa-touch-data-'))
  dirs.push(folder, data)
  const key = toDriveKey('c.php')
  const ours = { ...meta({ [A]: 1 }, 'file'), hash: HASH }
  const own = drive(A, { [key]: entry('c.php', ours) }, true)
  Object.assign(own.drive, { version: 2, entries: async function* () {} })
  const peer = drive(B, { [key]: entry('c.php', theirs) })
  const abs = join(folder, 'c.php')
  await writeFile(abs, BYTES)
  await utimes(abs, 1_000, 1_000)
  const before = await stat(abs)
  const index = new IndexStore(data, Buffer.alloc(32, 1))
  await index.ready()
  index.set('c.php', { kind: 'file', size: before.size, mtimeMs: before.mtimeMs, ino: before.ino, mode: before.mode & 0o777, hash: HASH, target: null, vv: { [A]: 1 } })
  // a write that failed on a full disk sets the mtime and changes no byte
  await utimes(abs, 2_000, 2_000)
  const puts: EntryMeta[] = []
  const released: BlobId[] = []
  const reconciler = new PathReconciler(publishingDeps({ folder, index, drives: [own, peer], own, puts, nextCounter: 5, released }))
  return { reconcile: () => reconciler.reconcile('c.php'), index, puts, released, abs }
}

// fault suite seed 10509: a failed append on a full disk touched a file whose bytes a peer had
// since rewritten (its version not applied here yet); the touch was published as a new version,
// concurrent with the rewrite and the deletes after it, and the old bytes came back everywhere
describe('a touch of bytes the folder has moved past', () => {
  it('is not published; the folder\'s version (a delete made after seeing ours) is applied', async () => {
    const t = await touched({ ...meta({ [A]: 1, [B]: 2 }, 'deleted'), was: HASH })
    expect(await t.reconcile()).toBe('again')
    expect(t.puts).toEqual([])
    expect(t.index.get('c.php')?.vv).toEqual({ [A]: 1 })
    expect(await t.reconcile()).toBe('done')
    await expect(stat(t.abs)).rejects.toThrow(/ENOENT/)
    expect(t.puts).toEqual([])
    await t.index.close()
  })

  it('a touch of the version the folder holds is still published (so mtimes agree: seed 707)', async () => {
    const t = await touched({ ...meta({ [A]: 1 }, 'file'), hash: HASH })
    await t.reconcile()
    expect(t.puts).toMatchObject([{ kind: 'file', hash: HASH, was: HASH, mtime: 2_000_000 }])
    // a small file: its bytes stored again (its shared block may be swept once the old entry
    // is replaced), and the old blob released
    expect(t.released).toEqual([expect.objectContaining({ blockOffset: 0, byteLength: 3 })])
    await t.index.close()
  })
})
