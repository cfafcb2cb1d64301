import { Writable } from 'node:stream'
import { describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import Corestore from 'corestore'
import Hyperdrive from 'hyperdrive'
import { fromDriveKey, SyncError } from '@sync-agent/shared'
import type { IndexStore } from '../src/index-store.js'
import type { Outcome, PathReconciler } from '../src/reconcile-path.js'
import type { DriveSet, MemberDrive } from '../src/replication/drive-set.js'
import { SyncEngine, type Hints } from '../src/sync-engine.js'
import { PriorityClasses } from '../src/priority/priority-classes.js'
import type { SnapshotEntry, SnapshotEntryList } from '../src/replication/index-snapshot.js'
import { meta } from './helpers/fake-drives.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('engine-listing-')

/** the engine's bound on queued paths (MAX_QUEUED in sync-engine.ts) */
const MAX_QUEUED = 10_000
const WORKERS = 64
const THEMES = 12_000
const OTHERS = 300

/** A member drive (a real Hyperdrive) holding `THEMES` tombstones under themes/ and a few root files. */
async function memberDrive(dir: string): Promise<{ store: Corestore; drive: Hyperdrive; member: MemberDrive; other: MemberDrive }> {
  const store = new Corestore(dir)
  const drive = new Hyperdrive(store.namespace('member'))
  await drive.ready()
  const otherDrive = new Hyperdrive(store.namespace('other'))
  await otherDrive.ready()
  const batch = drive.batch()
  for (let i = 0; i < THEMES; i++) await batch.putEntry(`/themes/t/${String(i).padStart(6, '0')}.php`, { metadata: meta({ m: i + 1 }, 'deleted') })
  for (let i = 0; i < OTHERS; i++) await batch.putEntry(`/other/${i}.txt`, { metadata: meta({ m: i + 1 }, 'deleted') })
  await batch.flush()
  const asMember = (d: Hyperdrive, author: string) => ({ hex: d.key.toString('hex'), author, isOwn: false, shortId: author, member: {} as MemberDrive['member'], drive: d }) as unknown as MemberDrive
  return { store, drive, member: asMember(drive, 'm'), other: asMember(otherDrive, 'o') }
}

/** Log records (debug and up) of the engine, as objects. */
/** A snapshot's entry list over entries already decoded (as the fetcher's, without blocks). */
function listOf(entries: SnapshotEntry[]): SnapshotEntryList {
  const taken = new Set<number>()
  return {
    length: entries.length,
    keyAt: (i) => (entries[i] as SnapshotEntry).key,
    take: (i) => {
      if (taken.has(i)) throw new RangeError(`snapshot entry ${i} was taken`)
      taken.add(i)
      return entries[i] as SnapshotEntry
    }
  }
}

function capturedLogger(): { log: pino.Logger; records: Array<{ msg: string; [k: string]: unknown }> } {
  const records: Array<{ msg: string; [k: string]: unknown }> = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as { msg: string })
      done()
    }
  })
  return { log: pino({ level: 'debug' }, sink), records }
}

