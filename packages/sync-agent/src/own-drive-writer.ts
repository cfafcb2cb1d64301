import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import type Hyperdrive from 'hyperdrive'
import type Hyperblobs from 'hyperblobs'
import type { BlobId } from 'hyperblobs'
import type { DriveEntry, DriveEntryValue } from 'hyperdrive'
import type { EntryMeta } from './entry-format.js'
import type { Logger } from './log.js'
import { clearKeepingTree } from './replication/clear-blocks.js'
import { BlockSweeper } from './block-sweeper.js'

/**
 * All writes to our own drive. Small files' blocks and file-index entries queued while a
 * flush runs go into the next flush, which appends every queued block to the blob core in
 * one append and every entry to the file index in one batch: a scan of thousands of files
 * costs a few appends (one signature and one storage write each), a single edit is written
 * at once. Blob ids are assigned when a file is queued; appends happen in queue order, so
 * they stay exact. Large files are streamed straight into the blob core between flushes.
 */
/**
 * Entries are only ever put, never deleted: a peer diffs our drive from where it left off, and
 * a key put and then removed since then is no net change, so it would never hear of the removal
 * (deletes and withdrawals are tombstones).
 */
type Op = {
  kind: 'put'
  key: string
  value: Partial<DriveEntryValue<EntryMeta>>
  /** put only if our entry at `key` is still the one this accepts, read in the flush's turn */
  onlyIf?: (current: DriveEntry<Buffer> | null) => boolean
}

export const BLOCK_BYTES = 1024 * 1024
/** small files share blocks of up to this size: far fewer blocks to sign, send and verify */
export const PACK_BYTES = 64 * 1024

/** Does `blob` have its blocks to itself (not packed with other small files)? */
function ownsItsBlocks(blob: BlobId): boolean {
  return blob.byteLength > PACK_BYTES && blob.blockLength > 0
}

/** A small file's blob: one block, maybe shared with other small files. */
export function inSharedBlock(blob: BlobId): boolean {
  return blob.byteLength > 0 && blob.byteLength <= PACK_BYTES && blob.blockLength === 1
}

/** Blocks start..end - 1 of the blob core. */
export interface BlockRange {
  start: number
  end: number
}

/** Where a file's bytes are: the blocks of `blob`, starting `at` bytes into the first. */
export interface StoredBlob {
  blob: BlobId
  at: number
}

export class OwnDriveWriter {
  private ops: Array<{ op: Op; resolve: (put: boolean) => void; reject: (err: unknown) => void }> = []
  private blocks: Buffer[] = []
  /** the shared block being filled with small files; its index is `nextBlock` */
  private pack: Buffer[] = []
  private packBytes = 0
  private nextBlock = 0
  private nextByte = 0
  private draining: Promise<void> | null = null
  /** set while a large file streams into the blob core: small files wait for it */
  private streaming: Promise<void> | null = null
  private counter = 0
  /**
   * blobs handed out (stored, or kept for a touch) whose entry is not flushed yet, by
   * byteOffset, to their blocks [start, end): the sweeper never clears them. One stored and
   * then neither put nor released keeps its blocks until the next start (space, never bytes an
   * entry names)
   */
  private readonly unnamed = new Map<number, BlockRange>()
  /** the first block of a large file being streamed into the blob core (null: none) */
  private streamingFrom: number | null = null
  private readonly sweeper: BlockSweeper

  constructor(
    private readonly drive: Hyperdrive,
    private readonly blobs: Hyperblobs,
    opts: { log?: Logger; sweepDelayMs?: number; fullSweepDelayMs?: number } = {}
  ) {
    this.nextBlock = blobs.core.length
    this.nextByte = blobs.core.byteLength
    this.sweeper = new BlockSweeper({
      drive,
      core: blobs.core,
      pinned: () => {
        const ranges = [...this.unnamed.values()]
        if (this.streamingFrom !== null) ranges.push({ start: this.streamingFrom, end: Number.MAX_SAFE_INTEGER })
        return ranges
      },
      log: opts.log,
      delayMs: opts.sweepDelayMs,
      fullDelayMs: opts.fullSweepDelayMs
    })
  }

  /** Schedules the sweep of every block after a start (BlockSweeper.ready). */
  ready(): void {
    this.sweeper.ready()
  }

  /** Stops the sweeper (waits for a sweep under way; what is left, the next start's full sweep takes). */
  close(): Promise<void> {
    return this.sweeper.close()
  }

  /** Sweeps the blocks released so far now, or (`full`) every block (tests; the sweeper runs by itself). */
  sweep(opts: { full?: boolean } = {}): Promise<number> {
    return this.sweeper.sweep(opts)
  }

  /** Strictly increasing, and above every counter this device used before a restart. */
  nextCounter(): number {
    this.counter = Math.max(this.counter, this.drive.core.length) + 1
    return this.counter
  }

