import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { FolderWriter } from '../src/folder-writer.js'
import { IndexStore, type LocalRecord } from '../src/index-store.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

async function setup(): Promise<{ folder: string; index: IndexStore; reconciler: PathReconciler }> {
  const folder = await mkdtemp(join(tmpdir(), 'sa-withdrawn-'))
  const data = await mkdtemp(join(tmpdir(), 'sa-withdrawn-data-'))
  dirs.push(folder, data)
  const index = new IndexStore(data, Buffer.alloc(32, 1))
  await index.ready()
  // no member drive holds any entry for the path
  const deps = {
    writer: new FolderWriter(folder),
    index,
    drives: { all: () => [] },
    rules: () => ({ isIgnored: () => false }),
    log: { warn: () => undefined, info: () => undefined, debug: () => undefined, isLevelEnabled: () => false }
  } as unknown as ReconcileDeps
  return { folder, index, reconciler: new PathReconciler(deps) }
}

async function recordOf(abs: string): Promise<LocalRecord> {
  const st = await stat(abs)
  return { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash: 'f'.repeat(64), target: null, vv: { AAAAAAAAAAAAAAAA: 1 } }
}

describe('a path whose versions were all withdrawn', () => {
  // seed 1 of the fault suite: n0 withdrew its tombstone in favour of n2's entry, which n2
  // had itself withdrawn in favour of n0's earlier version; no drive held an entry any more,
  // n0 kept the file it had applied while n1 and n2 had deleted it, and all reported inSync
  it('is removed from the disk when the disk holds what we applied', async () => {
    const { folder, index, reconciler } = await setup()
    await writeFile(join(folder, 'shot.png'), 'applied earlier')
    index.set('shot.png', await recordOf(join(folder, 'shot.png')))
    expect(await reconciler.reconcile('shot.png')).toBe('done')
    await expect(stat(join(folder, 'shot.png'))).rejects.toThrow(/ENOENT/)
    expect(index.get('shot.png')).toBeUndefined()
    await index.close()
  })

  it('an empty directory goes too; one with content stays until its children are gone', async () => {
    const { folder, index, reconciler } = await setup()
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(folder, 'd/e'), { recursive: true })
    const dirRecord = async (p: string): Promise<LocalRecord> => ({ ...(await recordOf(join(folder, p))), kind: 'dir', size: 0, hash: null })
    index.set('d', await dirRecord('d'))
    index.set('d/e', await dirRecord('d/e'))
    expect(await reconciler.reconcile('d')).toBe('dir-not-empty')
    expect(await reconciler.reconcile('d/e')).toBe('done')
    expect(await reconciler.reconcile('d')).toBe('done')
    await expect(stat(join(folder, 'd'))).rejects.toThrow(/ENOENT/)
    await index.close()
  })
})
