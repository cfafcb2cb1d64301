import type { BlobId } from 'hyperblobs'
import type { DriveEntry } from 'hyperdrive'
import { fromDriveKey, SyncError } from '@sync-agent/shared'
import { isVersionVector, type VersionVector } from './version-vector.js'

/**
 * What one drive says about one path, as stored in the drive entry's metadata, and its
 * validation. Entries from remote drives are untrusted input: `readVersion` checks every
 * field before the merge sees it.
 */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'deleted'

export interface EntryMeta {
  v: 1
  vv: VersionVector
  /** ms since epoch when the change was published (wall clock of the author) */
  ts: number
  kind: EntryKind
  size: number
  /** file mtime in ms */
  mtime: number
  /** permission bits (0o777) */
  mode: number
  /** sha256 hex of the content, for files */
  hash: string | null
  /** where the content starts in the blob's first block (small files share blocks) */
  at?: number
  /** sha256 of the file content this version replaced or deleted on the author's disk */
  was?: string
  /**
   * Older contents the author replaced or deleted at this path (newest first, at most
   * MAX_REPLACED_HISTORY): what its earlier entries' `was` named. A drive keeps one entry per
   * path, so without this the evidence that a content was replaced on purpose went with the
   * entry that named it (fault suite seed 4129: a conflict copy outlived a replacement of its
   * content that a later edit had overwritten in the replacer's drive).
   */
  replaced?: string[]
  /**
   * A tombstone left by withdrawing a version that lost a conflict (its content lives on as a
   * conflict copy): it carries that version's vector, so what that version had replaced stays
   * replaced, and it is not a delete anybody asked for (the mass-delete guard ignores it).
   */
  withdrawn?: true
  /**
   * A conflict copy this device made of its own losing version (published before the copy
   * reaches the disk), not a file a program gave a conflict-copy name (moved, renamed): only
   * such a copy, missing from the disk with no record, is not a local delete (fault suite seed
   * 12510: a copy moved with its directory and deleted while the agent was down came back).
   */
  copy?: true
}

/** One drive's validated entry for one path: the metadata plus where it came from. */
export interface Version extends Omit<EntryMeta, 'v' | 'at' | 'was' | 'replaced' | 'withdrawn' | 'copy'> {
  /** hex key of the drive that holds this entry */
  drive: string
  /** version-vector key of that drive's device */
  author: string
  path: string
  target: string | null
  blob: BlobId | null
  /** offset of the content in the blob's first block */
  at: number
  /** the file content the author replaced or deleted (it saw it there), if any */
  was: string | null
  /** older contents the author replaced or deleted here, newest first (see EntryMeta.replaced) */
  replaced: readonly string[]
  /** a tombstone left by a withdrawn conflict loser, not a delete anybody asked for */
  withdrawn: boolean
  /** a conflict copy its author made (see EntryMeta.copy) */
  copy: boolean
}

/** How many older replaced contents an entry carries (EntryMeta.replaced); longer lists are rejected. */
export const MAX_REPLACED_HISTORY = 8
const HASH_HEX = /^[0-9a-f]{64}$/
const MAX_FILE_BYTES = 2 ** 44 // 16 TiB: anything larger is a lie
const MAX_LINK_BYTES = 4096
const MAX_BLOCK_BYTES = 8 * 1024 * 1024

function isBlobId(value: unknown): value is BlobId {
  if (typeof value !== 'object' || value === null) return false
  const b = value as Record<string, unknown>
  return ['blockOffset', 'blockLength', 'byteOffset', 'byteLength'].every(
    (k) => Number.isSafeInteger(b[k]) && (b[k] as number) >= 0
  )
}

function bad(path: string, problem: string): SyncError {
  return new SyncError('E_PEER_PROTOCOL', `rejected entry ${JSON.stringify(path.slice(0, 200))}: ${problem}`, { details: { problem, path: path.slice(0, 200) } })
}

/**
 * Decodes an entry read with `valueEncoding: 'binary'` (a diff of an untrusted drive): JSON that
 * is not an object becomes a SyncError instead of an exception that would end the whole diff.
 */
export function decodeEntry(raw: { seq: number; key: string; value: unknown }): DriveEntry<EntryMeta> {
  let value: unknown = raw.value
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    try {
      value = JSON.parse((Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)).toString('utf8'))
    } catch {
      throw bad(raw.key, 'the entry value cannot be decoded (not JSON)')
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(raw.key, 'the entry value cannot be decoded (not an object)')
  return { seq: raw.seq, key: raw.key, value: value as DriveEntry<EntryMeta>['value'] }
}

