import { describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import { WatchRenewal } from '../src/watch-renewal.js'

/** A renewal whose restarts wait for the test to let them finish. */
function scene(minIntervalMs: number, watched = true) {
  const calls: string[] = []
  const gates: Array<() => void> = []
  const errors: Error[] = []
  const renewal = new WatchRenewal({
    restart: async () => {
      calls.push('restart')
      await new Promise<void>((resolve) => gates.push(resolve))
      return watched
    },
    rescan: async () => {
      calls.push('rescan')
    },
    onError: (err) => errors.push(err),
    log: pino({ level: 'silent' }),
    minIntervalMs
  })
  return { calls, gates, errors, renewal }
}

describe('WatchRenewal', () => {
  it('restarts then rescans; requests made meanwhile coalesce into one more renewal after it', async () => {
    const s = scene(0)
    expect(s.renewal.busy).toBe(false)
    s.renewal.request('themes/t0')
    s.renewal.request('themes/t0')
    expect(s.renewal.busy).toBe(true)
    await vi.waitFor(() => expect(s.calls).toEqual(['restart']))
    // while it runs: two more requests
    s.renewal.request('themes/t1')
    s.renewal.request('plugins/p0')
    s.gates.shift()!()
    await vi.waitFor(() => expect(s.calls).toEqual(['restart', 'rescan', 'restart']))
    s.gates.shift()!()
    await vi.waitFor(() => expect(s.calls).toEqual(['restart', 'rescan', 'restart', 'rescan']))
    await vi.waitFor(() => expect(s.renewal.busy).toBe(false))
    expect(s.errors).toEqual([])
    s.renewal.close()
  })

  it('waits the minimum interval between two renewals', async () => {
    const s = scene(300)
    const firstAt = Date.now()
    s.renewal.request('a')
    await vi.waitFor(() => expect(s.calls).toEqual(['restart']))
    s.gates.shift()!()
    await vi.waitFor(() => expect(s.calls).toEqual(['restart', 'rescan']))
    s.renewal.request('b')
    await vi.waitFor(() => expect(s.calls).toHaveLength(3), { timeout: 2_000 })
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(295)
    s.gates.shift()!()
    s.renewal.close()
  })

  it('no rescan when the watcher was paused (resuming watches afresh), and close cancels what waits', async () => {
    const s = scene(10_000, false)
    s.renewal.request('a')
    await vi.waitFor(() => expect(s.calls).toEqual(['restart']))
    s.gates.shift()!()
    await vi.waitFor(() => expect(s.renewal.busy).toBe(false))
    expect(s.calls).toEqual(['restart'])
    s.renewal.request('b') // waits ~10 s for the interval
    expect(s.renewal.busy).toBe(true)
    s.renewal.close()
    expect(s.renewal.busy).toBe(false)
    s.renewal.request('c')
    expect(s.renewal.busy).toBe(false)
  })
})

describe('WatchRenewal, the log of a renewal', () => {
  it('counts the directories the agent itself removed and made again (RemadeDirs)', async () => {
    const lines: Array<Record<string, unknown>> = []
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    const renewal = new WatchRenewal({ restart: async () => true, rescan: async () => undefined, onError: (err) => { throw err }, log, minIntervalMs: 0 })
    renewal.request('themes/t0')
    renewal.request('themes/t1/assets', true)
    await vi.waitFor(() => expect(renewal.busy).toBe(false))
    expect(lines).toMatchObject([{ dirs: ['themes/t0', 'themes/t1/assets'], count: 2, remadeByAgent: 1 }])
    renewal.close()
  })
})
