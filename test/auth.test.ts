import fs from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { newSecret } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { until } from './helpers/until.ts'

const AUTH_REJECTED = /"code":"E_AUTH"/

describe('peers with a different secret', () => {
  const harness = useHarness()

  it("an agent with a different valid secret is rejected and never receives A's files", async () => {
    const [secretA, secretB] = await Promise.all([newSecret(), newSecret()])
    const a = await harness.agent({ name: 'a', secret: secretA })
    await writeFiles(a.folder, { 'private.txt': 'for members only\n', 'dir/more.txt': 'more\n' })
    await a.start()
    const b = await harness.agent({ name: 'b', secret: secretB, peers: [a.address] })
    await b.start()

    await until(() => AUTH_REJECTED.test(a.stdout) || AUTH_REJECTED.test(b.stdout), {
      timeoutMs: 20_000,
      message: 'A or B logs the rejected connection with code E_AUTH'
    })
    const statusB = await b.status()
    expect(statusB.peers).toEqual([expect.objectContaining({ address: a.address, connected: false })])
    expect((await a.status()).peers.filter((p) => p.connected)).toEqual([])

    // positive control: an agent with A's secret does get the files from the same A ...
    const c = await harness.agent({ name: 'c', secret: secretA, peers: [a.address] })
    await c.start()
    await waitConverged([a, c])
    // ... and by then B still has nothing and is still not connected
    expect(await fs.readdir(b.folder)).toEqual([])
    expect((await b.status()).peers.some((p) => p.connected)).toBe(false)
  })
})
