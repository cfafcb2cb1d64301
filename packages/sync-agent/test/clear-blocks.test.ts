import Corestore from 'corestore'
import type Hypercore from 'hypercore'
import { describe, expect, it } from 'vitest'
import { clearKeepingTree } from '../src/replication/clear-blocks.js'
import { useStores } from './helpers/replicated-drives.js'

const { store, link } = useStores('sa-clear-')

/**
 * A writer's core, and one reader per length in `lengths` that verified the core up to that
 * length and then lost the writer; the writer then has `total` blocks.
 */
async function readersAt(lengths: number[], total: number): Promise<{ w: Corestore; writer: Hypercore; readers: Array<{ s: Corestore; core: Hypercore; length: number }> }> {
  const w = store()
  const writer = w.get({ name: 'blobs' })
  await writer.ready()
  const readers: Array<{ s: Corestore; core: Hypercore; length: number }> = []
  for (const length of lengths) {
    while (writer.length < length) await writer.append(Buffer.from(`block ${writer.length}`))
    const s = store()
    const core = s.get({ key: writer.key })
    await core.ready()
    const unlink = link(w, s)
    await core.update({ wait: true })
    expect(core.length).toBe(length)
    unlink()
    readers.push({ s, core, length })
  }
  while (writer.length < total) await writer.append(Buffer.from(`block ${writer.length}`))
  return { w, writer, readers }
}

/** Whether the reader, connected to the writer again, is served block `index` within `timeoutMs`. */
async function served(w: Corestore, reader: { s: Corestore; core: Hypercore }, index: number, timeoutMs: number): Promise<boolean> {
  link(w, reader.s)
  return reader.core.get(index, { timeout: timeoutMs }).then(
    (block) => block?.toString() === `block ${index}`,
    (err: { code?: string }) => {
      if (err.code !== 'REQUEST_TIMEOUT') throw err
      return false
    }
  )
}

describe('clearing our own blocks (clearKeepingTree)', () => {
  // the bug (fault suite CI round, session 28): Hypercore's clear of blocks 8–9 deletes the
  // tree nodes a peer at length 9 needs for an upgrade proof; its reads past 9 time out
  it("Hypercore's own clear leaves a peer at a length inside the cleared range unable to read past it", async () => {
    const { w, writer, readers } = await readersAt([9], 43)
    await writer.clear(8, 10)
    expect(await served(w, readers[0]!, 15, 1_000)).toBe(false)
  })

  it('keeps what an upgrade proof needs: the same peer is served, and all but the first block are cleared', async () => {
    const { w, writer, readers } = await readersAt([9], 43)
    expect(await clearKeepingTree(writer, 8, 10)).toBe(9)
    expect(await writer.has(8)).toBe(true)
    expect(await writer.has(9)).toBe(false)
    expect(await served(w, readers[0]!, 15, 5_000)).toBe(true)
  })

  it('clears from an odd block whose sibling is held, and keeps two when that sibling is cleared too', async () => {
    const { writer } = await readersAt([], 20)
    expect(await clearKeepingTree(writer, 3, 6)).toBe(3)
    expect(await writer.has(3, 6)).toBe(false)
    // block 7's sibling (6) is held: cleared from 7
    expect(await clearKeepingTree(writer, 7, 8)).toBe(7)
    // block 5's sibling (4) is cleared: 5 and 6 are kept
    expect(await clearKeepingTree(writer, 5, 7)).toBe(7)
    expect(await clearKeepingTree(writer, 12, 13)).toBe(13)
    expect(await writer.has(12)).toBe(true)
  })

  it('after many releases, a peer at any length is still served the newest block', async () => {
    const lengths = [2, 3, 5, 8, 9, 11, 12, 16, 17, 21]
    const { w, writer, readers } = await readersAt(lengths, 32)
    for (const [start, end] of [[1, 4], [4, 7], [8, 10], [10, 13], [13, 18], [18, 22], [24, 31]] as const) await clearKeepingTree(writer, start, end)
    for (const reader of readers) expect(await served(w, reader, 31, 5_000), `a peer at length ${reader.length}`).toBe(true)
  })
})

describe('clearKeepingTree, called for neighbouring ranges at once', () => {
  it('runs one clear at a time, so a neighbour cleared meanwhile cannot cost a tree node', async () => {
    const lengths = [5, 6, 7, 8, 9]
    const { w, writer, readers } = await readersAt(lengths, 16)
    // [5, 7) clears 5–6 (its sibling 4 is held); [7, 9) looked at 6 before that clear, unless
    // they run in turn: then 7 and 8 are kept
    const firsts = await Promise.all([clearKeepingTree(writer, 5, 7), clearKeepingTree(writer, 7, 9)])
    expect(firsts).toEqual([5, 9])
    for (const reader of readers) expect(await served(w, reader, 15, 5_000), `a peer at length ${reader.length}`).toBe(true)
  })
})
