import { describe, expect, it } from 'vitest'
import { toDriveKey } from '@sync-agent/shared'
import type { DriveEntry } from 'hyperdrive'
import type { EntryMeta } from '../src/entry-format.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'
import type { MemberDrive } from '../src/replication/drive-set.js'
import { mergeHints, type Hints } from '../src/sync-engine.js'
import { arrivingDrive } from './helpers/fake-drives.js'

const OWN = 'AAAAAAAAAAAAAAAA'
const PEER = 'BBBBBBBBBBBBBBBB'

function entry(path: string, author: string, counter: number, hashDigit: string): DriveEntry<EntryMeta> {
  return {
    seq: counter,
    key: toDriveKey(path),
    value: {
      executable: false,
      linkname: null,
      blob: { blockOffset: 0, blockLength: 1, byteOffset: 0, byteLength: 3 },
      metadata: { v: 1, vv: { [author]: counter }, ts: 1_000 + counter, kind: 'file', size: 3, mtime: 1, mode: 0o644, hash: hashDigit.repeat(64) }
    }
  } as unknown as DriveEntry<EntryMeta>
}

function drive(hex: string, author: string, isOwn: boolean, current: DriveEntry<EntryMeta> | null): MemberDrive {
  return { hex, author, isOwn, shortId: author.slice(0, 7), member: {} as MemberDrive['member'], drive: { entry: async () => current, core: { length: 0 } } as unknown as MemberDrive['drive'] }
}

function reconcilerWith(drives: MemberDrive[]): PathReconciler {
  return new PathReconciler({ drives: { all: () => drives } } as unknown as ReconcileDeps)
}

describe('PathReconciler.gather', () => {
  it('uses a diff hint for a peer drive (saves a lookup)', async () => {
    const peer = drive('b'.repeat(64), PEER, false, entry('f.txt', PEER, 2, '2'))
    const hints: Hints = new Map([[peer.hex, { entry: entry('f.txt', PEER, 1, '1'), seen: 1 }]])
    const versions = await reconcilerWith([peer]).gather('f.txt', hints)
    expect(versions.map((v) => v.hash?.[0])).toEqual(['1'])
  })

  // seed 1 of the fault suite: the start-up diff of our own drive (from an old checkpoint
  // after kill -9) hinted an entry we had since replaced by publishing a local edit; the
  // stale hint made the merge pick our older version and write it over the newer file
  it('never trusts a hint about our own drive: we publish without diffs, so it may be stale', async () => {
    const own = drive('a'.repeat(64), OWN, true, entry('f.txt', OWN, 5, '5'))
    const hints: Hints = new Map([[own.hex, { entry: entry('f.txt', OWN, 3, '3'), seen: 1 }]])
    const versions = await reconcilerWith([own]).gather('f.txt', hints)
    expect(versions.map((v) => [v.hash?.[0], v.vv[OWN]])).toEqual([['5', 5]])
  })

  function reconcilerApplied(drives: MemberDrive[], applied: number, indexUnserved = false): PathReconciler {
    return new PathReconciler({ drives: { all: () => drives }, appliedVersion: () => applied, indexUnserved: () => indexUnserved, log: { debug: () => undefined, warn: () => undefined } } as unknown as ReconcileDeps)
  }

  it('a path new here does not wait long for a drive still arriving: after a short wait it reads what we diffed of it', async () => {
    const timeouts: number[] = []
    const versions = await reconcilerApplied([arrivingDrive(PEER, 1_000_000, timeouts)], 10_000).gather('new.txt', null, true)
    expect(versions).toEqual([])
    expect(timeouts).toEqual([2_000])
  })

  // fault suite seed 967: a peer announced new entries and its link was cut before it sent
  // them; every reconcile on the node waited 15 s for them, and again on every retry
  it('a path synced before: a drive whose latest index does not come is read as we diffed it', async () => {
    const timeouts: number[] = []
    const versions = await reconcilerApplied([arrivingDrive(PEER, 1_000_000, timeouts, entry('f.txt', PEER, 7, '7'))], 10_000).gather('f.txt')
    expect(versions.map((v) => [v.hash?.[0], v.vv[PEER]])).toEqual([['7', 7]])
    expect(timeouts).toEqual([3_000])
  })

  it.each<[string, number, 'missing' | null]>([
    ['the drive is diffed up to its length (nothing newer to wait for)', 1_000_000, null],
    ['the diffed view lacks the block too', 10_000, 'missing']
  ])('otherwise a lookup that times out is an error: %s', async (_name, applied, asDiffed) => {
    const timeouts: number[] = []
    await expect(reconcilerApplied([arrivingDrive(PEER, 1_000_000, timeouts, asDiffed)], applied).gather('f.txt')).rejects.toThrow(/REQUEST_TIMEOUT/)
    expect(timeouts).toEqual([3_000])
  })

  /** A peer drive we have diffed nothing of, whose newest index block does not come. */
  const undiffedDrive = (timeouts: number[]): MemberDrive =>
    ({
      hex: 'd'.repeat(64),
      author: PEER,
      isOwn: false,
      shortId: 'DDDDDDD',
      member: {} as MemberDrive['member'],
      drive: {
        version: 40,
        core: {
          length: 40,
          has: async () => false,
          get: async (_index: number, opts: { timeout: number }) => {
            timeouts.push(opts.timeout)
            throw Object.assign(new Error('REQUEST_TIMEOUT: Request timed out'), { code: 'REQUEST_TIMEOUT' })
          }
        },
        checkout: () => {
          throw new Error('there is no diffed view of a drive diffed to 0')
        }
      }
    }) as unknown as MemberDrive

  it('a drive we applied nothing of, while its index may still come: a lookup that times out is an error (the path is retried)', async () => {
    const timeouts: number[] = []
    await expect(reconcilerApplied([undiffedDrive(timeouts)], 0).gather('f.txt')).rejects.toThrow(/REQUEST_TIMEOUT/)
    expect(timeouts).toEqual([3_000])
  })

  // a new member whose writer withholds its whole index: every path any peer changed waited
  // for it, failed, and was retried for as long as it lasted
  it('a drive we applied nothing of, once the engine gave up on its index: it holds nothing for the path, read without a wait', async () => {
    const timeouts: number[] = []
    expect(await reconcilerApplied([undiffedDrive(timeouts)], 0, true).gather('f.txt')).toEqual([])
    expect(timeouts).toEqual([])
  })
})

describe('mergeHints', () => {
  // fault suite seed 601: a path re-queued after its run (`again`) brought back the hints of
  // that run over the newer one a diff had added meanwhile; the stale entry was applied
  it('keeps, for each drive, the hint seen last, whatever order they are merged in', () => {
    const older = { entry: entry('f.txt', PEER, 1, '1'), seen: 1 }
    const newer = { entry: null, seen: 2 }
    const item: { hints: Hints | null } = { hints: null }
    mergeHints(item, new Map([['b'.repeat(64), newer]]))
    mergeHints(item, new Map([['b'.repeat(64), older], ['c'.repeat(64), older]]))
    expect(item.hints?.get('b'.repeat(64))).toBe(newer)
    expect(item.hints?.get('c'.repeat(64))).toBe(older)
    mergeHints(item, new Map([['c'.repeat(64), newer]]))
    expect(item.hints?.get('c'.repeat(64))).toBe(newer)
  })
})