  /** Queues a small file's bytes; the id is valid once the entry referencing it is flushed. */
  async storeBuffer(buf: Buffer): Promise<StoredBlob> {
    while (this.streaming) await this.streaming
    if (buf.length === 0) return { blob: { blockOffset: 0, blockLength: 0, byteOffset: 0, byteLength: 0 }, at: 0 }
    if (buf.length <= PACK_BYTES) {
      if (this.packBytes + buf.length > PACK_BYTES) this.sealPack()
      const at = this.packBytes
      this.pack.push(buf)
      this.packBytes += buf.length
      this.unnamed.set(this.nextByte + at, { start: this.nextBlock, end: this.nextBlock + 1 })
      return { blob: { blockOffset: this.nextBlock, blockLength: 1, byteOffset: this.nextByte + at, byteLength: buf.length }, at }
    }
    this.sealPack()
    const id: BlobId = { blockOffset: this.nextBlock, blockLength: 0, byteOffset: this.nextByte, byteLength: buf.length }
    for (let offset = 0; offset < buf.length; offset += BLOCK_BYTES) {
      this.blocks.push(buf.subarray(offset, Math.min(buf.length, offset + BLOCK_BYTES)))
      id.blockLength++
    }
    this.unnamed.set(id.byteOffset, { start: id.blockOffset, end: id.blockOffset + id.blockLength })
    this.nextBlock += id.blockLength
    this.nextByte += buf.length
    return { blob: id, at: 0 }
  }

  /** Closes the shared block: it becomes a queued block, and a new one starts. */
  private sealPack(): void {
    if (this.packBytes === 0) return
    this.blocks.push(this.pack.length === 1 ? (this.pack[0] as Buffer) : Buffer.concat(this.pack))
    this.pack = []
    this.nextBlock++
    this.nextByte += this.packBytes
    this.packBytes = 0
  }

  /**
   * Streams a large file into the blob core, hashing it in the same pass. Returns null if
   * the size read differs from `expectedSize` (the file changed while being read).
   */
  async storeFile(abs: string, expectedSize: number): Promise<(StoredBlob & { hash: string }) | null> {
    while (this.streaming) await this.streaming
    let release!: () => void
    this.streaming = new Promise<void>((r) => (release = r))
    try {
      // queued blocks first, so our blocks start at the core's end and stay contiguous
      this.sealPack()
      while (this.blocks.length > 0 || this.draining) await this.drain()
      const core = this.blobs.core
      const id: BlobId = { blockOffset: core.length, blockLength: 0, byteOffset: core.byteLength, byteLength: 0 }
      // appended before the id is handed out: the sweeper leaves them alone meanwhile
      this.streamingFrom = core.length
      const hash = createHash('sha256')
      let batch: Buffer[] = []
      for await (const chunk of createReadStream(abs, { highWaterMark: BLOCK_BYTES })) {
        const buf = chunk as Buffer
        hash.update(buf)
        id.byteLength += buf.length
        id.blockLength++
        batch.push(buf)
        if (batch.length >= 16) {
          await core.append(batch)
          batch = []
        }
      }
      if (batch.length > 0) await core.append(batch)
      this.nextBlock = core.length
      this.nextByte = core.byteLength
      // changed while read: blocks nothing will name (the sweep at the next start takes them)
      if (id.byteLength !== expectedSize) return null
      if (id.blockLength > 0) this.unnamed.set(id.byteOffset, { start: id.blockOffset, end: id.blockOffset + id.blockLength })
      return { blob: id, at: 0, hash: hash.digest('hex') }
    } finally {
      this.streamingFrom = null
      this.streaming = null
      release()
    }
  }

  /**
   * Frees the blocks of `blob`, content of a version of ours that no entry of our drive names
   * any more (replaced or deleted here): without this the data dir kept every version ever
   * published, the whole file again for each change (a 20 MiB file appended to five times took
   * 158 MiB). Only blobs with blocks of their own are cleared: a small file's bytes share a
   * block with others' (PACK_BYTES). The storage reclaims the space in its own time
   * (RocksDB's blob garbage collection). Peers that still read the old version's blocks from
   * us (behind on our drive) no longer get them; they have the newer entry to fetch instead.
   * Returns the bytes released (in proportion to the blocks cleared: the first one or two of
   * a blob may be kept, see clear-blocks.ts). A small file's shared block is left to the
   * sweeper, which clears it once no entry names a file in it (0 here).
   */
  async release(blob: BlobId): Promise<number> {
    this.unnamed.delete(blob.byteOffset)
    if (inSharedBlock(blob)) {
      this.sweeper.add(blob.blockOffset)
      return 0
    }
    if (!ownsItsBlocks(blob) || blob.blockOffset + blob.blockLength > this.blobs.core.length) return 0
    // not Hypercore's clear alone: it would delete Merkle tree nodes peers' upgrades need
    // (clear-blocks.ts); the first block or two may stay
    const end = blob.blockOffset + blob.blockLength
    const from = await clearKeepingTree(this.blobs.core, blob.blockOffset, end)
    const bytes = Math.round((blob.byteLength * (end - from)) / blob.blockLength)
    this.sweeper.freed(bytes)
    return bytes
  }

