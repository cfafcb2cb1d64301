import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusReport } from '../packages/shared/dist/index.js'
import { newSecret, runCli } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged, waitLocalSettled } from './helpers/sync.ts'
import { sha256File } from './helpers/tree.ts'
import { until } from './helpers/until.ts'

/**
 * A large file changed in part (a backup archive that grew, a video re-tagged in place)
 * reaches the other node as the blocks that differ: the rest is copied from the version
 * that node already has. Measured on the connection: the bytes B receives for the change.
 */
const MiB = 1024 * 1024
const FILE = 'uploads/backups/site.tar'

describe('a changed large file', () => {
  const harness = useHarness()

  it('reaches the peer as the blocks that differ, byte for byte, and status counts what was reused', async () => {
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret })
    const original = randomBytes(24 * MiB)
    await fs.mkdir(path.join(a.folder, path.dirname(FILE)), { recursive: true })
    await fs.writeFile(path.join(a.folder, FILE), original)
    await a.start()
    await waitLocalSettled(a, 20_000)
    const b = await harness.agent({ name: 'b', secret, peers: [a.address] })
    await b.start()
    await waitConverged([a, b], { timeoutMs: 60_000 })
    const before = (await b.status()) as unknown as StatusReport
    expect(before.transfer.reusedBytes).toBe(0)

    // on A, in place: 100 bytes rewritten in the middle, 64 KiB appended (blocks of 128 KiB
    // at this size)
    const changed = Buffer.concat([original, randomBytes(64 * 1024)])
    changed.fill(7, 10 * MiB + 3, 10 * MiB + 103)
    const handle = await fs.open(path.join(a.folder, FILE), 'r+')
    await handle.write(changed, 0, changed.length, 0)
    await handle.close()
    const want = await sha256File(path.join(a.folder, FILE))
    await until(async () => (await sha256File(path.join(b.folder, FILE)).catch(() => null)) === want, { timeoutMs: 60_000, message: "B has A's changed file" })
    await waitConverged([a, b], { timeoutMs: 30_000 })

    const after = (await b.status()) as unknown as StatusReport
    const received = after.transfer.receivedBytes - before.transfer.receivedBytes
    // two blocks' worth and the sums (~6 KiB), plus the index and keep-alives: far from 24 MiB
    expect(received).toBeLessThan(2 * MiB)
    // every block but the one rewritten (more if A's watcher published the write half-way
    // and B fetched that version too: each reuses what it can)
    expect(after.transfer.reusedBytes).toBeGreaterThanOrEqual(24 * MiB - 128 * 1024)
    expect(after.errors.map((e) => e.code)).toEqual([])
    const human = await runCli(['status', '--control', b.control])
    expect(human.stdout).toMatch(/^network .*, \d+\.\d MiB of changed files reused from their older versions here$/m)
  })
})
