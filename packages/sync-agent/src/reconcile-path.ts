import type { Stats } from 'node:fs'
import { checkRelativePath, isSyncError, SyncError, toDriveKey } from '@sync-agent/shared'
import type { Logger } from './log.js'
import { decodeEntry, MAX_REPLACED_HISTORY, metaOf, readVersion, sameContent, type EntryKind, type EntryMeta, type Version } from './entry-format.js'
import { BlobReader, STALL_MS } from './blob-reader.js'
import { conflictName, decide, isTouch, parseConflictName, pickConflictName, type Decision, type Loser, type NameUse } from './merge.js'
import { advance, compareVectors, joinVectors, type VersionVector } from './version-vector.js'
import { differsFromRecord, linkStaysInside, type FolderWriter } from './folder-writer.js'
import { fingerprintOf, hasFingerprint, recordOf, type ApplyIntent, type IndexStore, type LocalRecord } from './index-store.js'
import { placingOf } from './recover-placements.js'
import { crashPoint } from './crash-points.js'
import type { DriveSet, MemberDrive } from './replication/drive-set.js'
import { blockAvailability } from './replication/block-availability.js'
import type { DriveEntry } from 'hyperdrive'
import type { BlobId } from 'hyperblobs'
import { inSharedBlock, type OwnDriveWriter } from './own-drive-writer.js'
import type { IgnoreRules } from './ignore-rules.js'
import type { Hints } from './sync-engine.js'
import type { LocalDivergence } from './local-divergence.js'
import { readLink, readLocalFile, sameStat, SMALL_FILE_BYTES, type LocalFile } from './read-local.js'
import { lstat } from 'node:fs/promises'
import { supersedableChunks, supersededError, unlessSuperseded, type Supersedable } from './supersede-signal.js'
import type { LocalBase } from './content/content-fetcher.js'

/**
 * One path, brought to agreement: if the disk changed since the index last saw it, the
 * change is published to our drive (with a version vector based on the version the disk
 * held, so a concurrent remote edit becomes a conflict, never an overwrite). Otherwise the
 * merged winner of all drives is applied to the disk, and conflicts we lost are resolved.
 */
/** `again`: we published a local change while another drive's version was there: merge once more */
export type Outcome = 'done' | 'unsettled' | 'dir-not-empty' | 'again'

/** how long a read waits for a member drive's latest index blocks before it reads what we diffed */
const ENTRY_TIMEOUT_MS = 3_000
/** how long a path new here waits for an index block of a drive that is still arriving */
const ARRIVING_ENTRY_TIMEOUT_MS = 2_000

export type ContentOrigin = 'peer-folder' | 'hypercore'

/** where a version's bytes come from before Hypercore (content/content-fetcher.ts) */
export interface ContentSource {
  /**
   * null: no connected peer has them; an array: small, whole and checked; `urgent`: someone
   * asks for the file now; `base`: the older version here, whose unchanged blocks need not be fetched
   */
  /** `signal`: a newer entry for the path ends the wait for a peer's first answer (E_SUPERSEDED) */
  open(version: Version, urgent?: boolean, base?: LocalBase | null, signal?: Supersedable): Promise<AsyncIterable<Uint8Array> | Uint8Array[] | null>
}

export interface ReconcileDeps {
  writer: FolderWriter
  /** peers' folders, tried first; absent: Hypercore only */
  content?: ContentSource
  /** how long a Hypercore read waits for blocks no connected peer has (FETCH_TIMEOUT_MS unless given) */
  fetchTimeoutMs?: number
  /** how long one Hypercore request for a version's blocks may go unanswered before it is asked again (blob-reader.ts STALL_MS) */
  fetchStallMs?: number
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
  /**
   * has the engine's diff of a member drive given up on its index for now (no connected peer
   * served a block of it in time) and is waiting to try again?
   */
  indexUnserved?(driveHex: string): boolean
  /**
   * Is any peer connected (one serving contents or Hypercore blocks)? Without one, a version
   * whose blocks are not here waits for a peer instead of for Hypercore (see fetch). Absent:
   * always asked of Hypercore.
   */
  peerConnected?(): boolean
  /** a new path appeared in our drive (a conflict copy): reconcile it too */
  onNewPath(path: string): void
  /**
   * our drive's entry for `path` was replaced outside that path's own run (a conflict copy
   * withdrawn): a run of it waiting for the old version's bytes ends, and it runs again
   */
  onOwnEntryReplaced(path: string): void
  onConflict(path: string, copy: string | null): void
  /** a file was written into the folder from a peer's version, its bytes read from a peer's folder or Hypercore blocks (metrics) */
  onFileApplied?(sizeBytes: number, source: ContentOrigin): void
  /** a local file change was published to our drive (metrics) */
  onFilePublished?(sizeBytes: number): void
}

function kindOf(st: Stats): 'file' | 'dir' | 'symlink' | null {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  return null
}

/** Is what the disk holds the version an interrupted apply was writing? */
function intentIs(intent: ApplyIntent, local: Pick<Version, 'kind' | 'hash' | 'target'>): boolean {
  const kind = intent.kind ?? 'file'
  if (kind !== local.kind) return false
  if (kind === 'file') return local.hash === intent.hash
  if (kind === 'symlink') return local.target === intent.target
  return true // a directory: no content to tell it by
}

/** mtimes as the folder compares them: to the second (what every file system keeps) */
function sameSecond(aMs: number, bMs: number): boolean {
  return Math.floor(aMs / 1000) === Math.floor(bMs / 1000)
}

/** Does the record describe the winner's content (bytes, kind, exec bit, link target)? */
function recordIs(record: LocalRecord, winner: Version): boolean {
  return sameContent({ kind: record.kind, hash: record.hash, target: record.target, mode: record.mode }, winner)
}

/**
 * Was `copy` (our conflict copy, which carries the vector of the version it keeps) deleted or
 * replaced on purpose by version `d` at the copy's path? `d` comes after it and either names
 * its content as what it replaced, or was made by another device from that very version of
 * ours: its vector holds our counter of that version, not a later one. (Our counter alone
 * cannot tell: every later version of ours, made after the copy took our version off the
 * path, has a higher one; a peer's version with exactly that counter saw ours on its disk,
 * through any number of its own edits since: a theme updated twice before the copy was known.)
 */
export function replacedCopy(d: Pick<Version, 'vv' | 'was' | 'author'> & { replaced?: readonly string[] }, copy: Pick<Version, 'vv' | 'hash'>, me: string): boolean {
  if (compareVectors(copy.vv, d.vv) !== 'before') return false
  if (d.was !== null && d.was === copy.hash) return true
  // replaced by an earlier entry of that drive, since overwritten by a later one there
  if (copy.hash !== null && d.replaced?.includes(copy.hash)) return true
  return d.author !== me && d.vv[me] !== undefined && d.vv[me] === copy.vv[me]
}

