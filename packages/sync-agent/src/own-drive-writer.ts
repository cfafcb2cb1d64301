import type Hyperdrive from 'hyperdrive'
import type { DriveEntryValue } from 'hyperdrive'
import type { EntryMeta } from './entry-format.js'

/**
 * Batches writes to our own drive: every put or delete queued while a flush is running goes
 * into the next batch, so a scan of thousands of files costs few index writes while a single
 * edit is written at once.
 */
type Op = { kind: 'put'; key: string; value: Partial<DriveEntryValue<EntryMeta>> } | { kind: 'del'; key: string }

export class OwnDriveWriter {
  private queue: Array<{ op: Op; resolve: () => void; reject: (err: unknown) => void }> = []
  private running: Promise<void> | null = null
  private counter = 0

  constructor(private readonly drive: Hyperdrive) {}

  /** Strictly increasing, and above every counter this device used before a restart. */
  nextCounter(): number {
    this.counter = Math.max(this.counter, this.drive.core.length) + 1
    return this.counter
  }

  put(key: string, value: Partial<DriveEntryValue<EntryMeta>>): Promise<void> {
    return this.enqueue({ kind: 'put', key, value })
  }

  del(key: string): Promise<void> {
    return this.enqueue({ kind: 'del', key })
  }

  private enqueue(op: Op): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject })
      if (!this.running) this.running = this.drain()
    })
  }

  private async drain(): Promise<void> {
    // let the current tick queue more work into this batch
    await new Promise<void>((r) => setImmediate(r))
    while (this.queue.length > 0) {
      const items = this.queue
      this.queue = []
      try {
        const batch = this.drive.batch()
        for (const { op } of items) {
          if (op.kind === 'put') await batch.putEntry(op.key, op.value)
          else await batch.del(op.key)
        }
        await batch.flush()
        for (const item of items) item.resolve()
      } catch (err) {
        for (const item of items) item.reject(err)
      }
    }
    this.running = null
  }

  async idle(): Promise<void> {
    while (this.running) await this.running
  }
}
