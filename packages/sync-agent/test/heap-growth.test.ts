import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import { describe, expect, it } from 'vitest'
import { GROWTH_PERCENT, HeapGrowthTuner, MAX_PERCENT, MIN_GROWTH_BYTES, growthPercentFor } from '../src/heap-growth.js'
import { until } from './helpers/until.js'

const MiB = 1024 * 1024

describe('growthPercentFor', () => {
  it('lets a small heap grow by MIN_GROWTH_BYTES, never more than MAX_PERCENT', () => {
    expect(growthPercentFor(32 * MiB)).toBe(150)
    expect(growthPercentFor(32 * MiB) / 100 * 32 * MiB).toBeGreaterThanOrEqual(MIN_GROWTH_BYTES)
    expect(growthPercentFor(24 * MiB)).toBe(MAX_PERCENT)
    expect(growthPercentFor(10 * MiB)).toBe(MAX_PERCENT)
    expect(growthPercentFor(0)).toBe(MAX_PERCENT)
    expect(growthPercentFor(Number.NaN)).toBe(MAX_PERCENT)
  })

  it('caps a large heap at GROWTH_PERCENT', () => {
    expect(growthPercentFor(160 * MiB)).toBe(GROWTH_PERCENT)
    expect(growthPercentFor(1024 * MiB)).toBe(GROWTH_PERCENT)
    // in between: exactly the minimum growth, rounded up
    expect(growthPercentFor(96 * MiB)).toBe(50)
  })
})

/** A started tuner whose heap size the test sets (`heap.used`), and the flags it set. */
function tunerFor(pollMs: number): { tuner: HeapGrowthTuner; flags: string[]; heap: { used: number } } {
  const flags: string[] = []
  const heap = { used: 24 * MiB }
  const tuner = new HeapGrowthTuner({ setFlags: (f) => flags.push(f), heapUsed: () => heap.used, pollMs })
  tuner.ready()
  return { tuner, flags, heap }
}

describe('HeapGrowthTuner', () => {
  it('sets the percent at start and again after a full collection, only when it changes', async () => {
    const { tuner, flags, heap } = tunerFor(0)
    try {
      expect(flags).toEqual([`--heap-growing-percent=${MAX_PERCENT}`])
      // a real full collection (V8's gc() exposed to a fresh context)
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as () => void
      heap.used = 500 * MiB
      gc()
      await until(() => flags.length === 2, 'the tuner saw the full collection', 10_000)
      expect(flags[1]).toBe(`--heap-growing-percent=${GROWTH_PERCENT}`)
      gc()
      heap.used = 490 * MiB
      gc()
      // same percent: not set again (a change would be seen by the next observer callback)
      heap.used = 24 * MiB
      gc()
      await until(() => flags.length === 3, 'back to the small-heap percent', 10_000)
      expect(flags).toEqual([`--heap-growing-percent=${MAX_PERCENT}`, `--heap-growing-percent=${GROWTH_PERCENT}`, `--heap-growing-percent=${MAX_PERCENT}`])
      expect(tuner.changes).toBe(3)
    } finally {
      tuner.close()
    }
  })

  it('reads the heap between collections too, so a percent set for a small heap does not outlive it', async () => {
    const { tuner, flags, heap } = tunerFor(10)
    try {
      heap.used = 400 * MiB
      await until(() => flags.length === 2, 'the poll saw the larger heap', 10_000)
      expect(flags).toEqual([`--heap-growing-percent=${MAX_PERCENT}`, `--heap-growing-percent=${GROWTH_PERCENT}`])
    } finally {
      tuner.close()
    }
  })
})
