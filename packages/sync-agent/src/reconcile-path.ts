import type { Stats } from 'node:fs'
import { checkRelativePath, isSyncError, toDriveKey } from '@sync-agent/shared'
import type { Logger } from './log.js'
import { decodeEntry, metaOf, readVersion, sameContent, type EntryKind, type EntryMeta, type Version } from './entry-format.js'
import { BlobReader } from './blob-reader.js'
import { conflictName, decide, pickConflictName, type Decision, type Loser, type NameUse } from './merge.js'
import { advance, compareVectors, type VersionVector } from './version-vector.js'
import { fingerprintMatches, linkStaysInside, type FolderWriter } from './folder-writer.js'
import type { IndexStore, LocalRecord } from './index-store.js'
import type { DriveSet, MemberDrive } from './replication/drive-set.js'
import type { DriveEntry } from 'hyperdrive'
import type { OwnDriveWriter } from './own-drive-writer.js'
import type { IgnoreRules } from './ignore-rules.js'
import type { Hints } from './sync-engine.js'
import type { LocalDivergence } from './local-divergence.js'
import { readLink, readLocalFile, sameStat, SMALL_FILE_BYTES, type LocalFile } from './read-local.js'
import { lstat } from 'node:fs/promises'

/**
 * One path, brought to agreement: if the disk changed since the index last saw it, the
 * change is published to our drive (with a version vector based on the version the disk
 * held, so a concurrent remote edit becomes a conflict, never an overwrite). Otherwise the
 * merged winner of all drives is applied to the disk, and conflicts we lost are resolved.
 */
/** `again`: we published a local change while another drive's version was there: merge once more */
export type Outcome = 'done' | 'unsettled' | 'dir-not-empty' | 'again'

const ENTRY_TIMEOUT_MS = 15_000
/** how long a path new here waits for an index block of a drive that is still arriving */
const ARRIVING_ENTRY_TIMEOUT_MS = 2_000

export interface ReconcileDeps {
  writer: FolderWriter
  index: IndexStore
  drives: DriveSet
  own: OwnDriveWriter
  rules: () => IgnoreRules
  /** read-only peers: where local changes are kept instead of published (null when read-write) */
  localOnly: LocalDivergence | null
  /** false while a mass delete holds this path's deletion */
  mayDelete(path: string): boolean
  log: Logger
  /** publish times (the cluster's clock, see cluster-clock.ts) */
  now(): number
  /**
   * how far the engine has diffed a member drive: every entry past it will be marked (and
   * reconciled) again by the drive's diff
   */
  appliedVersion?(driveHex: string): number
  /** a new path appeared in our drive (a conflict copy): reconcile it too */
  onNewPath(path: string): void
  onConflict(path: string, copy: string | null): void
  /** a file was written into the folder from a peer's version (metrics) */
  onFileApplied?(sizeBytes: number): void
  /** a local file change was published to our drive (metrics) */
  onFilePublished?(sizeBytes: number): void
}

function kindOf(st: Stats): 'file' | 'dir' | 'symlink' | null {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  return null
}

function recordOf(st: Stats, kind: LocalRecord['kind'], hash: string | null, target: string | null, vv: VersionVector): LocalRecord {
  return { kind, size: kind === 'file' ? st.size : 0, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash, target, vv }
}

/** Does the record describe the winner's content (bytes, kind, exec bit, link target)? */
function recordIs(record: LocalRecord, winner: Version): boolean {
  return sameContent({ kind: record.kind, hash: record.hash, target: record.target, mode: record.mode }, winner)
}

export class PathReconciler {
  private readonly warnedLinks = new Set<string>()
  private readonly reader = new BlobReader()

  constructor(private readonly deps: ReconcileDeps) {}

