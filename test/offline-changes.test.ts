import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { exists, writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged, waitLocalSettled } from './helpers/sync.ts'
import { sha256 } from './helpers/tree.ts'


/** Proves sync flows again after restarts: a new file on A must reach B. */
async function syncSentinel(a: Agent, b: Agent, name: string): Promise<void> {
  await writeFiles(a.folder, { [name]: `${name}\n` })
  const { trees } = await waitConverged([a, b], { timeoutMs: 30_000 })
  expect(trees[1]!.get(name)).toMatchObject({ type: 'file', sha256: sha256(`${name}\n`) })
}

async function expectGraceful(agent: Agent): Promise<void> {
  expect(await agent.stop()).toEqual({ code: 0, signal: null })
}

describe('changes and deletes across restarts', () => {
  const harness = useHarness()

  it('a delete stays deleted after both agents restart (twice, in both orders)', async () => {
    const [a, b] = await harness.startPair({
      seedA: (folder) => writeFiles(folder, { 'keep.txt': 'keep\n', 'doomed.txt': 'doomed\n', 'dir/doomed2.txt': 'doomed too\n' })
    })
    await waitConverged([a, b])
    await fs.rm(path.join(a.folder, 'doomed.txt'))
    await fs.rm(path.join(a.folder, 'dir'), { recursive: true })
    const { trees } = await waitConverged([a, b])
    expect(trees[1]!.has('doomed.txt')).toBe(false)
    expect(trees[1]!.has('dir/doomed2.txt')).toBe(false)

    await expectGraceful(b)
    await expectGraceful(a)
    await a.start()
    await b.start()
    await syncSentinel(a, b, 'sentinel-1.txt')

    await expectGraceful(a)
    await expectGraceful(b)
    await b.start()
    await a.start()
    await syncSentinel(a, b, 'sentinel-2.txt')

    for (const agent of [a, b]) {
      expect(await exists(path.join(agent.folder, 'doomed.txt')), `doomed.txt on ${agent.name}`).toBe(false)
      expect(await exists(path.join(agent.folder, 'dir/doomed2.txt')), `dir/doomed2.txt on ${agent.name}`).toBe(false)
      expect(await fs.readFile(path.join(agent.folder, 'keep.txt'), 'utf8')).toBe('keep\n')
    }
  })

  it('changes made on A while B is stopped (create, modify, delete) reach B when it starts, without resurrection', async () => {
    const [a, b] = await harness.startPair({
      seedA: (folder) => writeFiles(folder, { 'x.txt': 'x\n', 'y.txt': 'y\n', 'sub/z.txt': 'z\n' })
    })
    await waitConverged([a, b])
    await expectGraceful(b)

    await fs.rm(path.join(a.folder, 'x.txt'))
    await fs.rm(path.join(a.folder, 'sub'), { recursive: true })
    await fs.writeFile(path.join(a.folder, 'y.txt'), 'y, modified while B was down\n')
    await writeFiles(a.folder, { 'new-on-a.txt': 'new\n' })
    await waitLocalSettled(a)

    await b.start()
    const { trees } = await waitConverged([a, b])
    const treeB = trees[1]!
    expect(treeB.has('x.txt')).toBe(false)
    expect(treeB.has('sub/z.txt')).toBe(false)
    expect(treeB.get('y.txt')).toMatchObject({ sha256: sha256('y, modified while B was down\n') })
    expect(treeB.get('new-on-a.txt')).toMatchObject({ sha256: sha256('new\n') })
  })

  it('a file deleted on A while B is stopped, with A restarted too, is deleted on B when it starts', async () => {
    const [a, b] = await harness.startPair({ seedA: (folder) => writeFiles(folder, { 'gone.txt': 'gone\n', 'stays.txt': 'stays\n' }) })
    await waitConverged([a, b])
    await expectGraceful(b)
    await fs.rm(path.join(a.folder, 'gone.txt'))
    await waitLocalSettled(a)
    await expectGraceful(a)
    await a.start()
    await b.start()
    await syncSentinel(a, b, 'sentinel.txt')
    expect(await exists(path.join(b.folder, 'gone.txt'))).toBe(false)
    expect(await exists(path.join(a.folder, 'gone.txt'))).toBe(false)
  })

  it("changes made in B's folder while B is stopped are found at start and synced to A", async () => {
    const [a, b] = await harness.startPair({
      seedA: (folder) => writeFiles(folder, { 'm.txt': 'original\n', 'd.txt': 'delete me\n', 'deep/dir/e.txt': 'e\n' })
    })
    await waitConverged([a, b])
    await expectGraceful(b)

    await writeFiles(b.folder, {
      'created-offline.txt': 'created while B was down\n',
      'offline dir/nested/n.txt': 'nested\n',
      'tool.sh': { content: '#!/bin/sh\n', mode: 0o755 }
    })
    await fs.writeFile(path.join(b.folder, 'm.txt'), 'modified while B was down\n')
    await fs.rm(path.join(b.folder, 'd.txt'))
    await fs.rm(path.join(b.folder, 'deep'), { recursive: true })

    await b.start()
    const { trees } = await waitConverged([a, b])
    const treeA = trees[0]!
    expect(treeA.get('created-offline.txt')).toMatchObject({ sha256: sha256('created while B was down\n') })
    expect(treeA.get('offline dir/nested/n.txt')).toMatchObject({ sha256: sha256('nested\n') })
    expect(treeA.get('tool.sh')).toMatchObject({ execBits: 0o111 })
    expect(treeA.get('m.txt')).toMatchObject({ sha256: sha256('modified while B was down\n') })
    expect(treeA.has('d.txt')).toBe(false)
    expect(treeA.has('deep/dir/e.txt')).toBe(false)
  })
})
