import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'

/** Paths that by design exist on one side only. */
const IGNORED = [
  /^\.syncignore$/,
  /^cache(\/|$)/,
  /^upgrade(\/|$)/,
  /\.log$/,
  /\.swp$/,
  /~$/,
  /^private(\/|$)/,
  /\.tmpx$/,
  /\.secret$/
]
const isIgnored = (p: string): boolean => IGNORED.some((re) => re.test(p))

describe('.syncignore and the wordpress preset', () => {
  const harness = useHarness()

  it('ignored paths and .syncignore itself are not synced, either way', async () => {
    const secret = await newSecret()
    const root = await harness.tmpDir()
    // A: config file with the preset named explicitly and an extra pattern
    const configFile = path.join(root, 'a.json')
    await fs.writeFile(configFile, JSON.stringify({ ignore: { presets: ['wordpress'], patterns: ['*.secret'] } }))
    const a = await harness.agent({ name: 'a', secret, configFile })
    // the preset ignores wp-content's own cache/ and upgrade/; deeper dirs of that name are
    // left to .syncignore (plugins ship code in folders named cache/)
    await writeFiles(a.folder, {
      '.syncignore': '# local rules\nprivate/\n*.tmpx\n',
      'keep.txt': 'synced\n',
      'wp-content/uploads/pic.txt': 'synced too\n',
      // the folder is wp-content, so these are its cache/ and upgrade/ dirs
      'cache/x': 'wordpress cache\n',
      'cache/page/index.html': '<html>cached</html>\n',
      'upgrade/pkg.zip': 'upgrade\n',
      'debug.log': 'log\n',
      'plugins/p/error.log': 'log\n',
      '.functions.php.swp': 'swap\n',
      'themes/t/style.css~': 'editor backup\n',
      'private/diary.txt': 'dear diary\n',
      'scratch.tmpx': 'scratch\n',
      'keys.secret': 'key\n'
    })
    await a.start()
    // B: env only, so the preset applies by default
    const b = await harness.agent({ name: 'b', secret, peers: [a.address] })
    await writeFiles(b.folder, { 'from-b.txt': 'synced from B\n', 'cache/b-only': 'cache on B\n', 'b.log': 'log on B\n' })
    await b.start()

    let { trees } = await waitConverged([a, b], { ignore: isIgnored })
    expect(trees[1]!.get('keep.txt')?.type).toBe('file')
    expect(trees[0]!.get('from-b.txt')?.type).toBe('file')
    expect([...trees[1]!.keys()].filter(isIgnored)).toEqual(['b.log', 'cache', 'cache/b-only'])
    expect([...trees[0]!.keys()].filter((p) => p === 'b.log' || p.startsWith('cache/b-only'))).toEqual([])

    // ignored files made while running are not picked up by the watcher either
    await writeFiles(a.folder, { 'cache/later.txt': 'later\n', 'later.log': 'later\n', 'private/later.txt': 'later\n', 'sentinel.txt': 'after\n' })
    ;({ trees } = await waitConverged([a, b], { ignore: isIgnored }))
    expect(trees[1]!.get('sentinel.txt')?.type).toBe('file')
    expect([...trees[1]!.keys()].filter(isIgnored)).toEqual(['b.log', 'cache', 'cache/b-only'])
  })
})
