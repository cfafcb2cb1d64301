import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { stays, until } from './helpers/until.ts'

/**
 * A read-only peer (secret from `secret readonly`) between two read-write peers that never
 * connect directly: it receives and relays everything (writers it relays are verified by the
 * proof that travels with them), publishes nothing, keeps its local edits to itself (listed
 * in status, not overwritten), and `sync-agent revert` restores the shared state.
 */
const read = (p: string) => fs.readFile(p, 'utf8').catch(() => null)

describe('read-only peers', () => {
  const harness = useHarness()

  it('receive and relay everything, publish nothing, revert restores the shared state', async () => {
    const secret = await newSecret()
    const ro = (await runCli(['secret', 'readonly', secret])).stdout.trim()
    expect(ro).toMatch(/^sa1ro-/)
    const a = await harness.agent({ name: 'a', secret })
    const r = await harness.agent({ name: 'r', secret: ro, peers: [a.address] })
    const b = await harness.agent({ name: 'b', secret, peers: [r.address] })
    await writeFiles(a.folder, { 'shared.txt': 'from A\n', 'keep.txt': 'keep\n', 'dir/deep.txt': 'deep\n' })
    await a.start()
    await r.start()
    await b.start()

    // B gets A's files through R, and A gets B's: R relays writers and their data
    await writeFiles(b.folder, { 'from-b.txt': 'from B\n' })
    await waitConverged([a, r, b])
    const [sa, sr, sb] = await Promise.all([a.status(), r.status(), b.status()])
    expect([sa.role, sr.role, sb.role]).toEqual(['rw', 'ro', 'rw'])
    expect([sa.members, sr.members, sb.members]).toEqual([2, 2, 2]) // R is no writer
    expect(sb.peers.map((p) => p.deviceId)).toEqual([sr.deviceId]) // B never met A
    expect(sa.peers.find((p) => p.deviceId === sr.deviceId)).toMatchObject({ connected: true, source: 'inbound', role: 'ro' })
    expect(sr.peers.find((p) => p.deviceId === sa.deviceId)).toMatchObject({ connected: true, source: 'configured', role: 'rw' })
    expect((await runCli(['status', '--control', r.control])).stdout).toMatch(/role: read-only/)

    // local changes on R stay local
    await fs.writeFile(path.join(r.folder, 'shared.txt'), 'edited on R\n')
    await fs.writeFile(path.join(r.folder, 'r-only.txt'), 'only on R\n')
    await fs.rm(path.join(r.folder, 'keep.txt'))
    const local = await until(async () => {
      const s = await r.status()
      return (s.localChanges as { count: number; sample: string[] } | null)?.count === 3 ? s.localChanges as { count: number; sample: string[] } : null
    }, { timeoutMs: 20_000, message: 'R lists its 3 local changes' })
    expect(local.sample.sort()).toEqual(['keep.txt', 'r-only.txt', 'shared.txt'])
    expect((await runCli(['status', '--control', r.control])).stdout).toMatch(/LOCAL\s+3 local changes not shared \(read-only\)[\s\S]*sync-agent revert/)
    await stays(async () => (await read(path.join(a.folder, 'shared.txt'))) === 'from A\n' && (await read(path.join(b.folder, 'keep.txt'))) === 'keep\n' && (await read(path.join(a.folder, 'r-only.txt'))) === null, {
      durationMs: 2_000,
      message: "R's changes reach neither A nor B"
    })

    // an update from A passes through R to B, but does not overwrite R's local edit
    await fs.writeFile(path.join(a.folder, 'shared.txt'), 'A again\n')
    await until(async () => (await read(path.join(b.folder, 'shared.txt'))) === 'A again\n', { timeoutMs: 20_000, message: "A's update reaches B via R" })
    expect(await read(path.join(r.folder, 'shared.txt'))).toBe('edited on R\n')

    // revert: R's folder is the shared one again
    const reverted = await runCli(['revert', '--control', r.control])
    expect(reverted.code).toBe(0)
    expect(reverted.stdout).toMatch(/restoring the shared state of 3 paths/)
    await waitConverged([a, r, b])
    expect(await read(path.join(r.folder, 'shared.txt'))).toBe('A again\n')
    expect(await read(path.join(r.folder, 'keep.txt'))).toBe('keep\n')
    expect(await read(path.join(r.folder, 'r-only.txt'))).toBeNull()
    expect((await r.status()).localChanges).toBeNull()
  })
})
