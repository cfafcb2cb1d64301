import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import Corestore from 'corestore'
import Hyperdrive from 'hyperdrive'
import { afterEach, describe, expect, it } from 'vitest'
import { OwnDriveWriter } from '../src/own-drive-writer.js'
import { until } from './helpers/until.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('sa-own-writer-')
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.()
})

/** Our drive in a store at `dir` (a new temp dir unless given: given, a restart) and its writer, ready. */
async function ownWriter(opts: { sweepDelayMs?: number; fullSweepDelayMs?: number; dir?: string } = {}): Promise<{ writer: OwnDriveWriter; drive: Hyperdrive; dir: string; stop: () => Promise<void> }> {
  const dir = opts.dir ?? tempDir()
  const store = new Corestore(dir)
  const drive = new Hyperdrive(store.namespace('own'), null)
  await drive.ready()
  closers.push(() => store.close())
  const writer = new OwnDriveWriter(drive, await drive.getBlobs(), opts)
  writer.ready()
  closers.push(() => writer.close())
  return { writer, drive, dir, stop: async () => (await writer.close(), await store.close()) }
}

/** bytes of the files under `dir` */
async function sizeOf(dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir, { recursive: true })) {
    const st = await stat(join(dir, name))
    if (st.isFile()) total += st.size
  }
  return total
}

const tag = (name: string) => ({ metadata: { v: 1 as const, name } }) as never
const tagOf = async (drive: Hyperdrive, key: string) => ((await drive.entry<{ name: string }>(key, { valueEncoding: 'json' }))?.value.metadata as { name: string } | null)?.name

// fault suite seed 5310: a conflict copy's withdrawal, decided on the copy's entry, was put
// after our newer entry for it (a program's rewrite of the copy) and replaced it
describe('OwnDriveWriter.putIf', () => {
  it('puts over the entry it was decided on', async () => {
    const { writer, drive } = await ownWriter()
    await writer.put('/copy.txt', tag('copy'))
    const put = await writer.putIf('/copy.txt', tag('withdrawn'), (current) => current !== null && current.seq === 1)
    expect(put).toBe(true)
    expect(await tagOf(drive, '/copy.txt')).toBe('withdrawn')
  })

  it('does not replace a put made after the decision, even one queued into the same flush', async () => {
    const { writer, drive } = await ownWriter()
    await writer.put('/copy.txt', tag('copy'))
    const decidedOn = (await drive.entry('/copy.txt'))?.seq
    // both queued in one tick: one flush, the edit first
    const [, put] = await Promise.all([
      writer.put('/copy.txt', tag('edited')),
      writer.putIf('/copy.txt', tag('withdrawn'), (current) => current?.seq === decidedOn)
    ])
    expect(put).toBe(false)
    expect(await tagOf(drive, '/copy.txt')).toBe('edited')
    // and in a later flush
    expect(await writer.putIf('/copy.txt', tag('withdrawn'), (current) => current?.seq === decidedOn)).toBe(false)
    expect(await tagOf(drive, '/copy.txt')).toBe('edited')
  })
})

describe('OwnDriveWriter.release', () => {
  it('clears the blocks of a blob that has them to itself, and never a small file\'s shared block', async () => {
    const { writer } = await ownWriter()
    const small = await writer.storeBuffer(Buffer.alloc(1000, 1))
    const other = await writer.storeBuffer(Buffer.alloc(2000, 2))
    const large = await writer.storeBuffer(Buffer.alloc(3 * 1024 * 1024, 3))
    await writer.put('/flush', tag('flush'))
    const blobs = (writer as unknown as { blobs: { core: { has(s: number, e?: number): Promise<boolean> } } }).blobs.core
    const range = (b: typeof large.blob) => [b.blockOffset, b.blockOffset + b.blockLength] as const
    expect(small.blob.blockOffset).toBe(other.blob.blockOffset) // packed together
    expect(await blobs.has(...range(large.blob))).toBe(true)

    expect(await writer.release(large.blob)).toBe(3 * 1024 * 1024)
    expect(await blobs.has(large.blob.blockOffset)).toBe(false)
    expect(await blobs.has(large.blob.blockOffset + large.blob.blockLength - 1)).toBe(false)

    // the shared block holds another file's bytes: kept
    expect(await writer.release(small.blob)).toBe(0)
    expect(await blobs.has(...range(other.blob))).toBe(true)
    // later files still land after the cleared blocks
    const next = await writer.storeBuffer(Buffer.alloc(200 * 1024, 4))
    await writer.put('/flush', tag('flush again'))
    expect(next.blob.blockOffset).toBe(large.blob.blockOffset + large.blob.blockLength)
    expect(await blobs.has(...range(next.blob))).toBe(true)
  })
})

