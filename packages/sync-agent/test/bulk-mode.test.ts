import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { BULK_MODE_CHECK_MS, BULK_MODE_IDLE_CHECK_MS, BULK_MODE_PATHS, BULK_RESCAN_COST_FACTOR, BULK_RESCAN_MAX_MS, BULK_RESCAN_MIN_MS, BULK_RESUME_PATHS, BulkMode, bulkRescanDelay } from '../src/bulk-mode.js'

/** A bulk mode over a fake watcher and backlog; rescans wait for the test to end them. */
function scene() {
  const calls: string[] = []
  const rescans: Array<() => void> = []
  const errors: string[] = []
  const state = { backlog: 0, diffing: false, stopping: false, failResume: false }
  const watcher = {
    isPaused: false,
    async pause() {
      calls.push('pause')
      watcher.isPaused = true
    },
    async resume() {
      calls.push('resume')
      if (state.failResume) throw new Error('inotify: no space left')
      watcher.isPaused = false
    }
  }
  const bulk = new BulkMode({
    backlog: () => state.backlog,
    isDiffing: () => state.diffing,
    watcher,
    rescan: () => {
      calls.push('rescan')
      return new Promise<void>((resolve) => rescans.push(resolve))
    },
    isStopping: () => state.stopping,
    onError: (message) => errors.push(message),
    log: pino({ level: 'silent' })
  })
  return { calls, rescans, errors, state, watcher, bulk }
}

describe('BulkMode', () => {
  beforeEach(() => void vi.useFakeTimers())
  afterEach(() => void vi.useRealTimers())

  it('pauses the watcher at a large backlog and resumes it near the end; local changes may be missed until the rescan after it ends', async () => {
    const s = scene()
    s.bulk.ready()
    await vi.advanceTimersByTimeAsync(BULK_MODE_IDLE_CHECK_MS)
    expect(s.calls).toEqual([])
    expect(s.bulk.mayMissLocalChanges).toBe(false)

    s.state.backlog = BULK_MODE_PATHS
    await vi.advanceTimersByTimeAsync(BULK_MODE_IDLE_CHECK_MS)
    expect(s.calls).toEqual(['pause'])
    expect(s.bulk.mayMissLocalChanges).toBe(true)

    // still diffing a peer's index: the backlog may grow again, so the watcher stays paused
    s.state.backlog = BULK_RESUME_PATHS - 1
    s.state.diffing = true
    await vi.advanceTimersByTimeAsync(BULK_MODE_CHECK_MS * 3)
    expect(s.calls).toEqual(['pause'])

    s.state.diffing = false
    await vi.advanceTimersByTimeAsync(BULK_MODE_CHECK_MS)
    expect(s.calls).toEqual(['pause', 'resume', 'rescan'])
    // the watcher is back, but what a site wrote while it was paused is found by that rescan:
    // until it ends the agent must not say inSync (session 18: it did, ~0.2 s early)
    expect(s.watcher.isPaused).toBe(false)
    s.state.backlog = 0
    await vi.advanceTimersByTimeAsync(BULK_MODE_CHECK_MS * 10)
    expect(s.bulk.mayMissLocalChanges).toBe(true)
    s.rescans.shift()!()
    await vi.advanceTimersByTimeAsync(0)
    expect(s.bulk.mayMissLocalChanges).toBe(false)
    expect(s.errors).toEqual([])
    s.bulk.close()
  })

  it('rescans while the watcher stays paused, one at a time, each due a multiple of the last one\'s duration after it', async () => {
    const s = scene()
    s.state.backlog = BULK_MODE_PATHS * 5
    s.bulk.ready()
    await vi.advanceTimersByTimeAsync(BULK_MODE_IDLE_CHECK_MS)
    expect(s.calls).toEqual(['pause'])
    // the first one BULK_RESCAN_MIN_MS after the pause
    await vi.advanceTimersByTimeAsync(BULK_RESCAN_MIN_MS - BULK_MODE_CHECK_MS)
    expect(s.calls).toEqual(['pause'])
    await vi.advanceTimersByTimeAsync(BULK_MODE_CHECK_MS)
    expect(s.calls).toEqual(['pause', 'rescan'])
    // that rescan has not ended after 400 ms: no second one starts beside it
    await vi.advanceTimersByTimeAsync(400)
    expect(s.calls).toEqual(['pause', 'rescan'])
    s.rescans.shift()!()
    // it took ~400 ms: the next is due 20 × 400 ms = 8 s after it ended, not at once
    const due = bulkRescanDelay(400)
    expect(due).toBe(400 * BULK_RESCAN_COST_FACTOR)
    await vi.advanceTimersByTimeAsync(due - 2 * BULK_MODE_CHECK_MS)
    expect(s.calls).toEqual(['pause', 'rescan'])
    await vi.advanceTimersByTimeAsync(3 * BULK_MODE_CHECK_MS)
    expect(s.calls).toEqual(['pause', 'rescan', 'rescan'])
    s.bulk.close()
  })

  it('a rescan delay is bounded both ways', () => {
    expect(bulkRescanDelay(0)).toBe(BULK_RESCAN_MIN_MS)
    expect(bulkRescanDelay(10)).toBe(BULK_RESCAN_MIN_MS)
    expect(bulkRescanDelay(100)).toBe(100 * BULK_RESCAN_COST_FACTOR)
    expect(bulkRescanDelay(60_000)).toBe(BULK_RESCAN_MAX_MS)
  })

  it('a resume that fails is an error, and the next look tries again', async () => {
    const s = scene()
    s.state.backlog = BULK_MODE_PATHS
    s.bulk.ready()
    await vi.advanceTimersByTimeAsync(BULK_MODE_IDLE_CHECK_MS)
    s.state.backlog = 0
    s.state.failResume = true
    await vi.advanceTimersByTimeAsync(BULK_MODE_CHECK_MS)
    expect(s.errors).toEqual(['cannot resume watching: inotify: no space left'])
    // still paused: mayMissLocalChanges stays true, and the next look resumes it
    expect(s.bulk.mayMissLocalChanges).toBe(true)
    s.state.failResume = false
    await vi.advanceTimersByTimeAsync(BULK_MODE_CHECK_MS)
    expect(s.calls).toEqual(['pause', 'resume', 'resume', 'rescan'])
    s.rescans.shift()!()
    await vi.advanceTimersByTimeAsync(0)
    expect(s.bulk.mayMissLocalChanges).toBe(false)
    s.bulk.close()
  })

  it('wake() looks at once when idle; nothing is scheduled once the agent is stopping', async () => {
    const s = scene()
    s.bulk.ready()
    s.state.backlog = BULK_MODE_PATHS
    s.bulk.wake()
    await vi.advanceTimersByTimeAsync(0)
    expect(s.calls).toEqual(['pause'])
    s.state.stopping = true
    s.state.backlog = 0
    await vi.advanceTimersByTimeAsync(BULK_RESCAN_MAX_MS * 2)
    expect(s.calls).toEqual(['pause'])
    expect(vi.getTimerCount()).toBe(0)
  })
})