/**
 * What a new entry of ours at a path carries as `replaced`: what our previous entry there
 * (`prev`) replaced, newest first, without `was` (the new entry names that itself). A withdrawn
 * tombstone's own `was` is the withdrawn content, kept as a copy, not replaced: left out. So is
 * a touch's (a file version whose `was` is its own content: a new mtime on the same bytes, see
 * merge.ts): it replaced nothing. Carried on, it named that content replaced on purpose, and
 * when the touch then lost a conflict, the conflict copy of it was withdrawn at our next edit
 * of the path (fault suite seed 41010: LOST).
 */
export function replacedHistory(prev: Pick<Version, 'kind' | 'hash' | 'was' | 'replaced' | 'withdrawn'> | undefined, was: string | null | undefined, keep: string | null = null): string[] {
  if (!prev) return []
  const older = prev.withdrawn || isTouch(prev) ? prev.replaced : [prev.was, ...prev.replaced]
  const out: string[] = []
  for (const h of older) if (h !== null && h !== was && h !== keep && !out.includes(h) && out.length < MAX_REPLACED_HISTORY) out.push(h)
  return out
}

/** Is our drive's raw entry `raw` still version `v` (kind, content, vector)? */
function sameEntry(raw: DriveEntry<Buffer>, v: Version): boolean {
  try {
    const now = readVersion(v.drive, v.author, decodeEntry(raw))
    return now.kind === v.kind && now.hash === v.hash && compareVectors(now.vv, v.vv) === 'equal'
  } catch {
    return false
  }
}

/** Is every version `vv` names (what the disk's record descends from) in the versions read? */
function covers(versions: readonly Version[], vv: VersionVector): boolean {
  return ['before', 'equal'].includes(compareVectors(vv, joinVectors(versions.map((v) => v.vv))))
}

/** What a gather found out about its own reads: `stale` once a drive was read as diffed (see entryOf). */
interface GatherView {
  stale: boolean
}

/**
 * A hint is the entry a diff saw, as of the length it diffed; meanwhile a reconcile that read
 * the drive at its latest length may have put a newer version of it on the disk. A winner
 * older than the version the record says the disk holds comes from such a stale hint: the
 * drives are then read again (fault suite, rebuild phase: a kill -9 of a node catching up;
 * after the restart a ranged read's hint, older than the version applied a moment before,
 * chose a version that version had replaced, whose bytes no peer held any more: the path
 * waited twice for 30 s, and would have gone back a version had they come).
 */
function staleHint(versions: readonly Version[], record: LocalRecord): boolean {
  const winner = decide(versions).winner
  return winner !== null && compareVectors(winner.vv, record.vv) === 'before'
}

/** For debug logs: who, which vector, what. */
function describeVersion(v: Version): string {
  const replaced = v.replaced.length > 0 ? ':replaced=' + v.replaced.map((h) => h.slice(0, 8)).join(',') : ''
  return `${v.author.slice(0, 7)}:${v.kind}:${v.hash?.slice(0, 8) ?? ''}:${JSON.stringify(v.vv)}${v.was ? ':was=' + v.was.slice(0, 8) : ''}${replaced}${v.withdrawn ? ':withdrawn' : ''}`
}

function describeRecord(r: LocalRecord): string {
  return `${r.kind}:${r.hash?.slice(0, 8) ?? ''}:${JSON.stringify(r.vv)}`
}

export class PathReconciler {
  private readonly warnedLinks = new Set<string>()
  /** per member drive, the newest index block known to be here (newestIndexBlock) */
  private readonly newestHad = new Map<string, number>()
  private readonly reader: BlobReader
  private readonly stallMs: number

  constructor(private readonly deps: ReconcileDeps) {
    this.reader = new BlobReader(deps.fetchTimeoutMs)
    this.stallMs = deps.fetchStallMs ?? STALL_MS
  }

