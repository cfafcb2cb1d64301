import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret } from '../helpers/cli.ts'
import { useHarness } from '../helpers/harness.ts'
import { waitConverged, waitTree } from '../helpers/sync.ts'

/**
 * inotify's watch limit exhausted: agent b runs in its own user namespace whose
 * max_inotify_watches is 6 (the host's limit is not touched), with 20 directories to watch.
 * It must say so clearly and find changes by periodic rescans instead.
 */
const DIRS = 20

describe('inotify watch limit reached', () => {
  const harness = useHarness()

  it('warns with E_WATCH_LIMIT and falls back to periodic rescans that still publish local changes', async () => {
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret })
    const b = await harness.agent({
      name: 'b',
      secret,
      peers: [a.address],
      wrapper: ['unshare', '--user', '--map-root-user', 'sh', '-c', 'echo 6 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"']
    })
    for (let i = 0; i < DIRS; i++) {
      await fs.mkdir(path.join(b.folder, `d${i}`), { recursive: true })
      await fs.writeFile(path.join(b.folder, `d${i}`, 'f.txt'), `file ${i}\n`)
    }
    await a.start()
    await b.start()
    const line = await b.waitForLog(/E_WATCH_LIMIT/)
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', code: 'E_WATCH_LIMIT' })
    expect(line).toMatch(/max_user_watches/)
    const status = await b.status()
    expect((status.errors as Array<{ code: string }>).map((e) => e.code)).toContain('E_WATCH_LIMIT')
    await waitConverged([a, b], { timeoutMs: 60_000 })

    // a change deep in a directory b cannot watch reaches a through the fallback rescan
    await fs.writeFile(path.join(b.folder, `d${DIRS - 1}`, 'late.txt'), 'written after start\n')
    await waitTree(a, (tree) => tree.has(`d${DIRS - 1}/late.txt`), { timeoutMs: 40_000, message: 'the change made on b arrived' })
    // and remote changes still land on b
    await fs.writeFile(path.join(a.folder, 'd0', 'from-a.txt'), 'from a\n')
    await waitConverged([a, b], { timeoutMs: 40_000 })
    expect(b.isRunning).toBe(true)
  }, 180_000)
})