// a fresh drive's ready classes were listed with no bound: every path of `themes/` was queued at
// once (and kept in a map until the full diff), so a compromised read-write peer whose drive
// holds millions of entries there made a fresh node's memory grow without limit
describe('SyncEngine, the ranged listing of a fresh drive', () => {
  it('stops marking while the queue is full, resumes as the workers drain it, and the full diff marks only what it did not list', async () => {
    const { store, drive, member, other } = await memberDrive(tempDir())
    const runs = new Map<string, number>()
    const seqs = new Map<string, number[]>()
    let gate: (() => void) | null = null
    const gateOpen = new Promise<void>((resolve) => (gate = resolve))
    let open = false
    const reconciler = {
      reconcile: async (path: string, hints: Hints | null): Promise<Outcome> => {
        runs.set(path, (runs.get(path) ?? 0) + 1)
        const seq = hints?.get(member.hex)?.entry?.seq
        if (seq !== undefined) seqs.set(path, [...(seqs.get(path) ?? []), seq])
        if (!open && path.startsWith('themes/t/')) await gateOpen
        return 'done'
      }
    } as unknown as PathReconciler
    const index = { entries: () => [][Symbol.iterator](), checkpoint: () => 0, setCheckpoint: () => undefined, get: () => undefined } as unknown as IndexStore
    const drives = { all: () => [member, other], get: (hex: string) => [member, other].find((d) => d.hex === hex), keepFullCopy: () => undefined, followIndex: () => undefined } as unknown as DriveSet
    const { log, records } = capturedLogger()
    const engine = new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, log)
    engine.ready()
    try {
      let peak = 0
      const sampler = setInterval(() => (peak = Math.max(peak, engine.pendingCount)), 5)
      engine.onDriveAppend(member)
      // the workers hold 64 paths and never finish: the listing fills the queue and must stop
      // there (without the bound it reads all 12,000 and logs that it read them)
      const seen = await vi.waitFor(() => {
        const r = records.find((x) => x.msg === 'listing paused: the queue is full' || x.msg === 'read the index of the classes needed for ready')
        if (!r) throw new Error('the listing neither paused nor ended')
        return r
      }, { timeout: 30_000, interval: 20 })
      peak = Math.max(peak, engine.pendingCount)
      clearInterval(sampler)
      expect(seen.msg).toBe('listing paused: the queue is full')
      expect(peak).toBeLessThanOrEqual(MAX_QUEUED + WORKERS)
      // another drive's change still gets in and is applied (the full queue is not its doing)
      await other.drive.putEntry('/themes/good/style.css', { metadata: meta({ o: 1 }, 'deleted') })
      engine.onDriveAppend(other)
      await vi.waitFor(() => expect(runs.get('themes/good/style.css'), 'the other drive\'s path is applied').toBe(1), { timeout: 10_000, interval: 20 })
      // while it waits, the drive changes: a listed path is written again, a new one appears
      await drive.putEntry('/themes/t/000005.php', { metadata: meta({ m: 100_000 }, 'deleted') })
      await drive.putEntry('/themes/t/new.php', { metadata: meta({ m: 100_001 }, 'deleted') })
      open = true
      gate!()
      engine.onDriveAppend(member)
      await vi.waitFor(() => expect(engine.isIdle && records.some((r) => r.msg === 'drive diffed'), 'the engine worked through the drive').toBe(true), { timeout: 60_000, interval: 50 })
      // every path reconciled; a path unchanged since the listing exactly once (the full diff
      // skipped the listed ones; the two written later may be marked by both diffs)
      const expected: string[] = []
      for await (const e of drive.list('/')) expected.push(fromDriveKey(e.key))
      expect([...runs.keys()].sort()).toEqual([...expected, 'themes/good/style.css'].sort())
      const twice = [...runs].filter(([p, n]) => n > 1 && p !== 'themes/t/000005.php' && p !== 'themes/t/new.php')
      expect(twice).toEqual([])
      // the rewritten path was reconciled with its latest entry last
      const latest = (await drive.entry('/themes/t/000005.php'))!.seq
      expect(seqs.get('themes/t/000005.php')?.at(-1)).toBe(latest)
    } finally {
      open = true
      gate!()
      await engine.close()
      await drive.close()
      await other.drive.close()
      await store.close()
    }
  }, 120_000)
})

