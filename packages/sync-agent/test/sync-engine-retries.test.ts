import { afterEach, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import type { IndexStore } from '../src/index-store.js'
import type { Outcome, PathReconciler } from '../src/reconcile-path.js'
import type { DriveSet, MemberDrive } from '../src/replication/drive-set.js'
import { NO_PEER_RETRY_MS, SyncEngine } from '../src/sync-engine.js'
import { SyncError } from '@sync-agent/shared'
import { PriorityClasses } from '../src/priority/priority-classes.js'
import { engineWith } from './helpers/engine.js'
import { until } from './helpers/until.js'
import type { Supersedable } from '../src/supersede-signal.js'

afterEach(() => {
  vi.useRealTimers()
})

// fault suite seed 200: a retry re-marked its path with a fresh item, so `attempts` went back
// to 0 on every retry: a directory that stayed non-empty was tried every ~100 ms forever (the
// agent never became idle, never inSync) and failing paths never backed off beyond 1 s
describe('SyncEngine retries', () => {
  it('a directory that stays non-empty is tried a bounded number of times, then left', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith(() => 'dir-not-empty')
    engine.mark('docs/d0')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(runs.get('docs/d0')).toBe(6)
    expect(engine.isIdle).toBe(true)
  })

  // fault suite seed 39002: eight looks up to 12.8 s apart kept the cluster from inSync for 25 s
  it('leaves such a directory within 2.5 s, so it holds up inSync no longer', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith(() => 'dir-not-empty')
    engine.mark('docs/d0')
    await vi.advanceTimersByTimeAsync(2_400)
    expect(engine.isIdle).toBe(false)
    await vi.advanceTimersByTimeAsync(200)
    expect(runs.get('docs/d0')).toBe(6)
    expect(engine.isIdle).toBe(true)
  })

  it('a directory left non-empty is tried again when a path inside it settles', async () => {
    vi.useFakeTimers()
    let childGone = false
    const { engine, runs } = engineWith((path) => (path === 'docs/d0' ? (childGone ? 'done' : 'dir-not-empty') : 'done'))
    engine.mark('docs/d0')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(runs.get('docs/d0')).toBe(6)
    childGone = true
    engine.mark('docs/d0/a/last.txt')
    await vi.advanceTimersByTimeAsync(1_000)
    expect(runs.get('docs/d0')).toBe(7)
    expect(engine.isIdle).toBe(true)
  })

  it('the backoff of a failing path grows', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith(() => Object.assign(new Error('EIO'), { code: 'EIO' }))
    engine.mark('f.txt')
    await vi.advanceTimersByTimeAsync(60_000)
    // 1 s, 2 s, 4 s, 8 s, 16 s, 30 s … : 6 runs in the first minute, not 60
    expect(runs.get('f.txt')).toBeLessThanOrEqual(7)
    await engine.close()
  })
})

// fault suite, rebuild phase: a path whose bytes no connected peer can give waits for a peer
describe('SyncEngine, a path waiting for a peer (E_NO_PEER)', () => {
  const noPeer = () => new SyncError('E_NO_PEER', 'no peer is connected to fetch f.txt from')

  it('is tried again every NO_PEER_RETRY_MS, without a growing backoff, and is not an error', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith(noPeer)
    engine.mark('f.txt')
    await vi.advanceTimersByTimeAsync(NO_PEER_RETRY_MS * 6 + 100)
    expect(runs.get('f.txt')).toBe(7)
    expect(engine.lastError).toBeNull()
    await engine.close()
  })

  it('is tried again at once when a peer connects (retryNow)', async () => {
    vi.useFakeTimers()
    let peer = false
    const { engine, runs } = engineWith(() => (peer ? 'done' : noPeer()))
    engine.mark('f.txt')
    await vi.advanceTimersByTimeAsync(10)
    expect(runs.get('f.txt')).toBe(1)
    peer = true
    engine.retryNow()
    await vi.advanceTimersByTimeAsync(10)
    expect(runs.get('f.txt')).toBe(2)
    expect(engine.isIdle).toBe(true)
  })
})

/**
 * An engine whose reconciler's first run waits for bytes until its signal aborts (then
 * E_SUPERSEDED, as a fetch does); every later run is done. `signals`: each run's signal, in order.
 */
function engineFirstRunWaiting(): { engine: SyncEngine; signals: Supersedable[] } {
  const signals: Supersedable[] = []
  const reconciler = {
    reconcile: async (path: string, _hints: unknown, signal: Supersedable) => {
      signals.push(signal)
      if (signals.length > 1) return 'done'
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
      throw new SyncError('E_SUPERSEDED', `a newer entry for ${path} arrived while its bytes were awaited`)
    }
  } as unknown as PathReconciler
  const index = { entries: () => [][Symbol.iterator](), checkpoint: () => 0, setCheckpoint: () => undefined } as unknown as IndexStore
  const engine = new SyncEngine(index, { all: () => [] } as unknown as DriveSet, reconciler, new PriorityClasses('wordpress'), 1, pino({ level: 'silent' }))
  return { engine, signals }
}

