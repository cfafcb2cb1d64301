import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { toDriveKey } from '@sync-agent/shared'
import type { EntryMeta } from '../src/entry-format.js'
import { IndexStore } from '../src/index-store.js'
import { PathReconciler } from '../src/reconcile-path.js'
import { drive, entry, meta, publishingDeps } from './helpers/fake-drives.js'

const B = 'BBBBBBBBBBBBBBBB' // appended concurrently
const C = 'CCCCCCCCCCCCCCCC' // us, deleting

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

// fault suite seed 400: n0 deleted a file while n1's concurrent append had already reached
// n0's drives; n0 published its delete and stopped there, so the append (which wins: modify
// beats delete) was on every disk but n0's, all of them idle and inSync
describe('a local change published beside another drive\'s version', () => {
  it('asks for one more merge (the other version may win)', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'sa-again-'))
    const data = await mkdtemp(join(tmpdir(), 'sa-again-data-'))
    dirs.push(folder, data)
    const drives = [drive(B, { [toDriveKey('img2.png')]: entry('img2.png', meta({ [B]: 2 }, 'file')) }), drive(C, {}, true)]
    const index = new IndexStore(data, Buffer.alloc(32, 1))
    await index.ready()
    // the index says the disk held B's first version; the file is gone (deleted here)
    index.set('img2.png', { kind: 'file', size: 3, mtimeMs: 1, ino: 1, mode: 0o644, hash: 'b'.repeat(64), target: null, vv: { [B]: 1 } })
    const puts: EntryMeta[] = []
    const deps = publishingDeps({ folder, index, drives, own: drives[1]!, puts, nextCounter: 4 })
    expect(await new PathReconciler(deps).reconcile('img2.png')).toBe('again')
    expect(puts).toMatchObject([{ kind: 'deleted', vv: { [B]: 1, [C]: 4 } }])
    await index.close()
  })
})
