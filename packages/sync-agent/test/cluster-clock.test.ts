import { describe, expect, it } from 'vitest'
import { ClusterClock, MAX_OFFSET_MS } from '../src/cluster-clock.js'

const HOUR = 3_600_000

/** A clock whose wall reads `wall.ms`. */
function clockAt(ms: number): { clock: ClusterClock; wall: { ms: number } } {
  const wall = { ms }
  return { clock: new ClusterClock(() => wall.ms), wall }
}

describe('ClusterClock', () => {
  it('with no peers it is the wall clock', () => {
    const { clock } = clockAt(1_000_000)
    expect(clock.offsetMs).toBe(0)
    expect(clock.now()).toBe(1_000_000)
  })

  it('a device 3 h ahead of two agreeing peers moves to their time', () => {
    const { clock } = clockAt(10 * HOUR + 3 * HOUR)
    clock.observePeer('b', 10 * HOUR)
    clock.observePeer('c', 10 * HOUR + 40)
    expect(clock.offsetMs).toBe(-3 * HOUR + 40)
    expect(clock.now()).toBe(10 * HOUR + 40)
  })

  it('a device with the right time does not follow one skewed peer (median with itself)', () => {
    const { clock } = clockAt(10 * HOUR)
    clock.observePeer('skewed', 13 * HOUR)
    clock.observePeer('c', 10 * HOUR + 20)
    expect(clock.offsetMs).toBe(20)
  })

  it('two devices meet half-way, so they agree on the order of their edits', () => {
    const a = clockAt(10 * HOUR)
    const b = clockAt(12 * HOUR)
    a.clock.observePeer('b', b.wall.ms)
    b.clock.observePeer('a', a.wall.ms)
    expect(a.clock.now()).toBe(11 * HOUR)
    expect(b.clock.now()).toBe(11 * HOUR)
  })

  it('a peer further off than MAX_OFFSET_MS is ignored', () => {
    const { clock } = clockAt(10 * HOUR)
    clock.observePeer('broken', 10 * HOUR + MAX_OFFSET_MS + 1)
    expect(clock.offsetMs).toBe(0)
  })

  it('a later sample of the same peer replaces the earlier one', () => {
    const { clock } = clockAt(10 * HOUR)
    clock.observePeer('b', 11 * HOUR)
    clock.observePeer('b', 10 * HOUR)
    expect(clock.offsetMs).toBe(0)
  })

  it('starts from the offsets of an earlier run and hands them out to persist', () => {
    const wall = { ms: 13 * HOUR }
    const clock = new ClusterClock(() => wall.ms, { b: -3 * HOUR, c: -3 * HOUR + 10, junk: Number.NaN })
    expect(clock.offsetMs).toBe(-3 * HOUR + 10)
    expect(clock.peerOffsets).toEqual({ b: -3 * HOUR, c: -3 * HOUR + 10 })
  })

  it('never goes backwards, even when the correction does', () => {
    const { clock, wall } = clockAt(10 * HOUR)
    const first = clock.now()
    clock.observePeer('b', 10 * HOUR - 2 * HOUR)
    clock.observePeer('c', 10 * HOUR - 2 * HOUR)
    expect(clock.now()).toBe(first + 1)
    wall.ms += 5
    expect(clock.now()).toBe(first + 2)
  })
})
