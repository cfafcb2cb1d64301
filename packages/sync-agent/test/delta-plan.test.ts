import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { blockCount, blockSizeFor, sumBlocks, sumKey, sumsFit, TARGET_BLOCKS, type ReadAt } from '../src/content/block-sums.js'
import { planDelta } from '../src/content/delta-plan.js'
import { MAX_SUM_BLOCK, MIN_SUM_BLOCK, SUM_BYTES } from '../src/protocol.js'

const KiB = 1024
const MiB = 1024 * KiB

function readerOf(bytes: Buffer): ReadAt {
  return async (buf, length, position) => bytes.copy(buf, 0, position, Math.min(bytes.length, position + length))
}

async function sumsOf(bytes: Buffer, blockSize: number): Promise<Buffer> {
  const sums: Buffer[] = []
  await sumBlocks(readerOf(bytes), bytes.length, blockSize, (sum) => void sums.push(sum))
  return Buffer.concat(sums)
}

async function hereOf(bytes: Buffer, blockSize: number): Promise<Map<string, number>> {
  const here = new Map<string, number>()
  await sumBlocks(readerOf(bytes), bytes.length, blockSize, (sum, i) => {
    if (!here.has(sumKey(sum))) here.set(sumKey(sum), i * blockSize)
  })
  return here
}

/** the new file as the plan puts it together: runs copied from `old`, the rest from `next` */
function assemble(plan: ReturnType<typeof planDelta>, old: Buffer, next: Buffer): Buffer {
  return Buffer.concat(plan.runs.map((r) => (r.source === 'here' ? old : next).subarray(r.at, r.at + r.length)))
}

describe('block sums', () => {
  it('chooses a power of two from 128 KiB to 16 MiB, about TARGET_BLOCKS blocks per file', () => {
    expect(blockSizeFor(1)).toBe(MIN_SUM_BLOCK)
    expect(blockSizeFor(TARGET_BLOCKS * MIN_SUM_BLOCK)).toBe(MIN_SUM_BLOCK)
    expect(blockSizeFor(TARGET_BLOCKS * MIN_SUM_BLOCK + 1)).toBe(2 * MIN_SUM_BLOCK)
    expect(blockSizeFor(2 * 1024 * MiB)).toBe(MiB)
    expect(blockSizeFor(2 ** 50)).toBe(MAX_SUM_BLOCK)
    for (const size of [1, 5 * MiB, 2 ** 31, TARGET_BLOCKS * MAX_SUM_BLOCK]) {
      const b = blockSizeFor(size)
      expect(b & (b - 1)).toBe(0)
      expect(blockCount(size, b)).toBeLessThanOrEqual(TARGET_BLOCKS)
      expect(sumsFit(size, b)).toBe(true)
    }
    // beyond 32 GiB the blocks stay at 16 MiB, more of them; one answer holds 65,536 (1 TiB)
    expect(blockCount(2 ** 40, blockSizeFor(2 ** 40))).toBe(65_536)
    expect(sumsFit(2 ** 40, MAX_SUM_BLOCK)).toBe(true)
    expect(sumsFit(2 ** 40 + 1, MAX_SUM_BLOCK)).toBe(false)
  })

  it('is the sha256 of each block, the last one shorter, read in pieces smaller than a block', async () => {
    const bytes = randomBytes(2 * MIN_SUM_BLOCK + 1000)
    const sums = await sumsOf(bytes, MIN_SUM_BLOCK)
    expect(sums.length).toBe(3 * SUM_BYTES)
    const expected = [bytes.subarray(0, MIN_SUM_BLOCK), bytes.subarray(MIN_SUM_BLOCK, 2 * MIN_SUM_BLOCK), bytes.subarray(2 * MIN_SUM_BLOCK)].map((b) => createHash('sha256').update(b).digest())
    expect(sums.equals(Buffer.concat(expected))).toBe(true)
    // a large block is read in pieces and still summed whole
    const big = randomBytes(3 * MiB)
    expect((await sumsOf(big, 2 * MiB)).subarray(0, SUM_BYTES).equals(createHash('sha256').update(big.subarray(0, 2 * MiB)).digest())).toBe(true)
  })

  it('stops where the file ends early (it changed while read) and says how far it got', async () => {
    const bytes = randomBytes(MIN_SUM_BLOCK + 10)
    let count = 0
    const got = await sumBlocks(readerOf(bytes), 3 * MIN_SUM_BLOCK, MIN_SUM_BLOCK, () => void count++)
    expect(got).toBe(bytes.length)
    expect(count).toBe(1)
  })
})

describe('delta plan', () => {
  const B = MIN_SUM_BLOCK

  it('an append: every old block is copied, only the new tail is fetched', async () => {
    const old = randomBytes(8 * B + 100)
    const next = Buffer.concat([old, randomBytes(1000)])
    const plan = planDelta(await sumsOf(next, B), next.length, B, await hereOf(old, B))
    expect(plan.runs).toEqual([
      { source: 'here', at: 0, length: 8 * B },
      { source: 'peer', at: 8 * B, length: 1100 }
    ])
    expect(plan.reusedBytes).toBe(8 * B)
    expect(plan.fetchBytes).toBe(1100)
    expect(assemble(plan, old, next).equals(next)).toBe(true)
  })

  it('an edit in place: only the block it touched is fetched', async () => {
    const old = randomBytes(6 * B)
    const next = Buffer.from(old)
    next.write('edited', 3 * B + 17)
    const plan = planDelta(await sumsOf(next, B), next.length, B, await hereOf(old, B))
    expect(plan.runs.map((r) => [r.source, r.at, r.length])).toEqual([['here', 0, 3 * B], ['peer', 3 * B, B], ['here', 4 * B, 2 * B]])
    expect(assemble(plan, old, next).equals(next)).toBe(true)
  })

  it('blocks that moved (whole blocks swapped, a block repeated) are found where they are', async () => {
    const blocks = [0, 1, 2, 3].map(() => randomBytes(B))
    const old = Buffer.concat(blocks)
    const next = Buffer.concat([blocks[2]!, blocks[3]!, blocks[0]!, blocks[0]!, randomBytes(B)])
    const plan = planDelta(await sumsOf(next, B), next.length, B, await hereOf(old, B))
    expect(plan.runs.map((r) => [r.source, r.at, r.length])).toEqual([['here', 2 * B, 2 * B], ['here', 0, B], ['here', 0, B], ['peer', 4 * B, B]])
    expect(assemble(plan, old, next).equals(next)).toBe(true)
  })

  it('nothing in common (bytes shifted by one): everything is fetched', async () => {
    const old = randomBytes(4 * B)
    const next = Buffer.concat([Buffer.from('x'), old])
    const plan = planDelta(await sumsOf(next, B), next.length, B, await hereOf(old, B))
    expect(plan).toEqual({ runs: [{ source: 'peer', at: 0, length: next.length }], reusedBytes: 0, fetchBytes: next.length })
  })

  it('refuses sums that do not fit the size (a peer\'s answer is checked before use)', () => {
    expect(() => planDelta(Buffer.alloc(2 * SUM_BYTES), 3 * B, B, new Map())).toThrow(RangeError)
    expect(() => planDelta(Buffer.alloc(SUM_BYTES + 1), B, B, new Map())).toThrow(RangeError)
  })
})
