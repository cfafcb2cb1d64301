import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged, waitLocalSettled } from './helpers/sync.ts'
import { until } from './helpers/until.ts'

/**
 * One agent's clock hours off (libfaketime, Debian package `faketime`): concurrent edits are
 * still decided by when they were published in real time, not by whose clock runs ahead,
 * and both versions stay (one as a conflict copy).
 */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1'
const HOUR = 3_600_000

async function versionsOfF(folder: string): Promise<{ winner: string; copies: string[] }> {
  const names = (await fs.readdir(folder)).filter((n) => n.startsWith('f.') && n !== 'f.txt').sort()
  return {
    winner: await fs.readFile(path.join(folder, 'f.txt'), 'utf8'),
    copies: await Promise.all(names.map((n) => fs.readFile(path.join(folder, n), 'utf8')))
  }
}

describe.each([
  ['3 hours ahead', 3 * HOUR],
  ['3 hours behind', -3 * HOUR]
])('a device whose clock is %s', (_label, skewMs) => {
  const harness = useHarness()

  it('neither wins nor loses concurrent edits for it: the later publish wins, the other is a conflict copy', async () => {
    const secret = await newSecret()
    const skewEnv: Record<string, string | undefined> = {}
    const s = await harness.agent({ name: 'skewed', secret, env: skewEnv })
    const b = await harness.agent({ name: 'b', secret, peers: [s.address] })
    const c = await harness.agent({ name: 'c', secret, peers: [s.address, b.address] })
    // installed with a good clock (hypercore-storage's device file compares its creation time
    // with the file's mtime, which libfaketime does not fake), then the clock goes wrong
    await s.start()
    await s.stop()
    Object.assign(skewEnv, {
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME: `${skewMs > 0 ? '+' : '-'}${Math.abs(skewMs) / 1000}s`,
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
      NO_FAKE_STAT: '1'
    })
    const all: Agent[] = [s, b, c]
    for (const a of all) await a.start()
    await fs.writeFile(path.join(b.folder, 'f.txt'), 'base\n')
    await waitConverged(all)
    const offsets = await until(
      async () => {
        const st = await Promise.all(all.map((a) => a.status()))
        const o = st.map((x) => x.clockOffsetMs as number)
        return Math.abs((o[0] as number) + skewMs) < 5_000 ? o : undefined
      },
      { timeoutMs: 15_000, message: 'the skewed agent has measured its offset' }
    )
    expect(Math.abs(offsets[1] as number)).toBeLessThan(5_000)
    expect(Math.abs(offsets[2] as number)).toBeLessThan(5_000)

    // 1. the skewed device edits first, b later (b was stopped: b's edit is concurrent)
    await b.stop()
    await fs.writeFile(path.join(s.folder, 'f.txt'), 'skewed, earlier\n')
    await waitLocalSettled(s)
    await fs.writeFile(path.join(b.folder, 'f.txt'), 'b, later\n')
    await b.start()
    await waitConverged(all)
    const first = await versionsOfF(c.folder)
    expect(first).toEqual({ winner: 'b, later\n', copies: ['skewed, earlier\n'] })

    // 2. b edits first, the skewed device later, published at its restart (before any peer is
    // back: the offset it measured earlier is kept in its data dir)
    await s.stop()
    await fs.writeFile(path.join(b.folder, 'f.txt'), 'b, earlier\n')
    await waitLocalSettled(b)
    await fs.writeFile(path.join(s.folder, 'f.txt'), 'skewed, later\n')
    await s.start()
    await waitConverged(all)
    const second = await versionsOfF(c.folder)
    expect(second.winner).toBe('skewed, later\n')
    expect(second.copies).toContain('b, earlier\n')
    expect(second.copies).toContain('skewed, earlier\n')
    expect(await versionsOfF(s.folder)).toEqual(second)
  })
})