  /**
   * `signal`: aborted by the engine when a newer entry for the path arrives meanwhile; a wait
   * for the winner's bytes from Hypercore then ends with E_SUPERSEDED (see fetch). `urgent`: a
   * file someone asks for now (GET /files/): asked of peers ahead of their queues.
   */
  async reconcile(path: string, hints: Hints | null = null, signal?: Supersedable, urgent = false): Promise<Outcome> {
    const { writer, index } = this.deps
    let record = index.get(path)
    const st = await writer.lstatOrNull(path)
    const kind = st ? kindOf(st) : null
    if (st && !kind) return 'done' // sockets, fifos, devices: not ours to sync
    if (this.deps.rules().isIgnored(path, kind === 'dir' || (!st && record?.kind === 'dir'))) return 'done'
    // the removal of a delete we were applying when a crash took its record: the path was
    // emptied by our doing, not by a local delete, and what is there now was made after it (a
    // program wrote it while the agent was down): a new file, which replaced nothing (fault
    // suite seed 29514: a theme update; published as replacing the old record's content, it
    // had another node's conflict copy of that content withdrawn: LOST). See removeApplying
    const removedByUs = record !== undefined && (!st || differsFromRecord(st, record)) && this.removalInterrupted(path, record)
    if (removedByUs) {
      index.delete(path)
      record = undefined
    }
    // a path new here (on disk, never synced) is published whatever the others hold, so it
    // need not wait for drives that are still arriving (see gather)
    const view: GatherView = { stale: false }
    let versions = await this.gather(path, hints, st !== null && record === undefined, view)
    if (hints && record && staleHint(versions, record)) {
      view.stale = false // what the second read finds is what counts
      versions = await this.gather(path, null, false, view)
    }
    const diskChanged = (!removedByUs || st !== null) && (differsFromRecord(st, record) || (!st && !record && this.deletedBeforeRecorded(path, versions)))
    const reverting = diskChanged && this.deps.localOnly?.isReverting(path) === true
    if ((!diskChanged || reverting) && record && view.stale && !covers(versions, record.vv)) {
      // a drive read as far as we had diffed it (its newest index is not here: see entryOf)
      // shows less than this node already applied: the version on disk came from past that
      // point (a restart set the diff back to its last checkpoint). Deciding on that view
      // would put an older version back, or remove the file (no version at all): for an
      // unchanged file, and for a read-only node's revert of a local edit, which goes back to
      // the folder's version. The drive's diff marks the path again when its index comes. Any
      // other local change goes on (published, or on a read-only node kept as its own)
      this.deps.log.debug({ path, reverting, record: describeRecord(record), versions: versions.map(describeVersion) }, 'a drive\'s view is older than the version here: left for its diff')
      return 'done'
    }
    await this.markReplacedCopies(path, versions)
    if (!diskChanged && (await this.withdrawReplacedCopy(path, versions))) versions = await this.gather(path)
    const decision = decide(versions)
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
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ path, diskChanged, disk: kind, record: record && describeRecord(record), versions: versions.map(describeVersion), winner: decision.winner && describeVersion(decision.winner) }, 'reconcile')
    const outcome = diskChanged ? await this.publishLocal(path, st, record, decision, versions) : await this.applyWinner(path, st, record, decision, signal, urgent)
    await this.durable()
    return outcome
  }

  /**
   * The index record of what this reconcile wrote reaches the journal now, not within the flush
   * delay: a kill -9 just after an apply lost the record, and after the restart the file was
   * published again as a new version that beat the newer edit it had been overwritten with
   * (fault suite seed 700: STALE). Concurrent reconciles share a write. A failed write stays
   * pending; the store retries and reports it.
   */
  private async durable(): Promise<void> {
    await this.deps.index.flush().catch(() => undefined)
  }

  /**
   * Gone from the disk, never in the index, yet our drive holds a live version of it: we
   * published it from this disk and a kill -9 took the index record before the journal was
   * flushed; the file has since been deleted here (fault suite seed 611: written, deleted
   * 20 ms later, killed; the restart applied our own version back). That is a local delete.
   * Our conflict copies are the exception: we put them in our drive before they reach the disk.
   * Known by their mark, not their name: a file a program moved keeps its copy name (seed 12510).
   */
  private deletedBeforeRecorded(path: string, versions: readonly Version[]): boolean {
    const me = this.deps.drives.own
    const mine = versions.find((v) => v.drive === me.hex)
    if (!mine || mine.kind === 'deleted') return false
    // still in play (the folder would put it on this disk), not replaced by a later version
    if (versions.some((v) => v !== mine && ['before', 'equal'].includes(compareVectors(mine.vv, v.vv)))) return false
    return !mine.copy
  }

  /**
   * Was the path's recorded content being removed to apply a delete when the agent stopped?
   * The removal is journaled first (removeApplying); its record goes only after it. A kill -9
   * between the two left no file and the old record, which the restart took for a local delete
   * of that content: published as such (naming it as deleted on purpose), it withdrew the
   * conflict copy another node kept of that same content (fault suite seed 28626: LOST).
   */
  private removalInterrupted(path: string, record: LocalRecord): boolean {
    const intent = this.deps.index.intent(path)
    return intent?.kind === 'deleted' && intent.hash === (record.hash ?? '')
  }

  /**
   * Removes what the index records at `path` to apply a delete (or the path's last version
   * withdrawn everywhere). The intent reaches the journal first, as a file's does before its
   * rename (see removalInterrupted). Not removed (a local change found, a directory not
   * empty): the record stays and the intent goes. Returns whether it removed.
   */
  private async removeApplying(path: string, record: LocalRecord | undefined, vv: VersionVector): Promise<boolean> {
    const { writer, index } = this.deps
    if (record) {
      index.intend(path, { kind: 'deleted', hash: record.hash ?? '', size: record.size, vv })
      await index.flush().catch(() => undefined)
      crashPoint('delete-intended', path)
    }
    let removed = false
    try {
      removed = await writer.remove(path, record, this.rescueNames(path, 'deleted'))
      if (removed) crashPoint('delete-removed', path)
    } finally {
      if (!removed && record) index.set(path, record)
    }
    return removed
  }

  /** Read-only `revert`: the disk's version of the path gives way to the folder's. */
  private async revert(path: string, st: Stats | null, decision: Decision): Promise<Outcome> {
    const { writer, index } = this.deps
    const kind = st ? kindOf(st) : null
    // what the disk holds now, so the writer's "unchanged since the index" check passes
    const current = st && kind ? recordOf(st, kind, null, kind === 'symlink' ? await readLink(writer.abs(path)) : null, {}) : undefined
    const winner = decision.winner
    if (!winner || winner.kind === 'deleted') {
      if (st && !(await writer.remove(path, current, this.rescueNames(path, 'deleted')))) return 'dir-not-empty'
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
  async gather(path: string, hints: Hints | null = null, skipArriving = false, view?: GatherView): Promise<Version[]> {
    const key = toDriveKey(path)
    const out: Version[] = []
    await Promise.all(
      this.deps.drives.all().map(async (d) => {
        // a hint is the entry a diff saw; our own drive changes without diffs (we publish),
        // so a hint about it can be stale: read our own entry every time
        const hinted = d.isOwn ? undefined : hints?.get(d.hex)?.entry
        const arriving = skipArriving && !d.isOwn && hinted === undefined && (this.deps.appliedVersion?.(d.hex) ?? d.drive.version) < d.drive.version
        try {
          const entry = hinted !== undefined ? hinted : await this.entryOf(d, key, arriving ? ARRIVING_ENTRY_TIMEOUT_MS : ENTRY_TIMEOUT_MS, view)
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

  /**
   * A drive's entry for `key`; a value that is not JSON is the peer's fault, not ours.
   *
   * Read as of the drive's latest length if its index blocks are here or come within the
   * timeout; if not, as of the length we have diffed, whose blocks we read then. A peer that
   * announced new entries and went away before sending them (its link cut at that instant:
   * fault suite seed 967) held every reconcile on this node for the whole timeout, and again
   * on every retry for as long as it stayed away. What it appended is diffed when it is back,
   * and the path reconciled again then; a local change decided meanwhile is at worst
   * concurrent with it, which the merge keeps as a conflict copy. Such a read sets
   * `view.stale`: "as diffed" can be older than what the disk holds (after a restart the
   * diff starts again at the last checkpoint), and then that view decides nothing (see
   * reconcile).
   */
  private async entryOf(d: MemberDrive, key: string, timeoutMs = ENTRY_TIMEOUT_MS, view?: GatherView): Promise<DriveEntry<EntryMeta> | null> {
    // our own drive before its first entry (a fresh node taking in a whole folder): nothing
    // to read, and thousands of index reads saved
    if (d.isOwn && d.drive.version <= 1) return null
    let raw: DriveEntry<Buffer> | null
    try {
      // the engine gave up on this drive's index for now: read as diffed at once, not after a
      // wait inside Hyperbee's lock for each path (a writer serving its newest block and
      // withholding older ones made each read wait its whole timeout, one after the other)
      if (!d.isOwn && this.deps.indexUnserved?.(d.hex)) throw unservedIndex(d)
      if (!d.isOwn && this.newestHad.get(d.hex) !== d.drive.core.length - 1) await this.newestIndexBlock(d, timeoutMs)
      raw = await d.drive.entry<Buffer>(key, { timeout: timeoutMs, valueEncoding: 'binary' })
    } catch (err) {
      raw = await this.entryAsDiffed(d, key, err)
      if (view) view.stale = true
    }
    return raw ? decodeEntry(raw) : null
  }

  /**
   * Waits (at most `timeoutMs`) for a member drive's newest index block, the root of its tree,
   * in Hypercore, before Hyperbee reads it: Hyperbee holds a block's lock while it waits for
   * the block, so with a block no peer serves (a writer withholding the index of a length it
   * signed) every path's read of that drive waited behind the engine's diff of it (for good,
   * before the diff had a timeout), then behind each other, one timeout each: no peer's change
   * got through. Hypercore's reads of one block wait side by side and share one request.
   */
  private async newestIndexBlock(d: MemberDrive, timeoutMs: number): Promise<void> {
    const core = d.drive.core
    const newest = core.length - 1
    if (newest >= 1 && !(await core.has(newest))) await core.get(newest, { timeout: timeoutMs })
    // once here it stays (we never clear a member's blocks): the next read of this length skips the look
    this.newestHad.set(d.hex, newest)
  }

  /** The fallback of `entryOf`: `err` again if the diffed view has nothing to add. */
  private async entryAsDiffed(d: MemberDrive, key: string, err: unknown): Promise<DriveEntry<Buffer> | null> {
    const diffed = this.deps.appliedVersion?.(d.hex)
    if (d.isOwn || (err as { code?: string }).code !== 'REQUEST_TIMEOUT' || diffed === undefined || diffed >= d.drive.version) throw err
    if (diffed < 1) {
      // a drive we have applied nothing of: while its index arrives the path waits for it (this
      // read fails, the path is retried); once the engine gave up on that index (a new member's
      // writer withholding all of it), it holds nothing as far as we diffed it, or every path
      // any peer changes would wait for it as long as the index is withheld
      if (!this.deps.indexUnserved?.(d.hex)) throw err
      this.deps.log.debug({ drive: d.shortId, key, length: d.drive.version }, 'index of a drive nobody serves, none of it diffed: read as empty')
      return null
    }
    const view = d.drive.checkout(diffed)
    try {
      const raw = await view.entry<Buffer>(key, { wait: false, valueEncoding: 'binary' })
      this.deps.log.debug({ drive: d.shortId, key, diffed, length: d.drive.version }, 'index of a drive not here yet: read as diffed')
      return raw
    } catch {
      throw err
    } finally {
      await view.close().catch(() => undefined)
    }
  }

  private async stillSame(abs: string, st: Stats): Promise<boolean> {
    try {
      return sameStat(st, await lstat(abs))
    } catch {
      return false
    }
  }

  /**
   * The vector of a local change: after our own last version of the path and what the disk
   * held (the record), or, with no record, the deletes the folder agreed on. A file made
   * again where it had been deleted is newer than that delete: a fresh vector would make it
   * concurrent with every older version still held in a drive that had not caught up,
   * bringing them back as conflicts, and would hide that it replaced what the delete removed
   * (fault suite seed 603: a theme file deleted, then written again while another node's
   * version won over the delete).
   */
  private vectorFor(record: LocalRecord | undefined, decision: Decision, versions: readonly Version[]): VersionVector {
    const winner = decision.winner
    const base: VersionVector[] = []
    // our own last entry, whatever it is (live, deleted, withdrawn): a device never un-sees a
    // version. Left out, a version made from another base (the winner our loser gave way to)
    // no longer covered what our earlier versions had replaced, and those came back to life
    // as conflicts (fault suite seed 803: a version another node had appended to and then
    // deleted reappeared as a conflict copy)
    const mine = versions.find((v) => v.drive === this.deps.drives.own.hex)
    if (mine) base.push(mine.vv)
    if (record) base.push(record.vv)
    else {
      // withdrawn losers deleted nothing: their vectors stay out (joined in, a new file here
      // would claim to descend from the loser and so to replace its conflict copy: seed 702)
      if (winner?.kind === 'deleted') {
        for (const v of [winner, ...decision.losers.map((l) => l.version)]) if (!v.withdrawn) base.push(v.vv)
      }
    }
    return advance(base, this.deps.drives.own.author, this.deps.own.nextCounter())
  }

  /**
   * The file content a local change replaced (or deleted) here: the record's, or with no
   * record, what our own delete of the path replaced (a theme update deletes its files and
   * writes new ones: the new version replaced what the delete did).
   */
  private replaced(record: LocalRecord | undefined, versions: readonly Version[]): string | undefined {
    if (record) return record.kind === 'file' && record.hash ? record.hash : undefined
    const mine = versions.find((v) => v.drive === this.deps.drives.own.hex)
    return mine?.kind === 'deleted' && mine.was ? mine.was : undefined
  }

  /** A new entry of ours at a path keeps what our previous one there named as replaced (see EntryMeta.replaced). */
  private carryReplaced(meta: EntryMeta, versions: readonly Version[]): void {
    const replaced = replacedHistory(versions.find((v) => v.drive === this.deps.drives.own.hex), meta.was)
    if (replaced.length > 0) meta.replaced = replaced
  }

  private async publishLocal(path: string, st: Stats | null, record: LocalRecord | undefined, decision: Decision, versions: readonly Version[]): Promise<Outcome> {
    const { index, own, writer, drives } = this.deps
    const winner = decision.winner
    const key = toDriveKey(path)
    if (!st) {
      // deleted here: publish a tombstone unless the folder already agrees. A withdrawn loser's
      // tombstone is no agreement: the content we held lives on in its author's conflict copy,
      // which goes only once a delete names that content (fault suite seed 827: a directory
      // moved away with the loser's bytes in it, and the copy stayed)
      const withdrawnOnly = winner?.kind === 'deleted' && winner.withdrawn && record?.kind === 'file' && record.hash !== null
      // nor is a delete of other content: the disk held a version (ours, which lost a conflict
      // and lives on as our conflict copy) that the winner had not replaced here yet, and the
      // others deleted the winner. Our delete names what it deleted, so that copy goes too
      // (fault suite seed 1159: the copy outlived a delete made on the disk that showed it)
      const otherContent = winner?.kind === 'deleted' && record?.kind === 'file' && record.hash !== null &&
        !versions.some((v) => v.kind === 'deleted' && !v.withdrawn && v.was === record.hash)
      // nor is an older delete, or no version at all, where the disk held a version the
      // drives read do not show: one read as far as we had diffed it (see entryOf). Not
      // published, the delete was forgotten with the record, and the version came back with
      // that drive's index (fault suite seed 4001: a conflict copy removed by a theme update
      // while its node was down: RESURRECTED)
      const unseen = record !== undefined && !covers(versions, record.vv)
      if ((winner && (winner.kind !== 'deleted' || withdrawnOnly || otherContent)) || unseen) {
        const vv = this.vectorFor(record, decision, versions)
        const ts = this.deps.now()
        const metadata: EntryMeta = { v: 1, vv, ts, kind: 'deleted', size: 0, mtime: ts, mode: 0, hash: null }
        // what was deleted: a conflict copy of that very content is deleted too (see markReplacedCopies)
        const was = this.replaced(record, versions)
        if (was) metadata.was = was
        this.carryReplaced(metadata, versions)
        await own.put(key, { blob: null, metadata })
        await this.releaseReplaced(path, versions, null)
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
      const maybeSame = versions.some((v) => v.kind === 'file' && v.size === st.size) || this.deps.index.intent(path)?.size === st.size || record?.size === st.size
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
      const held = recordOf(st, kind, hash, target, winner.vv)
      if (kind !== 'file' || sameSecond(st.mtimeMs, winner.mtime)) {
        // the disk already holds the folder's version (after a crash, or the same edit made twice)
        index.set(path, held)
        return 'done'
      }
      if (!record || compareVectors(record.vv, winner.vv) !== 'equal') {
        // the same bytes under another mtime, not yet recorded as the folder's version (written
        // here and on a peer at once, or a crash took the record): the folder's mtime
        index.set(path, recordOf(await writer.setMtime(path, winner.mtime, held), kind, hash, target, winner.vv))
        return 'done'
      }
      // a touch of the version we hold (fault suite seed 707: a rewrite cut short by a full
      // disk left the same empty file with a new mtime): published below like any edit, or the
      // folders would differ in that mtime forever
    }
    if (kind === 'file' && record?.kind === 'file' && hash !== null && hash === record.hash && (record.mode & 0o111) === (mode & 0o111) &&
      winner && compareVectors(record.vv, winner.vv) === 'before') {
      // the bytes we last applied or published, touched (a new mtime), while the folder has
      // moved past them: no new content, so no new version. Published, it was concurrent with
      // the newer versions and undid them (fault suite seed 10509: a write that failed on the
      // full disk set the mtime of a file a peer had rewritten; the old bytes came back). The
      // folder's version is applied next
      this.deps.log.debug({ path, hash: hash.slice(0, 8) }, 'a touch of a version the folder has moved past: not published')
      index.set(path, recordOf(st, kind, hash, target, record.vv))
      return 'again'
    }
    if (kind !== 'file' || hash !== null) {
      const held = this.heldAfterCrash(path, st, local, record, decision, versions)
      if (held) {
        this.deps.log.debug({ path, held: held.what }, 'the disk holds a version whose record was lost: adopted')
        index.set(path, recordOf(st, kind, hash, target, held.vv))
        return 'again'
      }
    }
    const vv = this.vectorFor(record, decision, versions)
    const meta: EntryMeta = { v: 1, vv, ts: this.deps.now(), kind, size: kind === 'file' ? st.size : 0, mtime: st.mtimeMs, mode, hash: null }
    const was = this.replaced(record, versions)
    if (was) meta.was = was
    this.carryReplaced(meta, versions)
    if (kind === 'file') {
      // a touch of a version in our own drive: its blob holds these very bytes already. Not a
      // small file's: its shared block may be swept the moment no entry names it (a conflict
      // copy withdrawn by its family path's reconcile while this one decides), so its few
      // bytes are stored again; a large one's blob is kept from the sweeper until the put
      // (`keep`), or, if that cannot be promised, its bytes are stored again too
      const reuse = winner && winner.drive === drives.own.hex && winner.kind === 'file' && hash !== null && winner.hash === hash && winner.blob && !inSharedBlock(winner.blob) ? winner.blob : null
      const ours = reuse && winner && (await own.keep(reuse)) ? { blob: reuse, at: winner.at, hash: hash as string } : null
      const stored = ours ?? (small?.buffer ? { ...(await own.storeBuffer(small.buffer)), hash: small.hash } : await own.storeFile(abs, st.size))
      if (!stored || !(await this.stillSame(abs, st))) {
        this.deps.log.debug({ path, size: st.size, stored: stored !== null }, 'file changed while it was stored; trying again')
        // blocks no entry will name (never our own version's blocks, which a touch reuses)
        if (stored && !ours) await own.release(stored.blob).catch(() => undefined)
        if (ours) own.unkeep(ours.blob)
        return 'unsettled'
      }
      meta.hash = stored.hash
      if (stored.at > 0) meta.at = stored.at
      hash = stored.hash
      if (!record) {
        await this.intendPublish(path, st, meta)
        crashPoint('publish-intended', path)
      }
      await own.put(key, { executable: (mode & 0o111) !== 0, blob: stored.blob, metadata: meta })
      await this.releaseReplaced(path, versions, stored.blob)
      this.deps.onFilePublished?.(st.size)
    } else if (kind === 'symlink') {
      await own.put(key, { linkname: target, metadata: meta })
      await this.releaseReplaced(path, versions, null)
    } else {
      await own.put(key, { metadata: meta })
      await this.releaseReplaced(path, versions, null)
    }
    crashPoint('publish-put', path)
    index.set(path, recordOf(st, kind, hash, target, vv))
    this.deps.log.debug({ path, kind, hash: hash?.slice(0, 8), vv, was: meta.was?.slice(0, 8) }, 'published a local change')
    return this.afterPublish(decision)
  }

  /**
   * The version the disk holds when a crash took the index record of writing it (the journal
   * is flushed every 100 ms): it is that version, not a new edit, so it is recorded as such
   * and the merge goes on from there. Publishing it anew would restart its conflict with a
   * fresh vector: a version deleted or overwritten on purpose meanwhile would come back under
   * its name or as a second copy (fault suite: RESURRECTED and STALE after kill -9).
   * - a version the merge still considers (a loser) that the index had not moved past;
   * - any version the record is strictly older than (the record lost a later write);
   * - with no record at all, only our own drive's entry while it is in play (we published it
   *   and lost the record), or, after a later version replaced it, the one our journaled
   *   publish names, if the file is unchanged since (see ApplyIntent.publishing);
   * - the version this node was applying when it stopped (the index journals the intent before
   *   the rename), which may be gone from every drive by now: deleted or replaced elsewhere
   *   meanwhile (fault suite seed 705: published anew, the delete was undone: RESURRECTED).
   * An edit back to older content is none of these (the index had moved past that version,
   * or, after a delete, our own entry is the tombstone), so it is published.
   */
  private heldAfterCrash(path: string, st: Stats, local: Pick<Version, 'kind' | 'hash' | 'target' | 'mode'>, record: LocalRecord | undefined, decision: Decision, versions: readonly Version[]): { vv: VersionVector; what: string } | null {
    const considered = new Set<Version>(decision.losers.map((l) => l.version))
    for (const v of versions) {
      if (v.kind === 'deleted' || !sameContent(local, v)) continue
      const order = record ? compareVectors(record.vv, v.vv) : null
      const held = { vv: v.vv, what: describeVersion(v) }
      if (order === 'before') return held
      if (considered.has(v) && order !== 'after' && order !== 'equal') return held
      // (only while it is still in play: one a later version replaced was deleted or replaced
      // here too, and these bytes are a new file with the same content: an empty file, a
      // plugin installed again. Adopted, the later delete removed it: fault suite seed 12008)
      if (!record && v.drive === this.deps.drives.own.hex && !versions.some((w) => compareVectors(v.vv, w.vv) === 'before')) return held
    }
    const intent = this.deps.index.intent(path)
    if (intent?.publishing) {
      // the first version of a new file, put in our drive from these very bytes (the same inode,
      // unchanged) when a kill -9 took the record: that version, even once a later one replaced
      // it (a peer's delete, applied next). Published anew, it undid that delete (fault suite
      // seed 3534, a suspect: RESURRECTED). Not if the put never happened: our drive must hold it
      const mine = versions.find((v) => v.drive === this.deps.drives.own.hex)
      const put = mine !== undefined && mine.kind !== 'deleted' && compareVectors(mine.vv, intent.vv) === 'equal'
      if (!record && put && intentIs(intent, local) && hasFingerprint(st, intent.publishing)) {
        return { vv: intent.vv, what: `published ${intent.hash.slice(0, 8)} ${JSON.stringify(intent.vv)}` }
      }
      return null
    }
    if (intent && intentIs(intent, local)) {
      const order = record ? compareVectors(record.vv, intent.vv) : 'before'
      if (order === 'before' || order === 'concurrent') return { vv: intent.vv, what: `intent ${intent.kind ?? 'file'} ${intent.hash.slice(0, 8)} ${JSON.stringify(intent.vv)}` }
    }
    return null
  }

  /**
   * A file with no record is about to get its first version from this disk: the intent, with
   * the entry's vector and the file's fingerprint, reaches the journal before the put (see
   * ApplyIntent.publishing). The record that follows the put supersedes it. A journal that
   * cannot be written (a full disk) does not hold the publish up: the old window, no worse.
   */
  private async intendPublish(path: string, st: Stats, meta: EntryMeta): Promise<void> {
    this.deps.index.intend(path, { kind: 'file', hash: meta.hash ?? '', size: meta.size, vv: meta.vv, publishing: fingerprintOf(st) })
    await this.durable()
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

  private async applyWinner(path: string, st: Stats | null, record: LocalRecord | undefined, decision: Decision, signal?: Supersedable, urgent = false): Promise<Outcome> {
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
      if (!(await this.removeApplying(path, record, record.vv))) return 'dir-not-empty'
      index.delete(path)
      return 'done'
    }
    if (record && winner.kind !== 'deleted' && recordIs(record, winner)) {
      const adopting = compareVectors(record.vv, winner.vv) !== 'equal'
      if (adopting && st && winner.kind === 'file' && winner.drive !== drives.own.hex && !sameSecond(record.mtimeMs, winner.mtime)) {
        // the same bytes written here and on a peer at once (fault suite seed 609: two empty
        // files): the winner's mtime, or the folders differ in it forever (a later touch
        // here, made on the version already recorded, is left alone)
        const after = await writer.setMtime(path, winner.mtime, record)
        index.set(path, recordOf(after, 'file', record.hash, null, winner.vv))
        return 'done'
      }
      if (adopting) index.set(path, { ...record, vv: winner.vv })
      return 'done'
    }
    switch (winner.kind) {
      case 'deleted': {
        if (!st) {
          if (record) index.delete(path)
          return 'done'
        }
        if (!this.deps.mayDelete(path)) return 'done' // held: applied after `accept-deletes`
        if (!(await this.removeApplying(path, record, winner.vv))) return 'dir-not-empty'
        index.delete(path)
        return 'done'
      }
      case 'dir': {
        // journaled first, as for files: a kill -9 before the record must not make the
        // directory a new local one (published anew, it would undo a delete made meanwhile)
        index.intend(path, { kind: 'dir', hash: '', size: 0, vv: winner.vv })
        await index.flush().catch(() => undefined)
        const after = await writer.makeDir(path, winner.mode || 0o755)
        index.set(path, recordOf(after, 'dir', null, null, winner.vv))
        return 'done'
      }
      case 'symlink': {
        index.intend(path, { kind: 'symlink', hash: '', size: 0, target: winner.target as string, vv: winner.vv })
        await index.flush().catch(() => undefined)
        const after = await writer.writeSymlink(path, winner.target as string, record)
        index.set(path, recordOf(after, 'symlink', null, winner.target, winner.vv))
        return 'done'
      }
      case 'file': {
        const base = record?.kind === 'file' && record.hash ? { abs: writer.abs(path), size: record.size, hash: record.hash } : null
        const { chunks, origin } = await this.fetch(winner, signal, urgent, base)
        // journaled before the rename: a kill -9 between the rename and the record below
        // would leave the disk holding this version unrecorded (see heldAfterCrash)
        const intent = { kind: 'file' as const, hash: winner.hash as string, size: winner.size, vv: winner.vv }
        index.intend(path, intent)
        crashPoint('apply-intended', path)
        const beforeRename = async ({ tmp, st, byLink }: { tmp: string; st: Stats; byLink: boolean }) => {
          index.intend(path, { ...intent, placing: placingOf(tmp, st, byLink) })
          await index.flush().catch(() => undefined)
          crashPoint('apply-staged', path)
        }
        // not placed after all (a local change found right before the rename): the journal
        // no longer names the temp file, which then goes
        const abandoned = () => {
          index.intend(path, intent)
          return index.flush().then(
            () => true,
            () => false
          )
        }
        // an edit that lands on the replaced file during the rename is kept as a conflict copy
        const rescueAs = this.rescueNames(path, 'replaced')
        const meta = { mtimeMs: winner.mtime, mode: winner.mode, size: winner.size, hash: winner.hash as string, hashChecked: origin === 'peer-folder' }
        const after = await writer.writeFile(path, chunks, meta, record, { beforeRename, abandoned, rescueAs })
        crashPoint('apply-placed', path)
        index.set(path, recordOf(after, 'file', winner.hash, null, winner.vv))
        this.deps.onFileApplied?.(winner.size, origin)
        return 'done'
      }
    }
  }

  /**
   * Our local change at `path` was just put over our drive's previous entry there: that
   * version's blocks go (OwnDriveWriter.release; a small file's shared block once no entry
   * names a file in it), unless the new entry names the same blob (a touch). Only here: a
   * local change replaces the one entry that names them. A conflict copy names the blob of
   * the version it keeps, but the entry at the family path was withdrawn (a tombstone) in the
   * same batch, so a previous entry found here is never a copy's source; the other puts
   * (withdrawals, copies) release nothing.
   */
  private async releaseReplaced(path: string, versions: readonly Version[], kept: BlobId | null): Promise<void> {
    const previous = versions.find((v) => v.drive === this.deps.drives.own.hex)
    if (previous?.kind !== 'file' || !previous.blob) return
    if (kept && kept.blockOffset === previous.blob.blockOffset) return
    try {
      await this.deps.own.release(previous.blob)
    } catch (err) {
      // blocks kept: space, nothing else
      this.deps.log.debug({ err, path }, 'could not release the replaced version\'s blocks')
    }
  }

  /** Conflict-copy names for an edit that landed on a file while a peer's version replaced or deleted it. */
  private rescueNames(path: string, how: 'replaced' | 'deleted'): (attempt: number) => string {
    return (attempt) => {
      const name = conflictName(path, this.deps.now() + attempt * 1000, this.deps.drives.own.shortId)
      this.deps.log.warn({ path, copy: name }, `the file was edited while a peer's version ${how} it: the edit is kept as a conflict copy`)
      return name
    }
  }

  private async fetch(version: Version, signal?: Supersedable, urgent = false, base: LocalBase | null = null): Promise<{ chunks: AsyncIterable<Uint8Array> | Uint8Array[]; origin: ContentOrigin }> {
    if (version.size === 0 || !version.blob) return { chunks: [], origin: 'hypercore' }
    // a peer that went away without a word is waited for up to its response timeout, unless a
    // newer entry for the path ends the wait (as it ends Hypercore's below)
    const fromPeer = await this.deps.content?.open(version, urgent, base, signal)
    if (fromPeer) return { chunks: supersedableChunks(fromPeer, signal, version.path), origin: 'peer-folder' }
    const drive = this.deps.drives.get(version.drive)
    if (!drive) throw new Error(`drive ${version.drive.slice(0, 16)} is not open`)
    const blobs = await drive.drive.getBlobs()
    const { blockOffset, blockLength } = version.blob
    const held = () => blobs.core.has(blockOffset, blockOffset + blockLength)
    // a version of ours whose blocks are gone here was released: no entry of ours names it any
    // more (replaced or withdrawn since this run read it; the sweeper then cleared its block).
    // No peer is asked for bytes only we wrote: the path runs again with our newer entry
    // (fault suite seed 3005: a conflict copy withdrawn while its file was being placed, its
    // block swept, waited the whole 30 s)
    const released = async () => version.drive === this.deps.drives.own.hex && !(await held()) && !(await this.ownEntryNames(version))
    if (await released()) {
      this.deps.onNewPath(version.path)
      throw supersededError(version.path)
    }
    // With no peer connected, Hypercore can only wait (FETCH_TIMEOUT_MS) for one that has the
    // blocks, and one that connects meanwhile may not: it has the file in its folder, not the
    // blocks of a drive whose author is gone (a rebuilt node's old drive). Seen in the fault
    // suite's rebuild phase: after a kill -9 the paths reconciled before the peers were back
    // waited 30 s each. Unless the blocks are here, the path waits for a peer instead: it is
    // retried as soon as one connects (SyncEngine.retryNow).
    if (this.deps.peerConnected && !this.deps.peerConnected() && !(await held())) {
      throw new SyncError('E_NO_PEER', `no peer is connected to fetch ${version.path} from`, { details: { path: version.path } })
    }
    // Blocks no connected peer has are waited for up to FETCH_TIMEOUT_MS: a version whose
    // author is gone, replaced on the peers' disks since (fault suite, rebuild phase: a fresh
    // node chose it from a drive it had not caught up with; the path waited 30 s while the
    // newer entry had long arrived). A newer entry for the path ends the wait. A request left
    // unanswered for STALL_MS is dropped (Hypercore would not ask again), peers' folders are
    // asked again (one that was busy may serve it now), and then Hypercore again.
    const deadline = Date.now() + this.reader.timeoutMs
    let chunks: AsyncIterable<Uint8Array> | Uint8Array[]
    for (let attempt = 1; ; attempt++) {
      const left = Math.max(1, deadline - Date.now())
      const timeout = Math.min(this.stallMs, left)
      try {
        chunks = await unlessSuperseded(this.reader.read(version, blobs, timeout), signal, version.path)
        break
      } catch (err) {
        if ((err as { code?: string }).code !== 'REQUEST_TIMEOUT') throw err
        const last = timeout >= left
        if (this.deps.log.isLevelEnabled('debug')) {
          // who had the first block, as Hypercore saw it: nobody (a version no peer holds any
          // more), or a peer that did not answer (debug: during a cut link every path waiting
          // on the peer stalls every STALL_MS)
          const availability = await blockAvailability(blobs.core, version.blob.blockOffset)
          const msg = last ? 'no connected peer served these blocks in time' : 'a request for these blocks went unanswered; asking again'
          this.deps.log.debug({ path: version.path, drive: version.drive.slice(0, 16), attempt, ...availability }, msg)
        }
        if (last) throw err
        // and after each unanswered request: released while this run waited (our entry
        // replaced outside this run, its blocks swept), it is waited for no more
        if (await released()) {
          this.deps.onNewPath(version.path)
          throw supersededError(version.path)
        }
        const again = await this.deps.content?.open(version, urgent, base, signal)
        if (again) return { chunks: supersedableChunks(again, signal, version.path), origin: 'peer-folder' }
      }
    }
    return { chunks: supersedableChunks(chunks, signal, version.path), origin: 'hypercore' }
  }

  /** Does our drive's entry at `version`'s path still name its blob? */
  private async ownEntryNames(version: Version): Promise<boolean> {
    const current = await this.deps.drives.own.drive.entry(toDriveKey(version.path))
    return current?.value.blob?.byteOffset === version.blob?.byteOffset && current?.value.blob?.blockOffset === version.blob?.blockOffset
  }

  /**
   * A conflict copy we made of a version that was then deleted or replaced on purpose at
   * `path`: by a peer that still saw it there (it had not heard of the conflict yet), or here,
   * between the copy and the winner's arrival. The copy goes too, or the delete would be
   * undone by its own copy (fault suite: RESURRECTED copies after partitions, renames and
   * theme updates). Here the copies are only found and marked: each is withdrawn by its own
   * reconcile (withdrawReplacedCopy), which runs alone on its path, after any local edit of it
   * was published (seed 609: withdrawn from here, an edit made to the copy that moment was lost).
   */
  private async markReplacedCopies(path: string, versions: readonly Version[]): Promise<void> {
    const me = this.deps.drives.own
    // only versions that name what they replaced, or that descend from a version of ours
    const replacing = versions.filter((x) => x.was !== null || x.replaced.length > 0 || (x.author !== me.author && me.author in x.vv))
    if (replacing.length === 0 || me.drive.version <= 1) return
    const slash = path.lastIndexOf('/')
    const base = path.slice(slash + 1)
    const dot = base.lastIndexOf('.')
    const stem = dot === -1 ? base : base.slice(0, dot)
    const prefix = toDriveKey(path.slice(0, slash + 1) + stem + '.sync-conflict-')
    const range = { gte: prefix, lt: prefix + '\uffff' }
    const copies: Version[] = []
    for await (const raw of me.drive.entries<Buffer>(range, { valueEncoding: 'binary' } as { wait?: boolean })) {
      const copy = this.ownCopy(raw, path)
      if (copy && replacing.some((d) => replacedCopy(d, copy, me.author))) copies.push(copy)
    }
    for (const copy of copies) {
      // withdrawn now, while a version here still names its content. Left to the copy's own
      // reconcile, a later version of ours here (which names only what it replaced) could be
      // published first, and nothing named the copy's content any more: it stayed for good
      // (fault suite seed 1011: a delete naming the copy, then a kill -9, then another delete)
      const { index, writer } = this.deps
      const record = index.get(copy.path)
      const st = await writer.lstatOrNull(copy.path)
      const withdrawn = !differsFromRecord(st, record) && (await this.withdrawReplacedCopy(copy.path, await this.gather(copy.path), versions))
      // a run of the copy may be waiting for its bytes right now (its file not placed yet):
      // withdrawn, they are let go, and no peer has them (fault seed 4904: 30 s)
      if (withdrawn) this.deps.onOwnEntryReplaced(copy.path)
      else this.deps.onNewPath(copy.path)
    }
  }

  /** Our drive's entry `raw`, if it is a live conflict copy of `family` named with our id. */
  private ownCopy(raw: DriveEntry<Buffer>, family: string): Version | null {
    const me = this.deps.drives.own
    let copy: Version
    try {
      copy = readVersion(me.hex, me.author, decodeEntry(raw))
    } catch {
      return null
    }
    const parsed = parseConflictName(copy.path)
    if (!parsed || parsed.family !== family || parsed.shortId !== me.shortId.slice(0, 7) || copy.kind !== 'file') return null
    return copy
  }

  /**
   * `path` is our conflict copy of a version that was deleted or replaced on purpose at the
   * copy's family path (see markReplacedCopies): withdraw it. Runs only when the disk holds
   * what the index says (a local edit of the copy is published instead, and stays), and not
   * when another drive edited the copy since. Returns true when it withdrew.
   */
  private async withdrawReplacedCopy(path: string, versions: readonly Version[], familyVersions: readonly Version[] | null = null): Promise<boolean> {
    const me = this.deps.drives.own
    const parsed = parseConflictName(path)
    if (!parsed || parsed.shortId !== me.shortId.slice(0, 7)) return false
    const mine = versions.find((v) => v.drive === me.hex)
    if (!mine || mine.kind !== 'file') return false
    // an edit of the copy on another drive is a new version: it stays (it dominates ours)
    if (versions.some((x) => x.drive !== me.hex && x.kind !== 'deleted' && compareVectors(mine.vv, x.vv) === 'before')) return false
    const family = familyVersions ?? (await this.gather(parsed.family))
    if (!family.some((d) => replacedCopy(d, mine, me.author))) return false
    // a withdrawn tombstone, not a removed entry: a peer that applied the copy and whose diff
    // of our drive starts before the copy was put sees no net change if the key is simply
    // gone, and keeps the copy forever (fault suite seed 810: a kill -9 on a full disk). The
    // tombstone keeps the copy's vector, so the same loser withdrawn again (after a crash)
    // does not put the copy back (see withdraw)
    const ts = this.deps.now()
    // only over the entry this was decided on: the family's reconcile withdraws copies outside
    // the copy path's own turn, and an edit of the copy published meanwhile must stay (fault
    // suite seed 5310: the tombstone, with the copy's old vector, replaced our newer entry
    // holding a program's rewrite of the copy: LOST)
    const withdrawn = await this.deps.own.putIf(
      toDriveKey(path),
      { blob: null, metadata: { v: 1, vv: mine.vv, ts, kind: 'deleted', size: 0, mtime: ts, mode: 0, hash: null, was: mine.hash as string, withdrawn: true } },
      (current) => current !== null && sameEntry(current, mine)
    )
    if (!withdrawn) {
      this.deps.log.debug({ path }, 'conflict copy changed before its withdrawal: kept')
      return false
    }
    this.deps.own.forget(mine.blob)
    this.deps.log.info({ path: parsed.family, copy: path }, 'conflict copy withdrawn: its content was deleted or replaced on purpose where it was seen')
    return true
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
   *
   * The copy carries the loser's own version vector, so making the same copy twice (after a
   * crash, or the same content losing again) gives the same version, which a later delete of
   * the copy still dominates: a deleted copy never comes back (fault suite: copies deleted by
   * a theme update reappeared with a fresh vector). A copy our drive already holds is not
   * written again. The copy and the withdrawal go in one batch: a crash leaves both or neither.
   */
  private async withdraw(path: string, loser: Loser): Promise<void> {
    const { own, drives, log } = this.deps
    const v = loser.version
    let copy: string | null = null
    const writes: Promise<void>[] = []
    if (loser.keepCopy) {
      let base = path
      try {
        checkRelativePath(conflictName(path, v.ts, drives.own.shortId))
      } catch {
        base = path.slice(0, path.lastIndexOf('/') + 1) + 'conflict'
      }
      copy = await pickConflictName(base, v.ts, drives.own.shortId, (name) => this.nameUse(name, v))
      const mine = (await this.gather(copy)).find((x) => x.drive === drives.own.hex)
      // written unless our drive holds it already, or our delete of it (a delete of the copy
      // here: putting it again would replace that delete)
      const deletedHere = mine?.kind === 'deleted' && ['before', 'equal'].includes(compareVectors(v.vv, mine.vv))
      if (!deletedHere && (!mine || mine.kind === 'deleted' || !sameContent(mine, v))) {
        const kind: EntryKind = v.kind
        writes.push(
          own.put(toDriveKey(copy), {
            executable: (v.mode & 0o111) !== 0,
            blob: v.blob,
            linkname: v.target,
            metadata: { ...metaOf({ ...v, kind }), copy: true }
          })
        )
      }
    }
    // withdrawn, not removed: the entry keeps the loser's vector, so what the loser had
    // replaced stays replaced (with the entry gone, an older version it dominated came back as
    // a new loser and got a copy: fault suite seed 603)
    const ts = this.deps.now()
    const tombstone: EntryMeta = { v: 1, vv: v.vv, ts, kind: 'deleted', size: 0, mtime: ts, mode: 0, hash: null, withdrawn: true }
    // and what it had replaced stays named (seed 4129: a copy of content the loser replaced);
    // never the loser's own content, which lives on as the copy
    const replaced = replacedHistory(v, null, v.hash)
    if (replaced.length > 0) tombstone.replaced = replaced
    writes.push(own.put(toDriveKey(path), { blob: null, metadata: tombstone }))
    await Promise.all(writes)
    // named by the copy now, or by nothing (no copy kept): the sweeper decides
    own.forget(v.blob)
    log.info({ path, copy, loser: drives.own.shortId }, copy ? 'conflict: kept our version as a conflict copy' : 'conflict: our version lost')
    this.deps.onConflict(path, copy)
    if (copy) this.deps.onNewPath(copy)
  }
}

/** What a read of an index the engine gave up on fails with: as Hypercore's own timeout, so the path waits and is retried alike. */
function unservedIndex(d: MemberDrive): Error {
  return Object.assign(new Error(`no connected peer serves the index of ${d.shortId}'s drive`), { code: 'REQUEST_TIMEOUT' })
}