  async reconcile(path: string, hints: Hints | null = null): Promise<Outcome> {
    const { writer, index } = this.deps
    const record = index.get(path)
    const st = await writer.lstatOrNull(path)
    const kind = st ? kindOf(st) : null
    if (st && !kind) return 'done' // sockets, fifos, devices: not ours to sync
    if (this.deps.rules().isIgnored(path, kind === 'dir' || (!st && record?.kind === 'dir'))) return 'done'
    // a path new here (on disk, never synced) is published whatever the others hold, so it
    // need not wait for drives that are still arriving (see gather)
    const decision = decide(await this.gather(path, hints, st !== null && record === undefined))
    const diskChanged = st ? !record || !fingerprintMatches(st, record) : record !== undefined
    const localOnly = this.deps.localOnly
    if (diskChanged && localOnly) {
      if (!localOnly.isReverting(path)) {
        localOnly.add(path) // read-only: kept here, not published, not overwritten
        return 'done'
      }
      const outcome = await this.revert(path, st, decision)
      if (outcome === 'done') localOnly.agreed(path)
      return outcome
    }
    localOnly?.agreed(path)
    if (diskChanged) return this.publishLocal(path, st, record, decision)
    return this.applyWinner(path, st, record, decision)
  }

  /** Read-only `revert`: the disk's version of the path gives way to the folder's. */
  private async revert(path: string, st: Stats | null, decision: Decision): Promise<Outcome> {
    const { writer, index } = this.deps
    const kind = st ? kindOf(st) : null
    // what the disk holds now, so the writer's "unchanged since the index" check passes
    const current = st && kind ? recordOf(st, kind, null, kind === 'symlink' ? await readLink(writer.abs(path)) : null, {}) : undefined
    const winner = decision.winner
    if (!winner || winner.kind === 'deleted') {
      if (st && !(await writer.remove(path, current))) return 'dir-not-empty'
      index.delete(path)
      return 'done'
    }
    return this.applyWinner(path, st, current, { winner, losers: [] })
  }

  /**
   * What every member drive says about the path, validated. `skipArriving`: leave out a drive
   * the engine is still catching up with whose index blocks for the path do not come within
   * ARRIVING_ENTRY_TIMEOUT_MS (a huge drive arriving, a flood of entries from one member: they
   * can be minutes away, and a local edit must not wait for them). Only for a path new here:
   * what such a drive says about it changes nothing but the shortcut for content it already
   * has (a copy published twice is no conflict); a version it holds that we have not diffed
   * yet is marked again by its diff.
   */
  async gather(path: string, hints: Hints | null = null, skipArriving = false): Promise<Version[]> {
    const key = toDriveKey(path)
    const out: Version[] = []
    await Promise.all(
      this.deps.drives.all().map(async (d) => {
        // a hint is the entry a diff saw; our own drive changes without diffs (we publish),
        // so a hint about it can be stale: read our own entry every time
        const hinted = d.isOwn ? undefined : hints?.get(d.hex)
        const arriving = skipArriving && !d.isOwn && hinted === undefined && (this.deps.appliedVersion?.(d.hex) ?? d.drive.version) < d.drive.version
        try {
          const entry = hinted !== undefined ? hinted : await this.entryOf(d, key, arriving ? ARRIVING_ENTRY_TIMEOUT_MS : ENTRY_TIMEOUT_MS)
          if (entry) out.push(readVersion(d.hex, d.author, entry))
        } catch (err) {
          if (arriving && (err as { code?: string }).code === 'REQUEST_TIMEOUT') {
            this.deps.log.debug({ path, drive: d.shortId }, 'a drive still arriving has no index here for this new path yet; not waiting for it')
            return
          }
          if (!isSyncError(err)) throw err
          this.deps.log.warn({ code: err.code, drive: d.shortId, ...err.details }, err.message)
        }
      })
    )
    return out
  }

  /** A drive's entry for `key`; a value that is not JSON is the peer's fault, not ours. */
  private async entryOf(d: MemberDrive, key: string, timeoutMs = ENTRY_TIMEOUT_MS): Promise<DriveEntry<EntryMeta> | null> {
    // our own drive before its first entry (a fresh node taking in a whole folder): nothing
    // to read, and thousands of index reads saved
    if (d.isOwn && d.drive.version <= 1) return null
    const raw = await d.drive.entry<Buffer>(key, { timeout: timeoutMs, valueEncoding: 'binary' })
    return raw ? decodeEntry(raw) : null
  }

  private async stillSame(abs: string, st: Stats): Promise<boolean> {
    try {
      return sameStat(st, await lstat(abs))
    } catch {
      return false
    }
  }

