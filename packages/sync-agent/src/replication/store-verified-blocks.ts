import type Hypercore from 'hypercore'
import BitInterlude from 'hypercore/lib/bit-interlude.js'
import type { TreeNode, TreeNodeSet } from './index-snapshot.js'

/**
 * Stores blocks 0..n-1 of a replicated core, with every node of their Merkle tree, after the
 * caller checked that they hash to the tree the writer signed for length n (index-snapshot.ts).
 * Hypercore then holds them as if they had been replicated one by one: they are read here
 * without a round trip, passed on to other peers, and never fetched again.
 *
 * This is Hypercore's own commit of verified blocks (`_verifyShared` in hypercore/lib/core.js,
 * 11.39): under the core's mutex, one write batch with the blocks, the tree nodes and the
 * bitfield pages, then the in-memory bitfield, the contiguous length and the replicator's
 * "have". It uses Hypercore internals: when they are not as expected it stores nothing and
 * returns false (the caller lets Hypercore replicate the blocks instead).
 *
 * Unlike Hypercore's commit it writes in chunks: the blocks and tree nodes of `chunkBlocks`
 * blocks per write, then the bitfield pages in a last one. One write of 100,000 blocks and
 * their 200,000 nodes held every key and value three times at once (Hypercore's change list,
 * RocksDB's batch, its memtable): B's RSS rose by ~190 MiB for it. Until the last write no
 * block is marked held, so a reader (which asks the bitfield first) sees none of them, and a
 * crash in between leaves blocks and nodes that are right but unmarked: Hypercore fetches
 * those blocks again and writes them over.
 */
const STORE_CHUNK_BLOCKS = 4096

interface CoreInternals {
  state: {
    mutex: { lock(): Promise<void>; unlock(): void }
    createWriteBatch(): { putBlock(index: number, value: Buffer): void; putTreeNode(node: TreeNode): void }
    flush(): Promise<boolean>
    _clearActiveBatch(): void
  }
  header: { tree: { length: number } }
  bitfield: object
  replicator: { onhave(start: number, length: number, drop: boolean): void }
  hintsChanged: boolean
  _setBitfieldRanges(start: number, end: number, value: boolean): void
  updateContiguousLength(bitfield: { start: number; length: number; drop: boolean }): void
  flushHints(): Promise<void>
}

function internalsOf(session: Hypercore): CoreInternals | null {
  const core = (session as unknown as { core?: Partial<CoreInternals> }).core
  if (!core?.state || !core.header?.tree || !core.bitfield || !core.replicator) return null
  const fns = [core.state.createWriteBatch, core.state.flush, core.state._clearActiveBatch, core._setBitfieldRanges, core.updateContiguousLength, core.flushHints]
  if (fns.some((f) => typeof f !== 'function') || typeof core.state.mutex?.lock !== 'function') return null
  return core as CoreInternals
}

export async function storeVerifiedBlocks(session: Hypercore, blocks: readonly Buffer[], nodes: TreeNodeSet, chunkBlocks = STORE_CHUNK_BLOCKS): Promise<boolean> {
  if (!Number.isInteger(chunkBlocks) || chunkBlocks < 1) throw new RangeError(`chunkBlocks must be a positive integer, not ${chunkBlocks}`)
  const core = internalsOf(session)
  if (!core) return false
  await core.state.mutex.lock()
  let batched = false
  try {
    // the core must already know (signed) the length these blocks end at
    if (core.header.tree.length < blocks.length) return false
    for (let start = 0; start < blocks.length; start += chunkBlocks) {
      const end = Math.min(blocks.length, start + chunkBlocks)
      const tx = core.state.createWriteBatch()
      batched = true
      // leaf i is node 2i and a parent lies between its leaves: the nodes go by flat index (all
      // of them are below 2n), each in one chunk; all are written before any block is marked
      for (const node of nodes.between(2 * start, 2 * end)) tx.putTreeNode(node)
      for (let i = start; i < end; i++) tx.putBlock(i, blocks[i] as Buffer)
      batched = false
      if (!(await core.state.flush())) return false
    }
    const tx = core.state.createWriteBatch()
    batched = true
    const bits = new BitInterlude()
    bits.setRange(0, blocks.length, true)
    const ranges = bits.flush(tx, core.bitfield)
    batched = false
    if (!(await core.state.flush())) return false
    for (const { start, end, value } of ranges) core._setBitfieldRanges(start, end, value)
    core.updateContiguousLength({ start: 0, length: blocks.length, drop: false })
    core.replicator.onhave(0, blocks.length, false)
    if (core.hintsChanged) await core.flushHints()
    return true
  } finally {
    if (batched) core.state._clearActiveBatch()
    core.state.mutex.unlock()
  }
}
