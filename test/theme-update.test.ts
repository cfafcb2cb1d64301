import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'

/**
 * A WordPress theme update: the old theme directory is moved away (or deleted) and the new
 * version written under the same name at once. However the watcher reports it, the old
 * directory's files must be deleted on the peers and the new ones arrive.
 */
describe('theme update (directory replaced in place)', () => {
  const harness = useHarness()

  it('a directory moved away and recreated at once: old files deleted on the peer, new ones synced', async () => {
    const [a, b] = await harness.startPair({
      seedA: (folder) => writeFiles(folder, { 'themes/t0/style.css': 'v1 css', 'themes/t0/functions.php': '<?php // v1', 'themes/t0/parts/header.php': '<?php // v1 header' })
    })
    await waitConverged([a, b])
    const outside = await harness.tmpDir()
    await fs.rename(path.join(a.folder, 'themes/t0'), path.join(outside, 'old-t0'))
    await writeFiles(a.folder, { 'themes/t0/style.css': 'v2 css', 'themes/t0/templates/index.html': '<main>v2</main>' })
    const { trees } = await waitConverged([a, b], { timeoutMs: 30_000 })
    expect([...trees[1]!.keys()].filter((p) => p.startsWith('themes/t0/')).sort()).toEqual(['themes/t0/style.css', 'themes/t0/templates', 'themes/t0/templates/index.html'])
    expect(await fs.readFile(path.join(b.folder, 'themes/t0/style.css'), 'utf8')).toBe('v2 css')
  })
})
