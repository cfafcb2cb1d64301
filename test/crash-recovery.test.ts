import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { writeBigFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { readTree, TEMP_PREFIX } from './helpers/tree.ts'
import { until } from './helpers/until.ts'

const MiB = 1024 * 1024
/** Total size of the initial sync; override with SYNC_AGENT_IT_BIG_MB for a quicker local run. */
const TOTAL_MB = Number(process.env.SYNC_AGENT_IT_BIG_MB ?? 200)

/**
 * Files under their final name in B's `big/` with the wrong size. A writer that uses temp
 * file + rename never shows a partial file under its final name.
 */
async function partialFiles(agent: Agent, expected: Map<string, number>): Promise<string[]> {
  let names: string[]
  try {
    names = await fs.readdir(path.join(agent.folder, 'big'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const bad: string[] = []
  for (const name of names) {
    if (name.startsWith(TEMP_PREFIX)) continue
    const rel = `big/${name}`
    let sizeBytes: number
    try {
      sizeBytes = (await fs.stat(path.join(agent.folder, rel))).size
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw error
    }
    if (sizeBytes !== expected.get(rel)) bad.push(`${rel}: ${sizeBytes} of ${expected.get(rel) ?? '(unknown file)'} bytes`)
  }
  return bad
}

async function countFinalFiles(agent: Agent): Promise<number> {
  try {
    return (await fs.readdir(path.join(agent.folder, 'big'))).filter((name) => !name.startsWith(TEMP_PREFIX)).length
  } catch {
    return 0
  }
}

describe('crash during the initial sync', () => {
  const harness = useHarness()

  it(`B killed with SIGKILL in the middle of a ${TOTAL_MB} MiB initial sync converges after restart`, { timeout: 240_000 }, async () => {
    let expected = new Map<string, number>()
    const [a, b] = await harness.startPair({
      settleMs: 50,
      seedA: async (folder) => {
        expected = await writeBigFiles(folder, TOTAL_MB * MiB)
      }
    })
    const total = expected.size
    const partialSeen: string[] = []

    // watch B fill up; kill it as soon as it has some but not all files
    const progress = await until(
      async () => {
        partialSeen.push(...(await partialFiles(b, expected)))
        const status = await b.tryStatus()
        const onDisk = await countFinalFiles(b)
        const known = status?.files ?? 0
        if (known >= total || onDisk >= total) {
          throw new Error(`too late: B already has all ${total} files (status.files=${known}, on disk ${onDisk}); make SYNC_AGENT_IT_BIG_MB larger`)
        }
        return (known > 0 || onDisk > 0) && { known, onDisk }
      },
      { timeoutMs: 120_000, intervalMs: 50, message: 'B has received some of the files' }
    )
    await b.kill()
    b.note(`killed with status.files=${progress.known}, ${progress.onDisk} of ${total} files on disk`)
    partialSeen.push(...(await partialFiles(b, expected)))
    expect(partialSeen, 'files under their final name with partial content').toEqual([])

    await b.start()
    await waitConverged([a, b], { timeoutMs: 180_000, intervalMs: 1_000, hash: false })
    // full hash comparison once at the end (waitConverged already checked there are no temp files)
    const [treeA, treeB] = await Promise.all([readTree(a.folder), readTree(b.folder)])
    expect(treeB).toEqual(treeA)
    expect([...treeB.keys()].filter((p) => path.posix.basename(p).startsWith(TEMP_PREFIX))).toEqual([])
    expect((await b.status()).files).toBe(total)
  })
})