// A running path waits for bytes; a newer entry for it ends that wait and the path runs again:
// a peer's (hints from a diff), or our own put outside that path's run (fault suite seed 4904:
// a conflict copy withdrawn by its family's reconcile while the copy's own run waited for the
// copy's bytes, our blocks the withdrawal let go; marked without hints, the run went on waiting
// for Hypercore's whole request timeout)
describe('SyncEngine, a newer entry for a running path', () => {
  it.each([
    ['a peer\'s newer entry (hints)', (engine: SyncEngine) => engine.mark('f.txt', 3, new Map([['aa', { entry: null, seen: 1 }]]))],
    ['our own entry replaced outside its run', (engine: SyncEngine) => engine.ownEntryReplaced('f.txt')]
  ])('%s aborts its wait for older bytes (the reconcile signal), and the path runs again', async (_what, newer) => {
    const { engine, signals } = engineFirstRunWaiting()
    engine.mark('f.txt')
    await until(() => signals.length === 1, 'the first run started')
    // a local change (no hints) does not end the wait
    engine.mark('f.txt')
    expect(signals[0]!.aborted).toBe(false)
    newer(engine)
    expect(signals[0]!.aborted).toBe(true)
    await until(() => engine.isIdle, 'the path ran again and settled')
    expect(signals).toHaveLength(2)
    expect(signals[1]!.aborted).toBe(false)
    expect(engine.lastError).toBeNull()
    await engine.close()
  })

  it('our own entry replaced for a path that is not running: the path is marked', async () => {
    const { engine, runs } = engineWith(() => 'done')
    engine.ownEntryReplaced('d.txt')
    await until(() => engine.isIdle && runs.get('d.txt') === 1, 'd.txt ran')
    await engine.close()
  })
})

describe('SyncEngine, a directory waiting for its children', () => {
  it('is tried again as soon as a child settles, not after its backoff', async () => {
    vi.useFakeTimers()
    let childGone = false
    const { engine, runs } = engineWith((path) => (path === 'd' ? (childGone ? 'done' : 'dir-not-empty') : 'done'))
    engine.mark('d')
    await vi.advanceTimersByTimeAsync(5_000) // runs at 0, 0.1, 0.3, 0.7, 1.5, 3.1 s; the next at 6.3 s
    expect(runs.get('d')).toBe(6)
    childGone = true
    engine.mark('d/x.txt')
    await vi.advanceTimersByTimeAsync(10)
    expect(runs.get('d')).toBe(7)
    expect(engine.isIdle).toBe(true)
  })
})

/** A peer's drive (key aa, version 2) whose diff from 0 holds one entry: a delete of `key`. */
function peerDriveDeleting(key: string): MemberDrive {
  const tombstone = { kind: 'deleted', v: 1, vv: { PEER: 2 }, ts: 1, size: 0, mtime: 0, mode: 0o644, hash: '' }
  return {
    hex: 'aa',
    shortId: 'PEER',
    isOwn: false,
    drive: {
      version: 2,
      async *diff() {
        yield { left: { seq: 1, key, value: Buffer.from(JSON.stringify({ metadata: tombstone })) }, right: null }
      }
    }
  } as unknown as MemberDrive
}

// fault suite seed 967 and CI seed 1: the engine went idle while a remote delete sat in the
// mass-delete guard's pool, and moved the drive's checkpoint past the entry it came from; the
// pool was then let through into the in-memory queue, a kill -9 came before the queue drained,
// and after the restart nothing brought the delete back: the file stayed on that node, inSync
describe('SyncEngine checkpoints and the delete gate', () => {
  it('a drive checkpoint does not move past deletes the gate still holds, and moves once they are applied', async () => {
    const drive = peerDriveDeleting('/gone.txt')
    const checkpoints: Array<[string, number]> = []
    const index = {
      entries: () => [][Symbol.iterator](),
      checkpoint: () => 0,
      setCheckpoint: (hex: string, v: number) => checkpoints.push([hex, v]),
      get: (path: string) => (path === 'gone.txt' ? { kind: 'file' } : undefined)
    } as unknown as IndexStore
    const drives = { all: () => [drive], keepFullCopy: () => undefined, followIndex: () => undefined } as unknown as DriveSet
    const applied: string[] = []
    const reconciler = { reconcile: async (path: string) => (applied.push(path), 'done' as Outcome) } as unknown as PathReconciler
    const engine = new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, pino({ level: 'silent' }))
    const pool: string[] = []
    engine.deleteGate = { submit: (paths) => pool.push(...paths), get waitingCount() { return pool.length } }
    let idle = 0
    engine.onIdle(() => idle++)

    engine.onDriveAppend(drive)
    await until(() => idle > 0 && pool.length === 1, 'the engine is idle with the delete in the gate')
    expect(engine.isIdle).toBe(true)
    expect(checkpoints).toEqual([]) // the delete is only in the pool: a restart must diff it again

    engine.deletesReleased(pool.splice(0))
    await until(() => applied.includes('gone.txt') && engine.isIdle, 'the released delete is applied')
    expect(checkpoints).toContainEqual(['aa', 2])
    await engine.close()
  })
})

