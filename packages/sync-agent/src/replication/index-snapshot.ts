import crypto from 'hypercore-crypto'
import { Node as BeeNode } from 'hyperbee/lib/messages.js'
import { SyncError } from '@sync-agent/shared'

/**
 * A member drive's whole index read from its raw Hypercore blocks, checked against the drive's
 * signed Merkle tree, without Hypercore's per-block replication (index-block-fetcher.ts).
 *
 * Hypercore hashes each block as it is stored (encrypted) into a Merkle tree whose root hash,
 * at each length, the drive's writer signs. A node that holds that signed hash for length n
 * (from an ordinary replication upgrade: one message) and gets blocks 0..n-1 from anyone can
 * recompute the tree and so tell whether they are exactly the drive's: the same check
 * Hypercore makes block by block, made once for all of them. Only then are the blocks
 * decrypted and decoded.
 *
 * The blocks are Hyperbee nodes (block 0 is Hyperbee's header): each one a key and its new
 * value (null: deleted), appended in order by the drive's single writer, so the last node of
 * each key is what the drive holds for it at length n.
 */

export interface TreeNode {
  index: number
  size: number
  hash: Buffer
}

/** Bytes of a tree node's hash (BLAKE2b-256, Hypercore's). */
const HASH_BYTES = 32

/**
 * Every node of the Merkle tree over up to `leaves` blocks, packed by flat-tree index: a hash
 * and a size each, with no object per node. At 100,000 blocks the 200,000 nodes took ~40 MiB
 * of heap as objects holding their own Buffers; packed they take 8 MiB.
 */
export class TreeNodeSet {
  private readonly hashes: Buffer
  private readonly sizes: Float64Array
  private readonly present: Uint8Array
  count = 0

  constructor(readonly leaves: number) {
    this.hashes = Buffer.alloc(2 * leaves * HASH_BYTES)
    this.sizes = new Float64Array(2 * leaves)
    this.present = new Uint8Array(2 * leaves)
  }

  set(node: TreeNode): void {
    // a tree of n leaves has every node below flat index 2n
    if (node.index >= this.present.length || node.hash.byteLength !== HASH_BYTES) throw new RangeError(`tree node ${node.index} does not fit a tree of ${this.leaves} leaves`)
    node.hash.copy(this.hashes, node.index * HASH_BYTES)
    this.sizes[node.index] = node.size
    if (!this.present[node.index]) this.count++
    this.present[node.index] = 1
  }

  /** The nodes with a flat index in [from, to), in order (each hash a view into the set). */
  *between(from: number, to: number): Generator<TreeNode> {
    for (let index = Math.max(0, from); index < Math.min(to, this.present.length); index++) {
      if (this.present[index]) yield { index, size: this.sizes[index] as number, hash: this.hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES) }
    }
  }
}

/**
 * Hypercore's Merkle tree over blocks added in order (flat-tree indexes: leaf i is 2i). Keeps
 * only the roots of the full subtrees so far, like a binary counter: memory is O(log n).
 */
export class TreeHasher {
  private readonly roots: Array<TreeNode & { depth: number }> = []
  length = 0

  /** `nodes`: also keep every node of the tree (leaves and parents), to store them */
  constructor(readonly nodes: TreeNodeSet | null = null) {}

  add(block: Uint8Array): void {
    let node = { index: 2 * this.length, size: block.byteLength, hash: crypto.data(block) as Buffer, depth: 0 }
    this.length++
    this.nodes?.set(node)
    for (;;) {
      const left = this.roots[this.roots.length - 1]
      if (!left || left.depth !== node.depth) break
      this.roots.pop()
      // siblings at one depth: their parent's flat index lies halfway between them
      node = { index: (left.index + node.index) / 2, size: left.size + node.size, hash: crypto.parent(left, node) as Buffer, depth: node.depth + 1 }
      this.nodes?.set(node)
    }
    this.roots.push(node)
  }

  /** The tree hash of the blocks added so far (what Hypercore signs for this length). */
  hash(): Buffer {
    return crypto.tree(this.roots) as Buffer
  }
}

/** Hyperdrive's key prefix in its Hyperbee (sub-encoder 'files'). */
export const FILES_PREFIX = Buffer.from('files\0')

export interface SnapshotEntry {
  seq: number
  /** the drive key, as Hyperdrive returns it (`/themes/a.php`) */
  key: string
  /** the entry's value, JSON bytes as stored */
  value: Buffer
}

/**
 * A snapshot's live entries, in key order, as the engine consumes them: each one's key read
 * to sort it into its class, then each taken once, in any order.
 */
export interface SnapshotEntryList {
  readonly length: number
  /** the drive key of entry `i` (made anew each call) */
  keyAt(i: number): string
  /** entry `i`, once: what only it still needed may be let go */
  take(i: number): SnapshotEntry
}

/** Blocks per release unit: a unit's blocks are let go once its last live entry is taken. */
const RELEASE_SHIFT = 12

/**
 * The entries a drive holds at length `blocks.length`, in key order, from its verified and
 * decrypted blocks (taken over: slots are cleared as their entries are taken). A block that
 * is not a Hyperbee node is a SyncError: the blocks matched the writer's signed tree, so a
 * malformed one is the writer's doing.
 *
 * Nothing per entry is made up front: an entry is its block's number and the offsets of its
 * key and value in that block, in typed arrays (20 bytes each). At 100,000 entries the keys as
 * strings, a map of them and a Buffer view per key and value took tens of MiB of heap, and the
 * views kept every answer's buffer alive until the last entry was marked.
 */
