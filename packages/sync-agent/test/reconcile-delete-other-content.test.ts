import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { toDriveKey } from '@sync-agent/shared'
import type { EntryMeta } from '../src/entry-format.js'
import { IndexStore } from '../src/index-store.js'
import { PathReconciler } from '../src/reconcile-path.js'
import { drive, entry, meta, publishingDeps } from './helpers/fake-drives.js'

const A = 'AAAAAAAAAAAAAAAA' // wrote the winner, then deleted it
const C = 'CCCCCCCCCCCCCCCC' // us: our version lost (kept as our conflict copy), then the file was deleted here

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/** Reconciles img2.png, deleted from our disk while the index says it held `held`; returns what we published. */
async function deletedHere(held: string, othersDeleted: string): Promise<EntryMeta[]> {
  const folder = await mkdtemp(join(tmpdir(), 'sa-delother-'))
  const data = await mkdtemp(join(tmpdir(), 'sa-delother-data-'))
  dirs.push(folder, data)
  const key = toDriveKey('img2.png')
  const drives = [
    // published after ours was withdrawn: the later of the two concurrent deletes wins
    drive(A, { [key]: entry('img2.png', { ...meta({ [A]: 9 }, 'deleted'), ts: 5_000, was: othersDeleted }) }),
    drive(C, { [key]: entry('img2.png', { ...meta({ [A]: 2, [C]: 5 }, 'deleted'), withdrawn: true }) }, true)
  ]
  // our drive holds entries (so copies are looked for) but no conflict copy of this file
  Object.assign(drives[1]!.drive, { version: 3, entries: async function* () {} })
  const index = new IndexStore(data, Buffer.alloc(32, 1))
  await index.ready()
  index.set('img2.png', { kind: 'file', size: 3, mtimeMs: 1, ino: 1, mode: 0o644, hash: held, target: null, vv: { [A]: 2, [C]: 5 } })
  const puts: EntryMeta[] = []
  const deps = publishingDeps({ folder, index, drives, own: drives[1]!, puts, nextCounter: 6 })
  await new PathReconciler(deps).reconcile('img2.png')
  expect(index.get('img2.png')).toBeUndefined()
  await index.close()
  return puts
}

// fault suite seed 1159: our version of a file lost a conflict (kept as our conflict copy),
// the winner had not reached our disk yet when the file was deleted here, and the others had
// deleted the winner meanwhile. The folder agreed the path was gone, so nothing was
// published, and nothing named the content deleted here: its conflict copy stayed for good
describe('a local delete where the folder already deleted the path', () => {
  it('is published when it deleted other content than the others did, naming that content', async () => {
    const ours = 'e'.repeat(64)
    const puts = await deletedHere(ours, 'b'.repeat(64))
    expect(puts).toMatchObject([{ kind: 'deleted', was: ours }])
    expect(puts[0]?.withdrawn).toBeUndefined()
  })

  it('is not published when it deleted the very content the others deleted (the folder agrees)', async () => {
    const same = 'b'.repeat(64)
    expect(await deletedHere(same, same)).toEqual([])
  })
})