  private vectorFor(record: LocalRecord | undefined): VersionVector {
    return advance(record ? [record.vv] : [], this.deps.drives.own.author, this.deps.own.nextCounter())
  }

  private async publishLocal(path: string, st: Stats | null, record: LocalRecord | undefined, decision: Decision): Promise<Outcome> {
    const { index, own, writer, drives } = this.deps
    const winner = decision.winner
    const key = toDriveKey(path)
    if (!st) {
      // deleted here: publish a tombstone unless the folder already agrees
      if (winner && winner.kind !== 'deleted') {
        const vv = this.vectorFor(record)
        const ts = this.deps.now()
        await own.put(key, { blob: null, metadata: { v: 1, vv, ts, kind: 'deleted', size: 0, mtime: ts, mode: 0, hash: null } })
      }
      index.delete(path)
      return this.afterPublish(decision)
    }
    const kind = kindOf(st) as 'file' | 'dir' | 'symlink'
    const abs = writer.abs(path)
    let target: string | null = null
    let hash: string | null = null
    let small: LocalFile | null = null
    if (kind === 'symlink') {
      target = await readLink(abs)
      if (!linkStaysInside(writer.root, path, target)) {
        if (!this.warnedLinks.has(path)) {
          this.warnedLinks.add(path)
          this.deps.log.warn({ code: 'E_PATH_UNSAFE', path }, 'symlink points outside the folder; not synced')
        }
        return 'done'
      }
    } else if (kind === 'file') {
      // hash before storing only when the bytes may already be published (same size)
      const maybeSame = winner?.kind === 'file' && winner.size === st.size
      if (st.size <= SMALL_FILE_BYTES || maybeSame) {
        small = await readLocalFile(abs, st)
        if (!small) {
          this.deps.log.debug({ path, size: st.size }, 'file changed while it was read; trying again')
          return 'unsettled'
        }
        hash = small.hash
      }
    }
    const mode = st.mode & 0o777
    const local = { kind, hash, target, mode }
    if (winner && winner.kind !== 'deleted' && (kind !== 'file' || hash !== null) && sameContent(local, winner)) {
      // the disk already holds the folder's version (after a crash, or the same edit made twice)
      index.set(path, recordOf(st, kind, hash, target, winner.vv))
      return 'done'
    }
    const vv = this.vectorFor(record)
    const meta: EntryMeta = { v: 1, vv, ts: this.deps.now(), kind, size: kind === 'file' ? st.size : 0, mtime: st.mtimeMs, mode, hash: null }
    if (kind === 'file') {
      const stored = small?.buffer ? { ...(await own.storeBuffer(small.buffer)), hash: small.hash } : await own.storeFile(abs, st.size)
      if (!stored || !(await this.stillSame(abs, st))) {
        this.deps.log.debug({ path, size: st.size, stored: stored !== null }, 'file changed while it was stored; trying again')
        return 'unsettled'
      }
      meta.hash = stored.hash
      if (stored.at > 0) meta.at = stored.at
      hash = stored.hash
      await own.put(key, { executable: (mode & 0o111) !== 0, blob: stored.blob, metadata: meta })
      this.deps.onFilePublished?.(st.size)
    } else if (kind === 'symlink') {
      await own.put(key, { linkname: target, metadata: meta })
    } else {
      await own.put(key, { metadata: meta })
    }
    index.set(path, recordOf(st, kind, hash, target, vv))
    return this.afterPublish(decision)
  }

  /**
   * Our new version may be concurrent with a version another drive already had (its change
   * arrived before we published ours): nothing else will mark the path again, so merge once
   * more here, or a losing local delete or edit would stay on this disk only (fault suite
   * seed 400: a delete lost to a concurrent append everywhere but on the deleting node).
   */
  private afterPublish(decision: Decision): Outcome {
    const others = [decision.winner, ...decision.losers.map((l) => l.version)].some((v) => v && v.drive !== this.deps.drives.own.hex)
    return others ? 'again' : 'done'
  }