export function entriesOf(blocks: Array<Buffer | undefined>): SnapshotEntries {
  const n = blocks.length
  const keyStart = new Int32Array(n)
  const keyEnd = new Int32Array(n)
  const valueStart = new Int32Array(n)
  const valueEnd = new Int32Array(n)
  const files: number[] = []
  for (let seq = 1; seq < n; seq++) {
    const block = blocks[seq] as Buffer
    let node: { key: Uint8Array | null; value: Uint8Array | null }
    try {
      node = BeeNode.decode(block)
    } catch (err) {
      throw new SyncError('E_PEER_PROTOCOL', `index block ${seq} is not a Hyperbee node`, { cause: err, details: { seq } })
    }
    const { key, value } = node
    // the decoder's fields are views into the block (if it ever copies them, the caller reads
    // the index through Hypercore instead: skipping a node could list a replaced version)
    if ((key && key.buffer !== block.buffer) || (value && value.buffer !== block.buffer)) throw new Error('the Hyperbee decoder no longer returns views into the block')
    if (!key || key.byteLength < FILES_PREFIX.length) continue
    const at = key.byteOffset - block.byteOffset
    if (FILES_PREFIX.compare(block, at, at + FILES_PREFIX.length) !== 0) continue
    keyStart[seq] = at + FILES_PREFIX.length
    keyEnd[seq] = at + key.byteLength
    const valueAt = value ? value.byteOffset - block.byteOffset : -1
    valueStart[seq] = valueAt
    valueEnd[seq] = value ? valueAt + value.byteLength : -1
    files.push(seq)
  }
  // by the keys' bytes (Hyperbee's order, as a listing gives them); the sort is stable, so a
  // key's nodes stay in the order they were written
  const compareKeys = (a: number, b: number): number => {
    const x = blocks[a] as Buffer
    const y = blocks[b] as Buffer
    let i = keyStart[a] as number
    let j = keyStart[b] as number
    const iEnd = keyEnd[a] as number
    const jEnd = keyEnd[b] as number
    for (; i < iEnd && j < jEnd; i++, j++) {
      const d = (x[i] as number) - (y[j] as number)
      if (d !== 0) return d
    }
    return iEnd - i - (jEnd - j)
  }
  files.sort(compareKeys)
  const live: number[] = []
  for (let k = 0; k < files.length; k++) {
    const seq = files[k] as number
    // the last node of each key is what the drive holds; deleted (no value): not listed
    if (k + 1 < files.length && compareKeys(seq, files[k + 1] as number) === 0) continue
    if ((valueStart[seq] as number) >= 0) live.push(seq)
  }
  return new SnapshotEntries(blocks, Int32Array.from(live), keyStart, keyEnd, valueStart, valueEnd)
}

export class SnapshotEntries implements SnapshotEntryList {
  /** live entries not yet taken, per release unit of blocks */
  private readonly untaken: Int32Array
  private readonly taken: Uint8Array

  constructor(
    private readonly blocks: Array<Buffer | undefined>,
    /** the live entries' block numbers, in key order */
    private readonly order: Int32Array,
    private readonly keyStart: Int32Array,
    private readonly keyEnd: Int32Array,
    private readonly valueStart: Int32Array,
    private readonly valueEnd: Int32Array
  ) {
    this.untaken = new Int32Array((blocks.length >> RELEASE_SHIFT) + 1)
    for (const seq of order) this.untaken[seq >> RELEASE_SHIFT] = (this.untaken[seq >> RELEASE_SHIFT] as number) + 1
    this.taken = new Uint8Array(order.length)
    // blocks no live entry needs (replaced, deleted, not files): let go now
    for (let unit = 0; unit < this.untaken.length; unit++) if (this.untaken[unit] === 0) this.release(unit)
  }

  get length(): number {
    return this.order.length
  }

  keyAt(i: number): string {
    const seq = this.seqAt(i)
    return this.blockOf(seq, i).toString('utf8', this.keyStart[seq], this.keyEnd[seq])
  }

  take(i: number): SnapshotEntry {
    const seq = this.seqAt(i)
    if (this.taken[i]) throw new RangeError(`snapshot entry ${i} was taken`)
    const block = this.blockOf(seq, i)
    const key = block.toString('utf8', this.keyStart[seq], this.keyEnd[seq])
    // a view: the engine decodes it at once and keeps nothing of it
    const value = block.subarray(this.valueStart[seq], this.valueEnd[seq])
    this.taken[i] = 1
    const unit = seq >> RELEASE_SHIFT
    const left = (this.untaken[unit] as number) - 1
    this.untaken[unit] = left
    if (left === 0) this.release(unit)
    return { seq, key, value }
  }

  private seqAt(i: number): number {
    if (!(Number.isInteger(i) && i >= 0 && i < this.order.length)) throw new RangeError(`no snapshot entry ${i} (${this.order.length} entries)`)
    return this.order[i] as number
  }

  /** entry `i`'s block (block `seq`), unless it was let go with the last entry of its unit */
  private blockOf(seq: number, i: number): Buffer {
    const block = this.blocks[seq]
    if (!block) throw new RangeError(`snapshot entry ${i} was taken`)
    return block
  }

  private release(unit: number): void {
    const end = Math.min(this.blocks.length, (unit + 1) << RELEASE_SHIFT)
    for (let seq = unit << RELEASE_SHIFT; seq < end; seq++) this.blocks[seq] = undefined
  }
}
