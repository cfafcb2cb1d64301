import { describe, expect, it } from 'vitest'
import { ClassProgress, etaSeconds } from '../src/priority/class-progress.js'

describe('ClassProgress', () => {
  it('measures files and bytes per second over the recent window', () => {
    let now = 1_000_000
    const p = new ClassProgress(2, () => now)
    for (let i = 0; i < 20; i++) {
      p.applied(1, 1_000_000)
      now += 500
    }
    const r = p.rate(1)
    expect(r.doneFiles).toBe(20)
    expect(r.doneBytes).toBe(20_000_000)
    expect(r.filesPerSecond).toBeGreaterThan(1.5)
    expect(r.filesPerSecond).toBeLessThan(2.5)
    expect(r.bytesPerSecond).toBeGreaterThan(1.5e6)
    expect(p.rate(0)).toEqual({ doneFiles: 0, doneBytes: 0, filesPerSecond: 0, bytesPerSecond: 0 })
  })

  it('drops to zero when nothing arrived within the window', () => {
    let now = 0
    const p = new ClassProgress(1, () => now)
    p.applied(0, 10)
    now += 60_000
    expect(p.rate(0).filesPerSecond).toBe(0)
    expect(p.rate(0).doneFiles).toBe(1)
  })
})

describe('etaSeconds', () => {
  it('is 0 when nothing is pending, null when nothing moves, and the slower of files and bytes', () => {
    const rate = { doneFiles: 10, doneBytes: 0, filesPerSecond: 10, bytesPerSecond: 1_000 }
    expect(etaSeconds(0, 0, rate)).toBe(0)
    expect(etaSeconds(5, 100, { ...rate, filesPerSecond: 0, bytesPerSecond: 0 })).toBeNull()
    expect(etaSeconds(100, 1_000, rate)).toBe(10) // files: 10 s, bytes: 1 s
    expect(etaSeconds(10, 50_000, rate)).toBe(50) // bytes: 50 s
  })
})
