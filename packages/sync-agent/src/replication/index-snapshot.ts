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
const FILES_PREFIX = Buffer.from('files\0')

export interface SnapshotEntry {
  seq: number
  /** the drive key, as Hyperdrive returns it (`/themes/a.php`) */
  key: string
  /** the entry's value, JSON bytes as stored */
  value: Buffer
}

/**
 * The entries a drive holds at length `blocks.length`, in key order, from its verified and
 * decrypted blocks. A block that is not a Hyperbee node is a SyncError: the blocks matched the
 * writer's signed tree, so a malformed one is the writer's doing.
 */
export function entriesOf(blocks: readonly Uint8Array[]): SnapshotEntry[] {
  const latest = new Map<string, { seq: number; keyBytes: Buffer; value: Buffer | null }>()
  for (let seq = 1; seq < blocks.length; seq++) {
    let node: { key: Uint8Array | null; value: Uint8Array | null }
    try {
      node = BeeNode.decode(blocks[seq] as Uint8Array)
    } catch (err) {
      throw new SyncError('E_PEER_PROTOCOL', `index block ${seq} is not a Hyperbee node`, { cause: err, details: { seq } })
    }
    const key = node.key ? Buffer.from(node.key.buffer, node.key.byteOffset, node.key.byteLength) : null
    if (!key || key.length < FILES_PREFIX.length || !key.subarray(0, FILES_PREFIX.length).equals(FILES_PREFIX)) continue
    const value = node.value ? Buffer.from(node.value.buffer, node.value.byteOffset, node.value.byteLength) : null
    const keyBytes = key.subarray(FILES_PREFIX.length)
    latest.set(keyBytes.toString('utf8'), { seq, keyBytes, value })
  }
  const live = [...latest].filter(([, e]) => e.value !== null)
  // in Hyperbee's order (by the keys' bytes), as a listing of the drive gives them
  live.sort(([, a], [, b]) => Buffer.compare(a.keyBytes, b.keyBytes))
  return live.map(([key, { seq, value }]) => ({ seq, key, value: value as Buffer }))
}
