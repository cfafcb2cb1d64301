import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Outcome } from '../src/reconcile-path.js'
import { engineWith } from './helpers/engine.js'

afterEach(() => {
  vi.useRealTimers()
})

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
    engine.mark('themes/withheld.php')
    await vi.advanceTimersByTimeAsync(10)
    engine.mark('uploads/2026/11/good.jpg')
    engine.mark('good.txt')
    // themes first: while the theme file is being fetched, the others wait
    await vi.advanceTimersByTimeAsync(5_000)
    expect(runs.get('uploads/2026/11/good.jpg')).toBeUndefined()
    // it does not come: after 10 s the later classes go on beside it
    await vi.advanceTimersByTimeAsync(6_000)
    expect(runs.get('uploads/2026/11/good.jpg')).toBe(1)
    expect(runs.get('good.txt')).toBe(1)
    expect(engine.pendingCount).toBe(1)
  })
})
