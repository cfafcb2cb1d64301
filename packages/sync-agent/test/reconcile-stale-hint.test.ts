import { createHash } from 'node:crypto'
import { lstat, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { toDriveKey } from '@sync-agent/shared'
import type { EntryMeta } from '../src/entry-format.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'
import type { MemberDrive } from '../src/replication/drive-set.js'
import type { Hints } from '../src/sync-engine.js'
import { drive, entry, publishingDeps } from './helpers/fake-drives.js'
import { useFolderAndIndex } from './helpers/temp-dirs.js'

const B = 'BBBBBBBBBBBBBBBB' // a peer
const C = 'CCCCCCCCCCCCCCCC' // us

const folderAndIndex = useFolderAndIndex('sa-stalehint-')

function fileMeta(vv: Record<string, number>, content: Buffer): EntryMeta {
  return { v: 1, vv, ts: 1_000, kind: 'file', size: content.length, mtime: 1_000, mode: 0o644, hash: createHash('sha256').update(content).digest('hex') }
}

// fault suite, rebuild phase (session 14): after a kill -9 of a node catching up, a reconcile
// read the peer's drive at its latest length and put its newest version of a file on the disk;
// then a ranged read's hint (that drive's entry as of the shorter length it had read) reached
// the next reconcile of the path, whose winner was then an older version the newest one had
// replaced. Its bytes were nowhere any more: the path waited 2 × 30 s for them.
describe('a hint older than the version on disk', () => {
  it('is read again live: the newer version on disk stays', async () => {
    const { folder, index } = await folderAndIndex()
    const older = Buffer.from('older version\n')
    const newer = Buffer.from('newer version\n')
    const newest = fileMeta({ [B]: 5 }, newer)
    const theirs = drive(B, { [toDriveKey('f.txt')]: entry('f.txt', newest) })
    let blobsAsked = 0
    Object.assign(theirs.drive, { getBlobs: async () => (blobsAsked++, { core: { has: async () => false, get: async () => older } }) })
    const own = drive(C, {}, true)
    const drives: MemberDrive[] = [theirs, own]
    // the disk holds the newest version, recorded
    await writeFile(join(folder, 'f.txt'), newer)
    const st = await lstat(join(folder, 'f.txt'))
    index.set('f.txt', { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash: newest.hash, target: null, vv: newest.vv })
    const deps = { ...publishingDeps({ folder, index, drives, own, puts: [], nextCounter: 1 }), drives: { all: () => drives, own, get: (hex: string) => drives.find((d) => d.hex === hex) } }
    const reconciler = new PathReconciler(deps as unknown as ReconcileDeps)
    const hints: Hints = new Map([[theirs.hex, { entry: entry('f.txt', fileMeta({ [B]: 3 }, older)), seen: 1 }]])
    expect(await reconciler.reconcile('f.txt', hints)).toBe('done')
    expect(await readFile(join(folder, 'f.txt'))).toEqual(newer)
    expect(index.get('f.txt')?.vv).toEqual({ [B]: 5 })
    expect(blobsAsked).toBe(0)
  })
})
