import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'

/** Regular files under `dir` (recursively) whose raw bytes contain `needle`. */
async function filesContaining(dir: string, needle: Buffer): Promise<{ hits: string[]; scanned: number }> {
  const hits: string[] = []
  let scanned = 0
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    scanned++
    if ((await fs.readFile(file)).includes(needle)) hits.push(file)
  }
  return { hits, scanned }
}

describe('encryption at rest', () => {
  const harness = useHarness()

  it('neither a file name nor file content appears in plain text anywhere under the data dirs', async () => {
    const nameMarker = `NAMEMARK${randomBytes(10).toString('hex')}`
    const contentMarker = `BODYMARK${randomBytes(10).toString('hex')}`
    const [a, b] = await harness.startPair({
      seedA: (folder) =>
        writeFiles(folder, {
          [`notes-${nameMarker}.txt`]: `top secret ${contentMarker}\n`.repeat(100),
          [`dir-${nameMarker}/inner.txt`]: contentMarker
        })
    })
    const { trees } = await waitConverged([a, b])
    expect(trees[1]!.has(`notes-${nameMarker}.txt`)).toBe(true)
    // B made its own change too, so B's data dir holds its own writes, not just A's
    await writeFiles(b.folder, { [`from-b-${nameMarker}.txt`]: `b says ${contentMarker}\n` })
    await waitConverged([a, b])

    for (const agent of [a, b]) {
      expect((await agent.stop()).code).toBe(0)
      for (const marker of [nameMarker, contentMarker]) {
        const { hits, scanned } = await filesContaining(agent.data, Buffer.from(marker))
        expect(scanned, `files under ${agent.name}'s data dir`).toBeGreaterThan(0)
        expect(hits, `${agent.name}'s data dir holds ${marker} in plain text`).toEqual([])
      }
    }
  })
})
