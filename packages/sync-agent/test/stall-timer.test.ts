import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PROGRESS_BYTES, StallTimer } from '../src/peers/stall-timer.js'

describe('StallTimer', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('fires when the connection carried less than PROGRESS_BYTES in the timeout (keep-alives only)', () => {
    const connection = { bytesIn: 1_000 }
    let stalled = 0
    const timer = new StallTimer(connection, 15_000, () => stalled++)
    connection.bytesIn += 60
    vi.advanceTimersByTime(14_999)
    expect(stalled).toBe(0)
    vi.advanceTimersByTime(1)
    expect(stalled).toBe(1)
    timer.clear()
  })

  it('waits on while the connection carries other answers (a slow or rate-limited link), and fires once it goes quiet', () => {
    const connection = { bytesIn: 0 }
    let stalled = 0
    const timer = new StallTimer(connection, 15_000, () => stalled++)
    for (let i = 0; i < 4; i++) {
      connection.bytesIn += PROGRESS_BYTES
      vi.advanceTimersByTime(15_000)
    }
    expect(stalled).toBe(0)
    // quiet from here: one more full timeout
    vi.advanceTimersByTime(14_999)
    expect(stalled).toBe(0)
    vi.advanceTimersByTime(1)
    expect(stalled).toBe(1)
    timer.clear()
  })

  it('starts again on refresh, and never fires once cleared', () => {
    const connection = { bytesIn: 0 }
    let stalled = 0
    const timer = new StallTimer(connection, 1_000, () => stalled++)
    vi.advanceTimersByTime(900)
    timer.refresh()
    vi.advanceTimersByTime(900)
    expect(stalled).toBe(0)
    timer.clear()
    vi.advanceTimersByTime(5_000)
    expect(stalled).toBe(0)
  })
})