/** Validates a drive entry; throws SyncError (E_PATH_UNSAFE or E_PEER_PROTOCOL). */
export function readVersion(drive: string, author: string, entry: DriveEntry<unknown>): Version {
  const path = fromDriveKey(entry.key)
  if (typeof entry.value !== 'object' || entry.value === null) throw bad(path, 'the entry value cannot be decoded (not an object)')
  const meta = entry.value.metadata as Partial<EntryMeta> | null
  if (!meta || typeof meta !== 'object' || meta.v !== 1) throw bad(path, 'no sync-agent metadata')
  const { kind, vv, ts, size, mtime, mode, hash } = meta
  const at = meta.at ?? 0
  const was = meta.was ?? null
  if (was !== null && (typeof was !== 'string' || !HASH_HEX.test(was))) throw bad(path, 'malformed replaced-content hash')
  const replaced = meta.replaced ?? []
  if (!Array.isArray(replaced) || replaced.length > MAX_REPLACED_HISTORY || !replaced.every((h) => typeof h === 'string' && HASH_HEX.test(h))) {
    throw bad(path, `malformed replaced-content history (at most ${MAX_REPLACED_HISTORY} sha256 hashes)`)
  }
  if (meta.withdrawn !== undefined && (meta.withdrawn !== true || kind !== 'deleted')) throw bad(path, 'malformed withdrawal mark')
  if (meta.copy !== undefined && (meta.copy !== true || kind === 'deleted' || kind === 'dir')) throw bad(path, 'malformed conflict-copy mark')
  if (!Number.isSafeInteger(at) || at < 0 || at > MAX_BLOCK_BYTES) throw bad(path, 'malformed content offset')
  if (kind !== 'file' && kind !== 'dir' && kind !== 'symlink' && kind !== 'deleted') throw bad(path, 'unknown kind')
  if (!isVersionVector(vv)) throw bad(path, 'malformed version vector')
  if (!(author in vv)) throw bad(path, 'version vector does not name its author')
  if (!Number.isSafeInteger(ts) || (ts as number) < 0) throw bad(path, 'malformed timestamp')
  if (!Number.isSafeInteger(size) || (size as number) < 0 || (size as number) > MAX_FILE_BYTES) throw bad(path, 'implausible size')
  if (typeof mtime !== 'number' || !Number.isFinite(mtime) || mtime < 0) throw bad(path, 'malformed mtime')
  if (!Number.isInteger(mode) || (mode as number) < 0 || (mode as number) > 0o777) throw bad(path, 'malformed mode')
  let target: string | null = null
  let blob: BlobId | null = null
  if (kind === 'file') {
    if (typeof hash !== 'string' || !HASH_HEX.test(hash)) throw bad(path, 'malformed hash')
    if (size === 0) {
      if (entry.value.blob !== null && !isBlobId(entry.value.blob)) throw bad(path, 'malformed blob reference')
      blob = entry.value.blob as BlobId | null
    } else {
      if (!isBlobId(entry.value.blob)) throw bad(path, 'file without a blob')
      blob = entry.value.blob
      if (blob.byteLength !== size) throw bad(path, `blob size ${blob.byteLength} differs from metadata size ${size}`)
      if (blob.blockLength === 0) throw bad(path, 'blob without blocks')
      if (at > 0 && blob.blockLength !== 1) throw bad(path, 'content offset in a multi-block blob')
    }
  } else if (kind === 'symlink') {
    const link = entry.value.linkname
    if (typeof link !== 'string' || link.length === 0 || Buffer.byteLength(link) > MAX_LINK_BYTES || link.includes('\0')) {
      throw bad(path, 'malformed symlink target')
    }
    target = link
  }
  return {
    drive,
    author,
    path,
    vv: vv as VersionVector,
    ts: ts as number,
    kind,
    size: size as number,
    mtime: mtime as number,
    mode: mode as number,
    hash: kind === 'file' ? (hash as string) : null,
    target,
    blob,
    at,
    was,
    replaced: replaced as string[],
    withdrawn: meta.withdrawn === true,
    copy: meta.copy === true
  }
}

/** A remote delete somebody asked for (not a withdrawn conflict loser): what the mass-delete guard counts. */
export function isRequestedDelete(meta: Partial<EntryMeta> | null | undefined): boolean {
  return meta?.kind === 'deleted' && meta.withdrawn !== true
}

export function metaOf(version: Pick<Version, 'vv' | 'ts' | 'kind' | 'size' | 'mtime' | 'mode' | 'hash' | 'at'>): EntryMeta {
  const meta: EntryMeta = { v: 1, vv: version.vv, ts: version.ts, kind: version.kind, size: version.size, mtime: version.mtime, mode: version.mode, hash: version.hash }
  if (version.at > 0) meta.at = version.at
  return meta
}

/** Same bytes, same kind, same permissions: nothing to copy or keep. */
export function sameContent(a: Pick<Version, 'kind' | 'hash' | 'target' | 'mode'>, b: Pick<Version, 'kind' | 'hash' | 'target' | 'mode'>): boolean {
  if (a.kind !== b.kind) return false
  if (a.kind === 'file') return a.hash === b.hash && (a.mode & 0o111) === (b.mode & 0o111)
  if (a.kind === 'symlink') return a.target === b.target
  return true
}