// fault suite, rebuild phase (session 14): a fresh node read a drive as a snapshot, marked its
// ready classes and waited (up to 60 s) for them to be applied before the rest of that drive,
// and the entries appended to it since, were marked. One theme file waited for bytes nobody
// held any more: its author had rewritten it, and that newer entry was in the part that waited
describe('SyncEngine, a fresh drive read as a snapshot', () => {
  it('does not hold the rest of the drive back while its ready classes only wait for bytes: a newer entry ends the wait', async () => {
    const store = new Corestore(tempDir())
    const drive = new Hyperdrive(store.namespace('member'))
    await drive.ready()
    const batch = drive.batch()
    for (let i = 0; i < 280; i++) await batch.putEntry(`/themes/t/${String(i).padStart(4, '0')}.php`, { metadata: meta({ m: i + 1 }, 'deleted') })
    for (let i = 0; i < 20; i++) await batch.putEntry(`/other/${i}.txt`, { metadata: meta({ m: 1000 + i }, 'deleted') })
    await batch.flush()
    // as a fresh node sees it: the index not here yet, so the engine asks for a snapshot
    const fresh = new Proxy(drive, {
      get(target, key) {
        if (key === 'core') return new Proxy(target.core, { get: (c, k) => (k === 'contiguousLength' ? 0 : Reflect.get(c, k)) })
        const value: unknown = Reflect.get(target, key)
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      }
    })
    const member = { hex: drive.key.toString('hex'), author: 'm', isOwn: false, shortId: 'm', member: {} as MemberDrive['member'], drive: fresh } as unknown as MemberDrive
    const snapshotLength = drive.version
    const entries: Array<{ seq: number; key: string; value: Buffer }> = []
    for await (const e of drive.list<Buffer>('/', { valueEncoding: 'binary' } as never)) entries.push(e as unknown as { seq: number; key: string; value: Buffer })
    const STUCK = 'themes/t/0007.php'
    const cleanupsHere: Array<() => void> = []
    const appliedSeqs: number[] = []
    const reconciler = {
      reconcile: async (path: string, hints: Hints | null, signal: AbortSignal): Promise<Outcome> => {
        const seq = hints?.get(member.hex)?.entry?.seq ?? -1
        if (path !== STUCK) return 'done'
        if (seq >= snapshotLength) {
          appliedSeqs.push(seq)
          return 'done'
        }
        // the snapshot's version: its bytes never come; only a newer entry ends the wait
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
        throw new SyncError('E_SUPERSEDED', `a newer entry for ${path} arrived while its bytes were awaited`)
      }
    } as unknown as PathReconciler
    const index = { entries: () => [][Symbol.iterator](), checkpoint: () => 0, setCheckpoint: () => undefined, get: () => undefined } as unknown as IndexStore
    const drives = { all: () => [member], get: (hex: string) => (hex === member.hex ? member : undefined), keepFullCopy: () => undefined, followIndex: () => undefined } as unknown as DriveSet
    const { log, records } = capturedLogger()
    const engine = new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, log)
    let snapshots = 0
    engine.indexSnapshot = async () => (snapshots++, { entries: listOf(entries.splice(0)), stored: true })
    engine.ready()
    try {
      engine.onDriveAppend(member)
      await vi.waitFor(() => expect(records.some((r) => r.msg.startsWith('read the index as a verified snapshot'))).toBe(true), { timeout: 10_000, interval: 20 })
      expect(snapshots).toBe(1)
      // files asked for on demand keep settling meanwhile: they are not progress of the ready
      // classes (counted as such, they kept the wait going to its 60 s bound)
      let onDemand = 0
      const asking = setInterval(() => engine.mark(`uploads/2026/11/asked-${onDemand++}.jpg`, 0, null, true), 200)
      cleanupsHere.push(() => clearInterval(asking))
      // the author rewrites the file meanwhile
      await drive.putEntry(`/${STUCK}`, { metadata: meta({ m: 5000 }, 'deleted') })
      engine.onDriveAppend(member)
      // within the stall bound and a diff, not after the 60 s the ready classes could wait
      await vi.waitFor(() => expect(appliedSeqs).toEqual([snapshotLength]), { timeout: 15_000, interval: 50 })
      expect(onDemand).toBeGreaterThan(5)
    } finally {
      for (const c of cleanupsHere) c()
      await engine.close()
      await drive.close()
      await store.close()
    }
  }, 60_000)
})