  /**
   * An entry naming `blob` was withdrawn (a conflict copy, or our version that lost): its blocks
   * (a small file's shared block, or a large file's own) become candidates for the sweeper,
   * which clears each only if no entry names it (a copy of that very version, made earlier,
   * may). Not `release`, which clears at once: it is for a blob that no entry can name.
   */
  forget(blob: BlobId | null): void {
    if (!blob || blob.blockLength <= 0) return
    if (inSharedBlock(blob)) this.sweeper.add(blob.blockOffset)
    else if (ownsItsBlocks(blob)) this.sweeper.addRange(blob.blockOffset, blob.blockOffset + blob.blockLength)
  }

  /**
   * A touch (same bytes, new mtime) names `blob`, the blob of our current entry, again: kept
   * from the sweeper until its put is flushed (or `unkeep`). A sweep under way took its pins
   * when it started, so the keep waits for it to end, and pins in the same turn it sees no
   * sweep running: one that starts later sees the pin. False when the blob is no longer held
   * here (our entry was withdrawn and the blob swept since it was read): the caller stores the
   * bytes again.
   */
  async keep(blob: BlobId): Promise<boolean> {
    if (blob.blockLength <= 0) return false
    while (this.sweeper.busy) await this.sweeper.idle()
    this.unnamed.set(blob.byteOffset, { start: blob.blockOffset, end: blob.blockOffset + blob.blockLength })
    if (await this.blobs.core.has(blob.blockOffset, blob.blockOffset + blob.blockLength)) return true
    this.unnamed.delete(blob.byteOffset)
    return false
  }

  /** A blob `keep` pinned will not be put after all. */
  unkeep(blob: BlobId): void {
    this.unnamed.delete(blob.byteOffset)
  }

  put(key: string, value: Partial<DriveEntryValue<EntryMeta>>): Promise<void> {
    return this.enqueue({ kind: 'put', key, value }).then(() => undefined)
  }

  /**
   * Puts `value` only if our entry at `key`, read when the flush writes it (after every put
   * queued before it), is one `onlyIf` accepts. Resolves whether it was put. For a write
   * decided on an entry read earlier, which a put made meanwhile must win over.
   */
  putIf(key: string, value: Partial<DriveEntryValue<EntryMeta>>, onlyIf: (current: DriveEntry<Buffer> | null) => boolean): Promise<boolean> {
    return this.enqueue({ kind: 'put', key, value, onlyIf })
  }

  private enqueue(op: Op): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.ops.push({ op, resolve, reject })
      void this.drain()
    })
  }

  /** Flushes everything queued; resolves when the queue is empty. */
  private drain(): Promise<void> {
    if (!this.draining) {
      this.draining = this.run().finally(() => {
        this.draining = null
        // work queued by callers resumed after the last batch resolved: run again
        if (this.ops.length > 0 || this.blocks.length > 0 || this.packBytes > 0) void this.drain()
      })
    }
    return this.draining
  }

  private async run(): Promise<void> {
    // let this tick queue more work into the same flush
    await new Promise<void>((r) => setImmediate(r))
    while (this.ops.length > 0 || this.blocks.length > 0 || this.packBytes > 0) {
      this.sealPack()
      const items = this.ops
      const blocks = this.blocks
      this.ops = []
      this.blocks = []
      try {
        if (blocks.length > 0) await this.blobs.core.append(blocks)
        const done: boolean[] = []
        if (items.length > 0) {
          const batch = this.drive.batch()
          for (const { op } of items) {
            // read through the batch: a put queued before this one in the same flush counts
            const put = !op.onlyIf || op.onlyIf(await batch.entry<Buffer>(op.key, { valueEncoding: 'binary' }))
            if (put) await batch.putEntry(op.key, op.value)
            done.push(put)
          }
          await batch.flush()
        }
        // named now (or, not put, by nothing: then the sweeper may take their block)
        for (const { op } of items) if (op.value.blob) this.unnamed.delete(op.value.blob.byteOffset)
        items.forEach((item, i) => item.resolve(done[i] as boolean))
      } catch (err) {
        // every blob id handed out since the last good flush is void: fail all queued
        // entries (their paths are retried and store again) and restart at the core's end
        const queued = this.ops
        this.ops = []
        this.blocks = []
        this.pack = []
        this.packBytes = 0
        this.nextBlock = this.blobs.core.length
        this.nextByte = this.blobs.core.byteLength
        // ids past the core's end are void (and will be handed out again)
        for (const [byteOffset, range] of this.unnamed) if (range.start >= this.nextBlock) this.unnamed.delete(byteOffset)
        for (const item of [...items, ...queued]) item.reject(err)
      }
    }
  }
}