describe("OwnDriveWriter: small files' shared blocks", () => {
  const KiB = 1024
  const held = (writer: OwnDriveWriter) => {
    const core = (writer as unknown as { blobs: { core: { has(s: number): Promise<boolean> } } }).blobs.core
    return (block: number) => core.has(block)
  }
  /** stores a small file of `n` KiB (alone in its pack when over half a pack; not put) */
  const small = (writer: OwnDriveWriter, fill: number, n = 40) => writer.storeBuffer(Buffer.alloc(n * KiB, fill))
  /**
   * a local change over each file: new content put, then the old blobs released (as reconcile
   * does), in one turn: a sweep sees all of them or none
   */
  async function replaceAll(writer: OwnDriveWriter, files: Record<string, Awaited<ReturnType<typeof small>>>): Promise<void> {
    let fill = 100
    for (const key of Object.keys(files)) {
      const next = await small(writer, fill++)
      await writer.put(key, { blob: next.blob, metadata: { v: 1, name: 'new' } as never })
    }
    await Promise.all(Object.values(files).map((old) => writer.release(old.blob)))
  }

  // a fresh core: blocks 0, 1, 2, 3. clearKeepingTree keeps an even first block of a run
  it('frees a block once no entry names a file in it; never one a file handed out but not yet put is in', async () => {
    const { writer, drive } = await ownWriter({ sweepDelayMs: 60_000 })
    const a = await small(writer, 1)
    const b = await small(writer, 2)
    const pending = await small(writer, 3, 1) // packed with b, never put until later
    const c = await small(writer, 4)
    const d = await small(writer, 5)
    for (const [key, f] of Object.entries({ '/a': a, '/b': b, '/c': c, '/d': d })) await writer.put(key, { blob: f.blob, metadata: tag(key) as never })
    expect([a, b, pending, c, d].map((f) => f.blob.blockOffset)).toEqual([0, 1, 1, 2, 3])
    await replaceAll(writer, { '/a': a, '/b': b, '/c': c, '/d': d })
    const has = held(writer)
    // released: nothing cleared before the sweep
    expect(await has(3)).toBe(true)
    // runs [0] and [2, 3]: 0 and 2 kept for the tree, 3 cleared; 1 holds the pending file
    expect(await writer.sweep()).toBe(1)
    expect(await Promise.all([0, 1, 2, 3].map(has))).toEqual([true, true, true, false])
    // named now, then replaced: its block goes (run [1], its sibling 0 held)
    await writer.put('/pending', { blob: pending.blob, metadata: tag('pending') as never })
    expect(await writer.sweep()).toBe(0)
    expect(await has(1)).toBe(true)
    await replaceAll(writer, { '/pending': pending })
    expect(await writer.sweep()).toBe(1)
    expect(await has(1)).toBe(false)
    // every entry's blocks are still here
    for await (const entry of drive.entries()) if (entry.value.blob) expect(await has(entry.value.blob.blockOffset), entry.key).toBe(true)
  })

  it('keeps a block another entry still names (a conflict copy of a replaced version)', async () => {
    const { writer } = await ownWriter({ sweepDelayMs: 60_000 })
    const files = { '/a': await small(writer, 1), '/b': await small(writer, 2), '/c': await small(writer, 3), '/d': await small(writer, 4) }
    for (const [key, f] of Object.entries(files)) await writer.put(key, { blob: f.blob, metadata: tag(key) as never })
    await writer.put('/b.sync-conflict-20261202-120000-ABCDEFG', { blob: files['/b'].blob, metadata: tag('copy') as never })
    await replaceAll(writer, files)
    const has = held(writer)
    await writer.sweep()
    // 1 is the copy's; 3 is cleared (run [2, 3])
    expect(await Promise.all([0, 1, 2, 3].map(has))).toEqual([true, true, true, false])
  })

  it('sweeps by itself once released blocks wait; a released file\'s block that a named file shares stays', async () => {
    const { writer, drive } = await ownWriter({ sweepDelayMs: 20 })
    const files = { '/a': await small(writer, 1), '/b': await small(writer, 2), '/c': await small(writer, 3), '/d': await small(writer, 4) }
    for (const [key, f] of Object.entries(files)) await writer.put(key, { blob: f.blob, metadata: tag(key) as never })
    // stored, changed before it was put, released (as reconcile does), before its block 4 was
    // written: that block then takes /a's next content too
    const gone = await small(writer, 9, 1)
    await writer.release(gone.blob)
    await replaceAll(writer, files)
    const has = held(writer)
    await until(() => (writer as unknown as { sweeper: { freedBlocks: number } }).sweeper.freedBlocks >= 1, 'the sweeper ran', 10_000)
    expect(await Promise.all([0, 1, 2, 3, 4].map(has))).toEqual([true, false, false, false, true])
    expect(gone.blob.blockOffset).toBe(4)
    expect((await drive.entry('/a'))?.value.blob?.blockOffset).toBe(4)
  })

  // cleared blocks stay in RocksDB's files until it compacts them, which a store that takes
  // few writes may not do for a long time
  it('has the storage compact once enough was cleared: the store shrinks', async () => {
    const { writer, dir } = await ownWriter({ sweepDelayMs: 20 })
    const big = await writer.storeBuffer(Buffer.from(Buffer.alloc(24 * 1024 * 1024).map((_, i) => i % 251)))
    await writer.put('/big.bin', { blob: big.blob, metadata: tag('big') as never })
    const before = await sizeOf(dir)
    expect(before).toBeGreaterThan(24 * 1024 * 1024)
    await writer.put('/big.bin', { blob: null, metadata: tag('deleted') as never })
    expect(await writer.release(big.blob)).toBeGreaterThan(20 * 1024 * 1024)
    const sweeper = (writer as unknown as { sweeper: { compactions: number } }).sweeper
    await until(() => sweeper.compactions >= 1, 'the storage was compacted', 20_000)
    expect(await sizeOf(dir)).toBeLessThan(before / 2)
  })

  // a container stopped right after a plugin update, before the sweep: the old files' blocks
  // are taken by the full sweep after the restart (no list of them outlives the stop)
  it('what is left to sweep at a stop is swept after the restart', async () => {
    const first = await ownWriter({ sweepDelayMs: 60_000 })
    const files = { '/a': await small(first.writer, 1), '/b': await small(first.writer, 2), '/c': await small(first.writer, 3), '/d': await small(first.writer, 4) }
    for (const [key, f] of Object.entries(files)) await first.writer.put(key, { blob: f.blob, metadata: tag(key) as never })
    await replaceAll(first.writer, files)
    await first.stop()

    const again = await ownWriter({ sweepDelayMs: 60_000, fullSweepDelayMs: 5, dir: first.dir })
    const sweeper = (again.writer as unknown as { sweeper: { freedBlocks: number } }).sweeper
    await until(() => sweeper.freedBlocks >= 3, 'the full sweep after the restart freed the old blocks', 10_000)
    expect(await Promise.all([0, 1, 2, 3].map(held(again.writer)))).toEqual([true, false, false, false])
    for await (const entry of again.drive.entries()) if (entry.value.blob) expect(await held(again.writer)(entry.value.blob.blockOffset), entry.key).toBe(true)
  })
})

