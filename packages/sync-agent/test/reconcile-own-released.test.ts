import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isSyncError, toDriveKey } from '@sync-agent/shared'
import type { DriveEntry } from 'hyperdrive'
import type { EntryMeta } from '../src/entry-format.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'
import type { MemberDrive } from '../src/replication/drive-set.js'
import { drive, entry, publishingDeps } from './helpers/fake-drives.js'
import { useFolderAndIndex } from './helpers/temp-dirs.js'

const C = 'CCCCCCCCCCCCCCCC' // us
const CONTENT = Buffer.from('abc')
const COPY = 'style.sync-conflict-20261202-173637-CCCCCCC.css'

const folderAndIndex = useFolderAndIndex('sa-own-released-')

/**
 * Our drive holds a conflict copy (3 bytes, one shared block) that is not on our disk yet; the
 * block is not held here. While the peers are asked for it (no peer has it), our entry is
 * withdrawn (`withdrawn`) or not (a damaged store: the entry still names the block). With
 * `'during read'` the peers are asked first with the entry still there, and it is withdrawn while
 * the first Hypercore request for the block waits (which then goes unanswered).
 */
async function setUp(withdrawn: boolean | 'during read') {
  const { folder, index } = await folderAndIndex()
  const key = toDriveKey(COPY)
  const meta: EntryMeta = { v: 1, vv: { [C]: 3 }, ts: 1_000, kind: 'file', size: 3, mtime: 1_000, mode: 0o644, hash: createHash('sha256').update(CONTENT).digest('hex'), copy: true }
  const entries: Record<string, DriveEntry<EntryMeta>> = { [key]: entry(COPY, meta) }
  const own = drive(C, entries, true)
  const asked = { gets: 0 }
  const withdraw = () => (entries[key] = entry(COPY, { ...meta, kind: 'deleted', size: 0, hash: null, withdrawn: true, copy: undefined }))
  const core = {
    has: async () => false,
    get: async () => {
      asked.gets++
      if (withdrawn !== 'during read' || asked.gets > 1) return CONTENT
      withdraw()
      throw Object.assign(new Error('Request timed out'), { code: 'REQUEST_TIMEOUT' })
    },
    peers: []
  }
  Object.assign(own.drive, { version: 4, entries: async function* () {}, getBlobs: async () => ({ core }) })
  const marked: string[] = []
  const drives: MemberDrive[] = [own]
  const deps = {
    ...publishingDeps({ folder, index, drives, own, puts: [], nextCounter: 5 }),
    drives: { all: () => drives, own, get: (hex: string) => drives.find((d) => d.hex === hex) },
    peerConnected: () => true,
    onNewPath: (p: string) => void marked.push(p),
    // no peer has it in its folder; meanwhile the family path's reconcile withdraws the copy
    content: {
      open: async () => {
        if (withdrawn === true) withdraw()
        return null
      }
    }
  } as unknown as ReconcileDeps
  return { reconciler: new PathReconciler(deps), folder, asked, marked }
}

// fault suite seed 3005: the copy was withdrawn and its block swept while its file was being
// placed; the read of our own released block waited the whole 30 s for a peer to serve it
describe('our own version, released while this run read it', () => {
  it('is not waited for: the path runs again with our newer entry', async () => {
    const t = await setUp(true)
    const err = await t.reconciler.reconcile(COPY).then(() => null, (e: unknown) => e)
    expect(isSyncError(err, 'E_SUPERSEDED')).toBe(true)
    expect(t.marked).toEqual([COPY])
    expect(t.asked.gets).toBe(0)
  })

  // fault suite seed 4904: withdrawn by its family's reconcile after this run's first look, its
  // block swept while the Hypercore request waited; every retry waited again until the 30 s
  it('released while a request for its block waits: not asked again, the path runs again', async () => {
    const t = await setUp('during read')
    const err = await t.reconciler.reconcile(COPY).then(() => null, (e: unknown) => e)
    expect(isSyncError(err, 'E_SUPERSEDED')).toBe(true)
    expect(t.marked).toEqual([COPY])
    expect(t.asked.gets).toBe(1)
  })

  it('one our entry still names (a damaged store) is read from Hypercore as before', async () => {
    const t = await setUp(false)
    expect(await t.reconciler.reconcile(COPY)).toBe('done')
    expect(t.asked.gets).toBe(1)
    expect(await readFile(join(t.folder, COPY))).toEqual(CONTENT)
  })
})