// fault CI round (seed 1, 2026-12-02): a node fetched a version of plugins/p1/notes from its
// author, who deleted the file meanwhile; the delete went to the guard (supersedeHints), and the
// fetch waited out its 30 s Hypercore request: the round converged in 31 s instead of 3
describe('SyncEngine, a delete for a running path that goes to the guard', () => {
  it('ends the running wait for older bytes; the path runs again, and the delete stays with the guard', async () => {
    const drive = peerDriveDeleting('/notes')
    const index = {
      entries: () => [][Symbol.iterator](),
      checkpoint: () => 0,
      setCheckpoint: () => undefined,
      get: (path: string) => (path === 'notes' ? { kind: 'file' } : undefined)
    } as unknown as IndexStore
    const drives = { all: () => [drive], keepFullCopy: () => undefined, followIndex: () => undefined } as unknown as DriveSet
    const signals: Supersedable[] = []
    const reconciler = {
      reconcile: async (_path: string, _hints: unknown, signal: Supersedable) => {
        signals.push(signal)
        if (signals.length > 1) return 'done' as Outcome
        // the first run waits for an older version's bytes until it is superseded
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
        throw new SyncError('E_SUPERSEDED', 'a newer entry for notes arrived while its bytes were awaited')
      }
    } as unknown as PathReconciler
    const engine = new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, pino({ level: 'silent' }))
    const pool: string[] = []
    engine.deleteGate = { submit: (paths) => pool.push(...paths), get waitingCount() { return pool.length } }
    engine.mark('notes', 100, new Map([['bb', { entry: null, seen: 1 }]]))
    await until(() => signals.length === 1, 'the first run waits for bytes')

    engine.onDriveAppend(drive)
    await until(() => pool.length === 1, 'the delete went to the guard')
    expect(signals[0]!.aborted).toBe(true)
    await until(() => signals.length === 2 && engine.isIdle, 'the path ran again and settled')
    expect(pool).toEqual(['notes'])
    expect(engine.lastError).toBeNull()
    await engine.close()
  })
})

describe('SyncEngine.pendingSummary (what a status report shows as pending)', () => {
  it('counts queued and running paths per class and per top-level directory, in one walk', async () => {
    // the first path holds its run; the critical ones start beside it, the rest wait in the
    // queue behind them
    let release!: () => void
    const held = new Promise<Outcome>((resolve) => (release = () => resolve('done')))
    const { engine } = engineWith((path) => (path === 'themes/t/style.css' ? held : 'done'))
    engine.mark('themes/t/style.css', 100)
    await until(() => engine.pendingSummary().bytes === 100 && engine.pendingCount === 1, 'the first path runs')
    const marks: Array<[string, number]> = [
      ['uploads/2026/11/a.jpg', 5000],
      ['uploadsX/odd.txt', 4], // right after an uploads/ path: not in its run
      ['themes/t/functions.php', 10],
      ['index.php', 1],
      ['themes/u/index.php', 20],
      ['uploads/2026/10/b.jpg', 3000],
      ['readme.txt', 2],
      ['plugins/p/p.php', 7]
    ]
    for (const [path, size] of marks) engine.mark(path, size)
    const summary = engine.pendingSummary()
    expect(summary.bytes).toBe(100 + 5000 + 10 + 1 + 20 + 3000 + 2 + 7 + 4)
    expect(summary.byDir).toEqual({
      themes: { files: 3, bytes: 130 },
      uploads: { files: 2, bytes: 8000 },
      '.': { files: 2, bytes: 3 },
      uploadsX: { files: 1, bytes: 4 },
      plugins: { files: 1, bytes: 7 }
    })
    const byName = Object.fromEntries(engine.classProgress(summary.byClass).map((c) => [c.name, [c.pendingFiles, c.pendingBytes]]))
    expect(byName).toEqual({ critical: [5, 138], uploads: [2, 8000], other: [2, 6] })
    // a peer's top-level directory named __proto__ is an own key, not the object's prototype
    engine.mark('__proto__/x.txt', 9)
    const polluted = engine.pendingSummary()
    expect(Object.hasOwn(polluted.byDir, '__proto__')).toBe(true)
    expect(polluted.byDir['__proto__']).toEqual({ files: 1, bytes: 9 })
    expect(({} as Record<string, unknown>).files).toBeUndefined()
    // without the directories: the same classes
    expect(engine.pendingSummary(false)).toEqual({ byDir: {}, bytes: polluted.bytes, byClass: polluted.byClass })
    release()
    await until(() => engine.isIdle, 'all settled')
    expect(engine.pendingSummary()).toEqual({ byDir: {}, bytes: 0, byClass: [{ files: 0, bytes: 0 }, { files: 0, bytes: 0 }, { files: 0, bytes: 0 }] })
    await engine.close()
  })
})
