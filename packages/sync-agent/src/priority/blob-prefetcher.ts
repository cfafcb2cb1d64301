import type { DriveEntry } from 'hyperdrive'
import type { RangeDownload } from 'hypercore'
import type { Logger } from '../log.js'
import type { DriveSet } from '../replication/drive-set.js'

/**
 * Fetches file contents ahead of the workers, one priority class at a time: Hypercore has
 * no per-request priority, so only the blocks of the class being applied are requested, in
 * the class's order, in bounded batches. The next class takes no bandwidth until the
 * workers move on to it. A block the workers ask for before its batch arrives is simply
 * fetched on demand (Hypercore shares the request).
 */
const BATCH_BYTES = 8 * 1024 * 1024
const BATCH_BLOCKS = 512
const MAX_BATCHES = 3
const BATCH_TIMEOUT_MS = 30_000
/** an untrusted entry may claim anything: never prefetch more than this for one file */
const MAX_BLOCKS_PER_FILE = 2048
const CANDIDATES = 2048
/** paths are marked by the thousand: look for new work at most this often */
const RESCAN_MS = 20

export interface PrefetchCandidate {
  hints: Map<string, { entry: DriveEntry<unknown> | null }> | null
}

export interface PrefetchSource {
  /** the class the workers are on (-1: nothing to do) */
  activeClass(): number
  /** queued paths of that class, in the order they will be applied */
  candidates(classIndex: number, limit: number): PrefetchCandidate[]
}

interface BlobRef {
  blockOffset: number
  blockLength: number
  byteLength: number
}

function blobOf(entry: DriveEntry<unknown> | null): BlobRef | null {
  const blob = entry?.value?.blob as Partial<BlobRef> | null | undefined
  if (!blob) return null
  const { blockOffset, blockLength, byteLength } = blob
  if (!Number.isSafeInteger(blockOffset) || !Number.isSafeInteger(blockLength) || !Number.isSafeInteger(byteLength)) return null
  if ((blockOffset as number) < 0 || (blockLength as number) <= 0 || (blockLength as number) > MAX_BLOCKS_PER_FILE) return null
  return blob as BlobRef
}

export class BlobPrefetcher {
  /** blocks already asked for, per drive */
  private readonly requested = new Map<string, Set<number>>()
  private readonly inflight = new Set<Promise<void>>()
  private readonly ranges = new Set<RangeDownload>()
  private wakeUp: (() => void) | null = null
  private closed = false
  private loop: Promise<void> | null = null
  private readonly closedSignal: Promise<void>
  private signalClosed!: () => void

  constructor(
    private readonly drives: DriveSet,
    private readonly source: PrefetchSource,
    private readonly log: Logger
  ) {
    this.closedSignal = new Promise<void>((resolve) => (this.signalClosed = resolve))
  }

  ready(): void {
    this.loop = this.run().catch((err: unknown) => {
      if (!this.closed) this.log.error({ err }, 'prefetch loop failed')
    })
  }

  /** Something was queued or the active class changed. */
  wake(): void {
    const w = this.wakeUp
    this.wakeUp = null
    w?.()
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      if (this.inflight.size >= MAX_BATCHES) {
        await Promise.race([...this.inflight, this.closedSignal])
        continue
      }
      const batch = this.nextBatch()
      if (batch.size === 0) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve))
        if (this.closed) break
        await new Promise<void>((resolve) => setTimeout(resolve, RESCAN_MS))
        continue
      }
      const task = this.download(batch).finally(() => {
        this.inflight.delete(task)
        this.wake()
      })
      this.inflight.add(task)
    }
  }

  /** Blocks to fetch next: drive hex → block indexes. */
  private nextBatch(): Map<string, number[]> {
    const batch = new Map<string, number[]>()
    const cls = this.source.activeClass()
    if (cls < 0) return batch
    let bytes = 0
    let blocks = 0
    for (const c of this.source.candidates(cls, CANDIDATES)) {
      if (!c.hints) continue
      for (const [hex, { entry }] of c.hints) {
        const blob = blobOf(entry)
        const drive = this.drives.get(hex)
        if (!blob || !drive || drive.isOwn) continue
        let seen = this.requested.get(hex)
        if (!seen) this.requested.set(hex, (seen = new Set()))
        let list = batch.get(hex)
        for (let i = blob.blockOffset; i < blob.blockOffset + blob.blockLength; i++) {
          if (seen.has(i)) continue
          seen.add(i)
          if (!list) batch.set(hex, (list = []))
          list.push(i)
          blocks++
        }
        bytes += blob.byteLength
      }
      if (bytes >= BATCH_BYTES || blocks >= BATCH_BLOCKS) break
    }
    return batch
  }

  private async download(batch: Map<string, number[]>): Promise<void> {
    await Promise.all(
      [...batch].map(async ([hex, blocks]) => {
        const drive = this.drives.get(hex)
        if (!drive || this.closed) return
        const blobs = await drive.drive.getBlobs()
        if (this.closed) return
        const range = blobs.core.download({ blocks })
        this.ranges.add(range)
        let timer: NodeJS.Timeout | null = null
        try {
          await Promise.race([
            range.done(),
            this.closedSignal,
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, BATCH_TIMEOUT_MS)
            })
          ])
        } catch (err) {
          // the workers fetch what is still missing on demand
          this.log.debug({ err, drive: drive.shortId, blocks: blocks.length }, 'prefetch batch failed')
          const seen = this.requested.get(hex)
          for (const i of blocks) seen?.delete(i)
        } finally {
          if (timer) clearTimeout(timer)
          range.destroy()
          this.ranges.delete(range)
        }
      })
    )
  }

  async close(): Promise<void> {
    this.closed = true
    this.signalClosed()
    for (const r of this.ranges) r.destroy()
    this.wake()
    await this.loop
  }
}