/**
 * The full sweep (at each start, and when a withdrawn blob is too large to list) clears every
 * block of ours no entry names, whatever released it; it must never take blocks a file handed
 * out but not yet put holds: a large file stored from memory, one being streamed, a touch's
 * blob kept for its put.
 */
describe('OwnDriveWriter full sweep', () => {
  const MiB = 1024 * 1024
  const held = (writer: OwnDriveWriter) => {
    const core = (writer as unknown as { blobs: { core: { has(s: number, e?: number): Promise<boolean> } } }).blobs.core
    return (start: number, end = start + 1) => core.has(start, end)
  }
  const big = (fill: number, mib = 3) => Buffer.alloc(mib * MiB, fill)

  it('clears what nothing names: a file that changed while it was streamed, a withdrawn large blob, a leaked pack', async () => {
    const { writer, drive, dir } = await ownWriter({ sweepDelayMs: 60_000 })
    const keep = await writer.storeBuffer(big(1))
    await writer.put('/keep.bin', { blob: keep.blob, metadata: tag('keep') })
    await writeFile(join(dir, 'changing.bin'), big(2))
    // its size read differs from the one expected: its blocks are in the core, no id handed out
    expect(await writer.storeFile(join(dir, 'changing.bin'), 3 * MiB + 1)).toBe(null)
    const withdrawn = await writer.storeBuffer(big(3))
    await writer.put('/lost.bin', { blob: withdrawn.blob, metadata: tag('lost') })
    await writer.put('/lost.bin', { blob: null, metadata: tag('withdrawn') })
    const length = (drive as unknown as { blobs: { core: { length: number } } }).blobs.core.length
    expect(length).toBe(9)
    const cleared = await writer.sweep({ full: true })
    const has = held(writer)
    expect(await has(0, 3), 'the named file').toBe(true)
    // blocks 3-8 named by nothing: all but what the Merkle tree needs (clear-blocks.ts)
    expect(cleared).toBeGreaterThanOrEqual(5)
    expect(await has(4, 9)).toBe(false)
    expect(await writer.sweep({ full: true })).toBe(0)
  })

  it('never takes a large file stored from memory whose entry is not put yet', async () => {
    const { writer, drive } = await ownWriter({ sweepDelayMs: 60_000 })
    const large = await writer.storeBuffer(big(1))
    // another file's put flushes the queue: the large file's blocks are written, unnamed
    const other = await writer.storeBuffer(Buffer.alloc(1000, 2))
    await writer.put('/other.php', { blob: other.blob, metadata: tag('other') })
    expect((drive as unknown as { blobs: { core: { length: number } } }).blobs.core.length).toBe(4)
    await writer.sweep({ full: true })
    await writer.put('/large.bin', { blob: large.blob, metadata: tag('large') })
    expect(await held(writer)(large.blob.blockOffset, large.blob.blockOffset + large.blob.blockLength)).toBe(true)
  })

  it('never takes the blocks of a file being streamed', async () => {
    const { writer, dir } = await ownWriter({ sweepDelayMs: 60_000 })
    await writeFile(join(dir, 'big.bin'), big(1, 40))
    const core = (writer as unknown as { blobs: { core: { append(b: Buffer[]): Promise<unknown> } } }).blobs.core
    const append = core.append.bind(core)
    let sweptMidStream = false
    // after the stream's first 16 blocks are written, a full sweep runs
    core.append = async (blocks: Buffer[]) => {
      const out = await append(blocks)
      if (!sweptMidStream) {
        sweptMidStream = true
        await writer.sweep({ full: true })
      }
      return out
    }
    const stored = await writer.storeFile(join(dir, 'big.bin'), 40 * MiB)
    expect(sweptMidStream).toBe(true)
    await writer.put('/big.bin', { blob: stored!.blob, metadata: tag('big') })
    expect(stored!.blob.blockLength).toBe(40)
    expect(await held(writer)(0, 40)).toBe(true)
  })

  it('keeps a touch\'s blob until its put, even withdrawn meanwhile; waits for a sweep under way; refuses one already swept', async () => {
    const { writer } = await ownWriter({ sweepDelayMs: 60_000 })
    const has = held(writer)
    const v = await writer.storeBuffer(big(1))
    const range = [v.blob.blockOffset, v.blob.blockOffset + v.blob.blockLength] as const
    await writer.put('/a.bin', { blob: v.blob, metadata: tag('v') })
    // decided on our entry; the entry is withdrawn (a conflict lost, no copy) before the keep
    await writer.put('/a.bin', { blob: null, metadata: tag('withdrawn') })
    expect(await writer.keep(v.blob)).toBe(true)
    await writer.sweep({ full: true })
    await writer.put('/a.bin', { blob: v.blob, metadata: tag('touched') })
    expect(await has(...range)).toBe(true)

    // withdrawn and swept before the touch: not kept (its bytes are stored again)
    await writer.put('/a.bin', { blob: null, metadata: tag('withdrawn again') })
    expect(await writer.sweep({ full: true })).toBeGreaterThan(0)
    expect(await writer.keep(v.blob)).toBe(false)

    // a sweep under way took its pins already: the keep waits for its end, then pins (or finds
    // the blob gone). /b.bin withdrawn: the sweep under way takes its blob, so it cannot be kept
    const w = await writer.storeBuffer(big(2))
    await writer.put('/b.bin', { blob: w.blob, metadata: tag('w') })
    await writer.put('/b.bin', { blob: null, metadata: tag('withdrawn') })
    let swept = false
    const sweep = writer.sweep({ full: true }).then(() => (swept = true))
    expect(await writer.keep(w.blob)).toBe(false)
    expect(swept, 'the keep waited for the sweep').toBe(true)
    await sweep
    // /c.bin, named while a sweep runs: kept once it ended; withdrawn then, the next sweep leaves it
    const x = await writer.storeBuffer(big(3))
    await writer.put('/c.bin', { blob: x.blob, metadata: tag('x') })
    const during = writer.sweep({ full: true })
    expect(await writer.keep(x.blob)).toBe(true)
    await during
    await writer.put('/c.bin', { blob: null, metadata: tag('withdrawn') })
    await writer.sweep({ full: true })
    await writer.put('/c.bin', { blob: x.blob, metadata: tag('touched') })
    expect(await has(x.blob.blockOffset, x.blob.blockOffset + x.blob.blockLength)).toBe(true)
  })

  it('runs by itself after a start', async () => {
    const first = await ownWriter({ sweepDelayMs: 60_000, fullSweepDelayMs: 60_000 })
    const v = await first.writer.storeBuffer(big(1))
    await first.writer.put('/a.bin', { blob: v.blob, metadata: tag('v') })
    // withdrawn, a copy of it never made: nothing lists its blocks
    await first.writer.put('/a.bin', { blob: null, metadata: tag('withdrawn') })
    await first.stop()
    const again = await ownWriter({ dir: first.dir, sweepDelayMs: 5, fullSweepDelayMs: 5 })
    const sweeper = (again.writer as unknown as { sweeper: { freedBlocks: number } }).sweeper
    await until(() => sweeper.freedBlocks > 0, 'the full sweep after the start cleared something', 10_000)
    expect(await held(again.writer)(1, 3)).toBe(false)
  })
})
