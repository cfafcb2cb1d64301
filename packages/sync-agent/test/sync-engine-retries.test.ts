import { afterEach, describe, expect, it, vi } from 'vitest'
import { engineWith } from './helpers/engine.js'

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
    expect(runs.get('docs/d0')).toBe(9)
    expect(engine.isIdle).toBe(true)
  })

  it('a directory left non-empty is tried again when a path inside it settles', async () => {
    vi.useFakeTimers()
    let childGone = false
    const { engine, runs } = engineWith((path) => (path === 'docs/d0' ? (childGone ? 'done' : 'dir-not-empty') : 'done'))
    engine.mark('docs/d0')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(runs.get('docs/d0')).toBe(9)
    childGone = true
    engine.mark('docs/d0/a/last.txt')
    await vi.advanceTimersByTimeAsync(1_000)
    expect(runs.get('docs/d0')).toBe(10)
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
