import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged, waitLocalSettled } from './helpers/sync.ts'
import { until } from './helpers/until.ts'
import { newSecret } from './helpers/cli.ts'

/** `f.sync-conflict-YYYYMMDD-HHMMSS-<7 chars>.txt`, Syncthing's naming. */
const CONFLICT_NAME = /^f\.sync-conflict-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-[A-Za-z0-9]{7}\.txt$/


/** Names in `folder` that are f.txt or a conflict copy of it, and the contents of each. */
async function conflictSet(folder: string): Promise<{ winner: string; copies: Map<string, string> }> {
  const names = (await fs.readdir(folder)).filter((name) => name.startsWith('f.'))
  const copies = new Map<string, string>()
  for (const name of names) {
    if (name === 'f.txt') continue
    expect(name, `unexpected file next to f.txt`).toMatch(CONFLICT_NAME)
    copies.set(name, await fs.readFile(path.join(folder, name), 'utf8'))
  }
  return { winner: await fs.readFile(path.join(folder, 'f.txt'), 'utf8'), copies }
}

function expectPlausibleConflictTime(name: string, startedAtMs: number): void {
  const m = CONFLICT_NAME.exec(name)
  expect(m, name).not.toBeNull()
  const [, y, mo, d, h, mi, s] = m!.map(Number) as number[]
  const stampMs = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!)
  // local time or UTC: allow a day either way, but it must be a real, current date
  expect(Math.abs(stampMs - startedAtMs)).toBeLessThan(26 * 3600_000)
}

describe('conflicts', () => {
  const harness = useHarness()

  it('concurrent edits made while B is stopped: one winner on both sides, the other version kept as a conflict copy', async () => {
    const startedAtMs = Date.now()
    const [a, b] = await harness.startPair({ seedA: (folder) => writeFiles(folder, { 'f.txt': 'base\n' }) })
    await waitConverged([a, b])
    await b.stop()

    const versionA = 'edited on A while B was down\n'
    const versionB = 'edited on B while it was down, differently\n'
    await fs.writeFile(path.join(a.folder, 'f.txt'), versionA)
    await waitLocalSettled(a)
    await fs.writeFile(path.join(b.folder, 'f.txt'), versionB)

    await b.start()
    await waitConverged([a, b])
    const onA = await conflictSet(a.folder)
    const onB = await conflictSet(b.folder)
    expect(onB).toEqual(onA)
    expect(onA.copies.size, `conflict copies: ${[...onA.copies.keys()].join(', ')}`).toBe(1)
    const [[copyName, copyContent]] = [...onA.copies] as [[string, string]]
    expect(new Set([onA.winner, copyContent])).toEqual(new Set([versionA, versionB]))
    expectPlausibleConflictTime(copyName, startedAtMs)
  })

  it('concurrent edits while both run: same result on both sides, no version lost', async () => {
    const [a, b] = await harness.startPair({ seedA: (folder) => writeFiles(folder, { 'f.txt': 'base\n' }) })
    await waitConverged([a, b])
    const versionA = 'live edit on A\n'
    const versionB = 'live edit on B, a different length\n'
    await Promise.all([fs.writeFile(path.join(a.folder, 'f.txt'), versionA), fs.writeFile(path.join(b.folder, 'f.txt'), versionB)])
    await waitConverged([a, b])
    const onA = await conflictSet(a.folder)
    expect(await conflictSet(b.folder)).toEqual(onA)
    const contents = new Set([onA.winner, ...onA.copies.values()])
    expect(contents).toContain(versionA)
    expect(contents).toContain(versionB)
  })

  it('modify beats delete, in both directions, when the edits are made while B is stopped', async () => {
    const [a, b] = await harness.startPair({
      seedA: (folder) => writeFiles(folder, { 'deleted-on-a.txt': 'base 1\n', 'deleted-on-b.txt': 'base 2\n' })
    })
    await waitConverged([a, b])
    await b.stop()

    await fs.rm(path.join(a.folder, 'deleted-on-a.txt'))
    await fs.writeFile(path.join(a.folder, 'deleted-on-b.txt'), 'modified on A\n')
    await waitLocalSettled(a)
    await fs.writeFile(path.join(b.folder, 'deleted-on-a.txt'), 'modified on B\n')
    await fs.rm(path.join(b.folder, 'deleted-on-b.txt'))

    await b.start()
    await waitConverged([a, b])
    for (const agent of [a, b]) {
      expect(await fs.readFile(path.join(agent.folder, 'deleted-on-a.txt'), 'utf8'), agent.name).toBe('modified on B\n')
      expect(await fs.readFile(path.join(agent.folder, 'deleted-on-b.txt'), 'utf8'), agent.name).toBe('modified on A\n')
    }
  })

  it('a conflict copy goes when a third peer had deleted that very version before it heard of the conflict', async () => {
    // A base version everywhere; B edits it (C gets B's edit); A, offline, edits the base:
    // A's edit wins and B keeps its version as a conflict copy. C, offline all along, had
    // deleted B's version on purpose: that delete must not be undone by B's copy of it.
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret })
    const b = await harness.agent({ name: 'b', secret, peers: [a.address] })
    const c = await harness.agent({ name: 'c', secret, peers: [a.address, b.address] })
    await writeFiles(a.folder, { 'f.txt': 'base\n' })
    await Promise.all([a.start(), b.start(), c.start()])
    await waitConverged([a, b, c])

    await a.stop()
    await fs.writeFile(path.join(b.folder, 'f.txt'), 'edited on B\n')
    await waitConverged([b, c])
    await c.stop()
    await fs.writeFile(path.join(a.folder, 'f.txt'), 'edited on A while offline, later\n')
    await a.start()
    await waitConverged([a, b])
    const copies = (await conflictSet(b.folder)).copies
    expect([...copies.values()], 'B kept its version as a copy').toEqual(['edited on B\n'])

    await fs.rm(path.join(c.folder, 'f.txt'))
    await c.start()
    await until(async () => {
      for (const agent of [a, b, c]) expect((await conflictSet(agent.folder)).copies.size, agent.name).toBe(0)
      return true
    }, { timeoutMs: 30_000, message: 'the copy of the version C deleted is gone everywhere' })
    await waitConverged([a, b, c])
    for (const agent of [a, b, c]) {
      expect(await fs.readFile(path.join(agent.folder, 'f.txt'), 'utf8'), agent.name).toBe('edited on A while offline, later\n')
    }
  })

  it('the same bytes written on both sides while B is stopped: no copy, and one mtime on both', async () => {
    const [a, b] = await harness.startPair({ seedA: (folder) => writeFiles(folder, { 'keep.txt': 'k\n' }) })
    await waitConverged([a, b])
    await b.stop()
    const same = 'the same upload, made on both nodes\n'
    await fs.writeFile(path.join(a.folder, 'f.txt'), same)
    await fs.utimes(path.join(a.folder, 'f.txt'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'))
    await waitLocalSettled(a)
    await fs.writeFile(path.join(b.folder, 'f.txt'), same)
    await fs.utimes(path.join(b.folder, 'f.txt'), new Date('2026-05-06T07:08:09Z'), new Date('2026-05-06T07:08:09Z'))
    await b.start()
    await waitConverged([a, b])
    for (const agent of [a, b]) expect((await conflictSet(agent.folder)).copies.size, agent.name).toBe(0)
  })
})