  private async applyWinner(path: string, st: Stats | null, record: LocalRecord | undefined, decision: Decision): Promise<Outcome> {
    const { writer, index, drives } = this.deps
    for (const loser of decision.losers) {
      // a delete that lost stays recorded (withdrawing it on an out-of-date view could leave
      // a path with no version at all); it holds no content, so no copy is needed
      if (loser.version.drive === drives.own.hex && loser.version.kind !== 'deleted') await this.withdraw(path, loser)
    }
    const winner = decision.winner
    if (!winner) {
      // every drive withdrew its version: conflicts were decided on views that were out of
      // date (a peer withdrew in favour of a version whose author meanwhile withdrew it too).
      // No version is left, so the path goes here as on every peer; each withdrawn content
      // lives on as a conflict copy or in the version it lost to. Only what the index says we
      // applied is removed: a local edit is published instead (the writer checks).
      if (!st || !record) return 'done'
      if (!(await writer.remove(path, record))) return 'dir-not-empty'
      index.delete(path)
      return 'done'
    }
    if (record && winner.kind !== 'deleted' && recordIs(record, winner)) {
      if (compareVectors(record.vv, winner.vv) !== 'equal') index.set(path, { ...record, vv: winner.vv })
      return 'done'
    }
    switch (winner.kind) {
      case 'deleted': {
        if (!st) {
          if (record) index.delete(path)
          return 'done'
        }
        if (!this.deps.mayDelete(path)) return 'done' // held: applied after `accept-deletes`
        if (!(await writer.remove(path, record))) return 'dir-not-empty'
        index.delete(path)
        return 'done'
      }
      case 'dir': {
        const after = await writer.makeDir(path, winner.mode || 0o755)
        index.set(path, recordOf(after, 'dir', null, null, winner.vv))
        return 'done'
      }
      case 'symlink': {
        const after = await writer.writeSymlink(path, winner.target as string, record)
        index.set(path, recordOf(after, 'symlink', null, winner.target, winner.vv))
        return 'done'
      }
      case 'file': {
        const chunks = await this.fetch(winner)
        const after = await writer.writeFile(path, chunks, { mtimeMs: winner.mtime, mode: winner.mode, size: winner.size, hash: winner.hash as string }, record)
        index.set(path, recordOf(after, 'file', winner.hash, null, winner.vv))
        this.deps.onFileApplied?.(winner.size)
        return 'done'
      }
    }
  }

  private async fetch(version: Version): Promise<AsyncIterable<Uint8Array> | Uint8Array[]> {
    if (version.size === 0 || !version.blob) return []
    const drive = this.deps.drives.get(version.drive)
    if (!drive) throw new Error(`drive ${version.drive.slice(0, 16)} is not open`)
    return this.reader.read(version, await drive.drive.getBlobs())
  }

  /** Is `name` free for a conflict copy of `v` (nothing there, or only deletes), or does it hold `v`'s content already? */
  private async nameUse(name: string, v: Version): Promise<NameUse> {
    const live = (await this.gather(name)).filter((x) => x.kind !== 'deleted')
    if (live.some((x) => sameContent(x, v))) return 'same'
    if (live.length > 0 || (await this.deps.writer.lstatOrNull(name))) return 'taken'
    return 'free'
  }

  /**
   * We authored a version that lost: keep its content as a conflict copy (same blob, no
   * copy of the bytes) and withdraw our entry, which ends the conflict on every peer.
   */
  private async withdraw(path: string, loser: Loser): Promise<void> {
    const { own, drives, log } = this.deps
    const v = loser.version
    let copy: string | null = null
    if (loser.keepCopy) {
      let base = path
      try {
        checkRelativePath(conflictName(path, v.ts, drives.own.shortId))
      } catch {
        base = path.slice(0, path.lastIndexOf('/') + 1) + 'conflict'
      }
      copy = await pickConflictName(base, v.ts, drives.own.shortId, (name) => this.nameUse(name, v))
      const vv = advance([], drives.own.author, own.nextCounter())
      const kind: EntryKind = v.kind
      await own.put(toDriveKey(copy), {
        executable: (v.mode & 0o111) !== 0,
        blob: v.blob,
        linkname: v.target,
        metadata: metaOf({ ...v, kind, vv })
      })
    }
    await own.del(toDriveKey(path))
    log.info({ path, copy, loser: drives.own.shortId }, copy ? 'conflict: kept our version as a conflict copy' : 'conflict: our version lost')
    this.deps.onConflict(path, copy)
    if (copy) this.deps.onNewPath(copy)
  }
}
