import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Outcome } from '../src/reconcile-path.js'
import type { Hints } from '../src/sync-engine.js'
import { engineWith } from './helpers/engine.js'

afterEach(() => {
  vi.useRealTimers()
})

/** Hints of a peer's entry for a path (the engine only passes them on). */
const peerEntry = (): Hints => new Map([['aa', { entry: null, seen: 1 }]])

/** A reconcile that never ends: content a peer withholds (until the engine closes). */
const never = (): Promise<Outcome> => new Promise<Outcome>(() => undefined)

// a compromised read-write peer published files whose contents it never serves: each held a
// worker for the whole fetch timeout, so a few of them kept every worker (and, running in the
// critical class, every later class) waiting, over and over with the retries
describe('SyncEngine workers, with contents that never come', () => {
  it('bulk paths never take the workers kept for fresh changes', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith((path) => (path.startsWith('themes/withheld/') ? never() : 'done'))
    for (let i = 0; i < 200; i++) engine.mark(`themes/withheld/${i}.php`, 0, null, false, true)
    await vi.advanceTimersByTimeAsync(100)
    expect([...runs.keys()].filter((p) => p.startsWith('themes/withheld/')).length).toBeLessThan(64)
    engine.mark('themes/good/style.css')
    await vi.advanceTimersByTimeAsync(100)
    expect(runs.get('themes/good/style.css')).toBe(1)
  })

  it('a backlog of the critical class that never drains does not hold a later class\'s fresh changes, which use only the workers kept for them', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith((path) => (path.startsWith('themes/withheld/') || path.startsWith('uploads/2026/11/') ? never() : 'done'))
    for (let i = 0; i < 200; i++) engine.mark(`themes/withheld/${i}.php`, 0, null, false, true)
    await vi.advanceTimersByTimeAsync(100)
    for (let i = 0; i < 20; i++) engine.mark(`uploads/2026/11/${i}.jpg`)
    engine.mark('good.txt')
    await vi.advanceTimersByTimeAsync(100)
    const uploads = [...runs.keys()].filter((p) => p.startsWith('uploads/')).length
    expect(uploads).toBeGreaterThan(0)
    expect(uploads).toBeLessThanOrEqual(8)
  })

  it('a critical path running for long stops holding the later classes back', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith((path) => (path === 'themes/withheld.php' ? never() : 'done'))
    engine.mark('themes/withheld.php', 0, peerEntry())
    await vi.advanceTimersByTimeAsync(10)
    engine.mark('uploads/2026/11/good.jpg', 0, peerEntry())
    engine.mark('good.txt', 0, peerEntry())
    // themes first: while the theme file is being fetched, peers' changes of the others wait
    await vi.advanceTimersByTimeAsync(5_000)
    expect(runs.get('uploads/2026/11/good.jpg')).toBeUndefined()
    // it does not come: after 10 s the later classes go on beside it
    await vi.advanceTimersByTimeAsync(6_000)
    expect(runs.get('uploads/2026/11/good.jpg')).toBe(1)
    expect(runs.get('good.txt')).toBe(1)
    expect(engine.pendingCount).toBe(1)
  })

  // seen in the withheld-contents suite: the good peer's own new file waited 20 s to be
  // published, held by the theme file and then the upload it was fetching for a peer
  it('a local change of a later class is not held by a class whose fetches are in flight', async () => {
    vi.useFakeTimers()
    const { engine, runs } = engineWith((path) => (path === 'themes/withheld.php' || path === 'uploads/2026/11/withheld.jpg' ? never() : 'done'))
    engine.mark('themes/withheld.php', 0, peerEntry())
    await vi.advanceTimersByTimeAsync(10)
    engine.mark('uploads/2026/11/withheld.jpg', 0, peerEntry())
    engine.mark('uploads/2026/11/peer.jpg', 0, peerEntry())
    // local changes (no peer's entry): published now, whatever their class
    engine.mark('uploads/2026/11/mine.jpg')
    engine.mark('mine.txt')
    await vi.advanceTimersByTimeAsync(100)
    expect(runs.get('uploads/2026/11/mine.jpg')).toBe(1)
    expect(runs.get('mine.txt')).toBe(1)
    // a peer's change of a later class still waits for the class in flight
    expect(runs.get('uploads/2026/11/peer.jpg')).toBeUndefined()
    expect(runs.get('uploads/2026/11/withheld.jpg')).toBeUndefined()
    // paused, nothing starts, local changes neither
    engine.setPaused(true)
    engine.mark('paused.txt')
    // a queued local path that a peer's entry reaches is a peer's change: it waits for the class
    engine.mark('uploads/2026/11/both.jpg')
    engine.mark('uploads/2026/11/both.jpg', 0, peerEntry())
    await vi.advanceTimersByTimeAsync(100)
    expect(runs.get('paused.txt')).toBeUndefined()
    engine.setPaused(false)
    await vi.advanceTimersByTimeAsync(100)
    expect(runs.get('paused.txt')).toBe(1)
    expect(runs.get('uploads/2026/11/both.jpg')).toBeUndefined()
    // after the hold, the peers' changes go on
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs.get('uploads/2026/11/peer.jpg')).toBe(1)
    expect(runs.get('uploads/2026/11/both.jpg')).toBe(1)
  })
})
