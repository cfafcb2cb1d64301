import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isSyncError, toDriveKey } from '@sync-agent/shared'
import type { EntryMeta } from '../src/entry-format.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'
import type { MemberDrive } from '../src/replication/drive-set.js'
import { collectingPuts, drive, entry, publishingDeps } from './helpers/fake-drives.js'
import { useFolderAndIndex } from './helpers/temp-dirs.js'
import { until } from './helpers/until.js'

const B = 'BBBBBBBBBBBBBBBB' // a peer
const C = 'CCCCCCCCCCCCCCCC' // us
const CONTENT = Buffer.from('abc')

const folderAndIndex = useFolderAndIndex('sa-nopeer-')

/**
 * A peer's drive holding f.txt (3 bytes) whose one blob block is held here or not, and a
 * reconciler that sees a peer connected or not. No content source: only Hypercore.
 */
async function setUp({ held, peer, never = false }: { held: boolean; peer: boolean; never?: boolean }) {
  const { folder, index } = await folderAndIndex()
  const m: EntryMeta = { v: 1, vv: { [B]: 1 }, ts: 1_000, kind: 'file', size: 3, mtime: 1_000, mode: 0o644, hash: createHash('sha256').update(CONTENT).digest('hex') }
  const theirs = drive(B, { [toDriveKey('f.txt')]: entry('f.txt', m) })
  const asked = { has: [] as Array<[number, number]>, gets: 0 }
  const core = {
    has: async (start: number, end: number) => (asked.has.push([start, end]), held),
    // `never`: no peer has the block (Hypercore would wait FETCH_TIMEOUT_MS)
    get: () => (asked.gets++, never ? new Promise<Buffer>(() => undefined) : Promise.resolve(CONTENT))
  }
  Object.assign(theirs.drive, { getBlobs: async () => ({ core }) })
  const own = drive(C, {}, true)
  const drives: MemberDrive[] = [theirs, own]
  const puts: EntryMeta[] = []
  const deps = {
    ...publishingDeps({ folder, index, drives, own, puts, nextCounter: 1 }),
    drives: { all: () => drives, own, get: (hex: string) => drives.find((d) => d.hex === hex) },
    own: { ...collectingPuts(own, puts), nextCounter: () => 1 },
    peerConnected: () => peer
  } as unknown as ReconcileDeps
  return { reconciler: new PathReconciler(deps), folder, asked }
}

// fault suite, rebuild phase (session 14): after a kill -9 of a node catching up, the paths it
// reconciled before its peers were back waited 30 s each on Hypercore for blocks no peer had
// (the versions' author was the node's own wiped drive; the peers had the files, not the blocks)
describe('a version whose bytes must come from Hypercore', () => {
  it('waits for a peer when none is connected and its blocks are not here', async () => {
    const { reconciler, folder, asked } = await setUp({ held: false, peer: false })
    const err = await reconciler.reconcile('f.txt').then(
      () => null,
      (e: unknown) => e
    )
    expect(isSyncError(err) && err.code).toBe('E_NO_PEER')
    expect(asked.has).toEqual([[0, 1]])
    expect(asked.gets).toBe(0)
    await expect(stat(join(folder, 'f.txt'))).rejects.toThrow(/ENOENT/)
  })

  it('is read from the blocks held here with no peer connected', async () => {
    const { reconciler, folder, asked } = await setUp({ held: true, peer: false })
    expect(await reconciler.reconcile('f.txt')).toBe('done')
    expect(asked.gets).toBe(1)
    expect(await readFile(join(folder, 'f.txt'))).toEqual(CONTENT)
  })

  it('is asked of Hypercore while a peer is connected', async () => {
    const { reconciler, folder, asked } = await setUp({ held: false, peer: true })
    expect(await reconciler.reconcile('f.txt')).toBe('done')
    expect(asked.has).toEqual([])
    expect(asked.gets).toBe(1)
    expect(await readFile(join(folder, 'f.txt'))).toEqual(CONTENT)
  })

  it('stops waiting for blocks when a newer entry for the path arrives (E_SUPERSEDED)', async () => {
    const { reconciler, folder, asked } = await setUp({ held: false, peer: true, never: true })
    const newer = new AbortController()
    const running = reconciler.reconcile('f.txt', null, newer.signal).then(
      () => null,
      (e: unknown) => e
    )
    await until(() => asked.gets === 1, 'the block is asked of Hypercore')
    newer.abort()
    const err = await running
    expect(isSyncError(err) && err.code).toBe('E_SUPERSEDED')
    await expect(stat(join(folder, 'f.txt'))).rejects.toThrow(/ENOENT/)
  })
})
