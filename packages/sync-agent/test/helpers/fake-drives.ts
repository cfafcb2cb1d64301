import { toDriveKey } from '@sync-agent/shared'
import type { DriveEntry } from 'hyperdrive'
import type { BlobId } from 'hyperblobs'
import type { EntryMeta } from '../../src/entry-format.js'
import type { MemberDrive } from '../../src/replication/drive-set.js'
import { FolderWriter } from '../../src/folder-writer.js'
import type { IndexStore } from '../../src/index-store.js'
import type { ReconcileDeps } from '../../src/reconcile-path.js'

/** Entry metadata for reconcile tests: a 3-byte file (hash 'aaa…') or a dir/delete. */
export function meta(vv: Record<string, number>, kind: EntryMeta['kind']): EntryMeta {
  return { v: 1, vv, ts: 1_000, kind, size: kind === 'file' ? 3 : 0, mtime: 1, mode: 0o644, hash: kind === 'file' ? 'a'.repeat(64) : null }
}

export function entry(path: string, m: EntryMeta): DriveEntry<EntryMeta> {
  const blob = m.kind === 'file' ? { blockOffset: 0, blockLength: 1, byteOffset: 0, byteLength: m.size } : null
  return { seq: 1, key: toDriveKey(path), value: { executable: false, linkname: null, blob, metadata: m } } as unknown as DriveEntry<EntryMeta>
}

/**
 * A peer drive at `version` whose newest index block does not come (its latest index blocks
 * are not here), recording the timeouts asked for; as of an older length (`checkout`) it
 * answers `asDiffed`, or fails for a block that is not here either.
 */
export function arrivingDrive(author: string, version: number, timeouts: number[], asDiffed: DriveEntry<EntryMeta> | null | 'missing' = null): MemberDrive {
  const timeout = Object.assign(new Error('REQUEST_TIMEOUT: Request timed out'), { code: 'REQUEST_TIMEOUT' })
  const missing = Object.assign(new Error('BLOCK_NOT_AVAILABLE: Block is not available'), { code: 'BLOCK_NOT_AVAILABLE' })
  return {
    hex: author.toLowerCase().repeat(4),
    author,
    isOwn: false,
    shortId: author.slice(0, 7),
    member: {} as MemberDrive['member'],
    drive: {
      version,
      core: {
        length: version,
        has: async () => false,
        get: async (_index: number, opts: { timeout: number }) => {
          timeouts.push(opts.timeout)
          throw timeout
        }
      },
      entry: async () => {
        throw new Error('the newest index block is waited for before Hyperbee reads it')
      },
      checkout: () => ({
        entry: async (_key: string, opts: { wait?: boolean }) => {
          if (opts.wait !== false) throw new Error('the diffed view must not wait for the network')
          if (asDiffed === 'missing') throw missing
          return asDiffed
        },
        close: async () => undefined
      })
    } as unknown as MemberDrive['drive']
  }
}

/** A member drive that answers `entry(key)` from `entries` (and nothing else). */
export function drive(author: string, entries: Record<string, DriveEntry<EntryMeta>>, isOwn = false): MemberDrive {
  return {
    hex: author.toLowerCase().repeat(4),
    author,
    isOwn,
    shortId: author.slice(0, 7),
    member: {} as MemberDrive['member'],
    // no index blocks to wait for (core.length 0): entries come from `entries`
    drive: { entry: async (key: string) => entries[key] ?? null, core: { length: 0 } } as unknown as MemberDrive['drive']
  }
}

/**
 * `put` and `putIf` of an OwnDriveWriter that collect what is put into `puts`. The fake drive's
 * entries do not change: `putIf`'s condition sees the entry the test set up in `own`.
 */
export function collectingPuts(own: MemberDrive, puts: EntryMeta[], released: BlobId[] = [], forgotten: BlobId[] = []) {
  let block = 1000
  return {
    put: async (_key: string, value: { metadata: EntryMeta }) => void puts.push(value.metadata),
    // a small file's bytes, in a shared block of its own (blocks 1000, 1001, …)
    storeBuffer: async (buf: Buffer) => ({ blob: { blockOffset: block, blockLength: 1, byteOffset: block++ * 65536, byteLength: buf.length }, at: 0 }),
    release: async (blob: BlobId) => {
      released.push(blob)
      return blob.byteLength
    },
    forget: (blob: BlobId | null) => void (blob && forgotten.push(blob)),
    // a touch's blob: the fake's blocks are always there
    keep: async () => true,
    unkeep: () => undefined,
    putIf: async (key: string, value: { metadata: EntryMeta }, onlyIf: (current: unknown) => boolean) => {
      if (!onlyIf(await own.drive.entry(key))) return false
      puts.push(value.metadata)
      return true
    }
  }
}

/**
 * What a PathReconciler needs to publish into fake drives: `drives` (our own one among them,
 * `own`), a real folder writer and index, and every entry we put collected in `puts`.
 */
export function publishingDeps(opts: { folder: string; index: IndexStore; drives: MemberDrive[]; own: MemberDrive; puts: EntryMeta[]; nextCounter: number; released?: BlobId[]; forgotten?: BlobId[] }): ReconcileDeps {
  return {
    writer: new FolderWriter(opts.folder),
    index: opts.index,
    drives: { all: () => opts.drives, own: opts.own },
    own: { ...collectingPuts(opts.own, opts.puts, opts.released, opts.forgotten), nextCounter: () => opts.nextCounter },
    rules: () => ({ isIgnored: () => false }),
    log: { info: () => undefined, warn: () => undefined, debug: () => undefined, isLevelEnabled: () => false },
    now: () => 2_000,
    mayDelete: () => true,
    onNewPath: () => undefined,
    onOwnEntryReplaced: () => undefined,
    onConflict: () => undefined
  } as unknown as ReconcileDeps
}
