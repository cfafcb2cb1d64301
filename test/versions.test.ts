import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'

/** every file under `dir` with its content, paths relative, sorted */
async function contents(dir: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const abs = path.join(entry.parentPath, entry.name)
    out.push([path.relative(dir, abs), await fs.readFile(abs, 'utf8')])
  }
  return out.sort((x, y) => x[0].localeCompare(y[0]))
}

/**
 * Versions (Syncthing's trash can, Resilio's Archive): what a peer's change replaces or deletes
 * on B is kept in B's versions dir, named `name~YYYYMMDD-HHMMSS.ext`; what B's user changes
 * is not (it is theirs), and the folders stay equal.
 */
describe('versionsDir', () => {
  const harness = useHarness()

  it('keeps on B what A replaced or deleted, not what B changed itself', async () => {
    const secret = await newSecret()
    const versions = path.join(await harness.tmpDir(), 'versions')
    const a = await harness.agent({ name: 'a', secret })
    const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_VERSIONS_DIR: versions } })
    await writeFiles(a.folder, {
      'uploads/2026/11/cat.jpg': 'cat v1',
      'themes/t/style.css': 'body { color: red }',
      'index.php': '<?php // v1'
    })
    await a.start()
    await b.start()
    await b.waitForLog(/keeping what peers replace or delete/)
    await waitConverged([a, b])
    // a fresh node's first sync replaces nothing
    expect(await contents(versions)).toEqual([])

    await fs.writeFile(path.join(a.folder, 'uploads/2026/11/cat.jpg'), 'cat v2')
    await fs.rm(path.join(a.folder, 'themes/t/style.css'))
    await waitConverged([a, b])
    const kept = await contents(versions)
    expect(kept).toEqual([
      [expect.stringMatching(/^themes\/t\/style~\d{8}-\d{6}\.css$/), 'body { color: red }'],
      [expect.stringMatching(/^uploads\/2026\/11\/cat~\d{8}-\d{6}\.jpg$/), 'cat v1']
    ])

    // status says so, in JSON and in words; A keeps none
    expect((await b.status()).versions).toEqual({ dir: await fs.realpath(versions), keepDays: 30, keptSinceStart: 2 })
    expect((await a.status()).versions).toBeNull()
    expect((await runCli(['status', '--control', b.control])).stdout).toMatch(/^versions 2 kept since start in .*versions \(kept 30 days\)$/m)
    // B's own edit is published, not kept; A's copy is replaced, but A keeps no versions
    await fs.writeFile(path.join(b.folder, 'index.php'), '<?php // v2 from B')
    await waitConverged([a, b])
    expect(await fs.readFile(path.join(a.folder, 'index.php'), 'utf8')).toBe('<?php // v2 from B')
    expect(await contents(versions)).toEqual(kept)
    // the versions dir is not synced: A's folder has none of it (beside the staging directory)
    expect((await fs.readdir(a.folder)).filter((n) => !n.startsWith('.syncagent-tmp')).sort()).toEqual(['index.php', 'themes', 'uploads'])
  })
})
