import type { Stats } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { stays } from './helpers/until.ts'

const QUIET_WINDOW_MS = 3_000

interface Fingerprint {
  ino: number
  sizeBytes: number
  mtimeMs: number
  ctimeMs: number
}

function fingerprint(stat: Stats): Fingerprint {
  return { ino: stat.ino, sizeBytes: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs }
}

/** Checks that, for the whole window, both agents stay in sync and neither copy of `rel` is touched. */
async function expectQuiet(agents: Agent[], rel: string): Promise<void> {
  const before = await Promise.all(agents.map(async (agent) => fingerprint(await fs.lstat(path.join(agent.folder, rel)))))
  await stays(
    async () => {
      for (const [i, agent] of agents.entries()) {
        const status = await agent.status()
        if (!status.inSync || status.pending !== 0) throw new Error(`${agent.name} left sync: ${JSON.stringify(status)}`)
        const now = fingerprint(await fs.lstat(path.join(agent.folder, rel)))
        expect(now, `${agent.name}'s copy of ${rel} was touched again`).toEqual(before[i])
      }
      return true
    },
    { durationMs: QUIET_WINDOW_MS, intervalMs: 300, message: `both agents stay in sync and leave ${rel} alone` }
  )
}

describe('no echo: a synced change is applied once and the agents go quiet', () => {
  const harness = useHarness()

  it('a file created on A is written once on B, and not rewritten on A', async () => {
    const [a, b] = await harness.startPair({ seedA: (folder) => writeFiles(folder, { 'seed.txt': 'seed\n' }) })
    await waitConverged([a, b])
    await writeFiles(a.folder, { 'quiet/f.txt': 'version 1\n' })
    await waitConverged([a, b])
    await expectQuiet([a, b], 'quiet/f.txt')
  })

  it('a modification made on B (of a file that came from A) settles without ping-pong', async () => {
    const [a, b] = await harness.startPair({ seedA: (folder) => writeFiles(folder, { 'g.txt': 'from A\n' }) })
    await waitConverged([a, b])
    await fs.writeFile(path.join(b.folder, 'g.txt'), 'changed on B\n')
    await waitConverged([a, b])
    expect(await fs.readFile(path.join(a.folder, 'g.txt'), 'utf8')).toBe('changed on B\n')
    await expectQuiet([a, b], 'g.txt')
    const files = await fs.readdir(a.folder)
    expect(files.filter((name) => name.includes('sync-conflict'))).toEqual([])
  })
})
