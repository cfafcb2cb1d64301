import { ftruncateSync, writeSync, type Stats } from 'node:fs'
import { open as openFile, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { open as openBox, seal, SyncError } from '@sync-agent/shared'
import type { VersionVector } from './version-vector.js'

/**
 * The local view of the folder: path → what is on disk (stat fingerprint, content hash, and
 * the version vector of the version it is), plus how far each drive has been applied.
 *
 * Persisted in the data dir as an encrypted snapshot plus an append-only encrypted journal
 * (length-prefixed secretbox frames), so names never reach the disk in plaintext. A torn
 * last frame after a crash fails authentication and is dropped; what it held is found again
 * by the start-up scan, which compares the disk with this index.
 */
export interface LocalRecord {
  kind: 'file' | 'dir' | 'symlink'
  size: number
  mtimeMs: number
  ino: number
  mode: number
  hash: string | null
  target: string | null
  vv: VersionVector
}

/** The record of what `st` shows at a path (its fingerprint), with the version it holds. */
export function recordOf(st: Stats, kind: LocalRecord['kind'], hash: string | null, target: string | null, vv: VersionVector): LocalRecord {
  return { kind, size: kind === 'file' ? st.size : 0, mtimeMs: st.mtimeMs, ino: st.ino, mode: st.mode & 0o777, hash, target, vv }
}

export function fingerprintOf(st: Stats): Fingerprint {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o777 }
}

/** Is `st` a regular file with that fingerprint (the same inode, unchanged since)? */
export function hasFingerprint(st: Stats, fp: Fingerprint): boolean {
  return st.isFile() && st.ino === fp.ino && st.size === fp.size && st.mtimeMs === fp.mtimeMs && (st.mode & 0o777) === fp.mode
}

/**
 * A version about to be written over a path (journaled before the file is renamed into place).
 * A kill -9 between the rename and the journaling of the record leaves the disk holding that
 * version with no record of it: the intent says which version it is (see `intent`).
 */
export interface ApplyIntent {
  /**
   * absent in journals written before symlinks and directories had intents: a file.
   * 'deleted': the recorded content (`hash`, '' for a directory or link) is being removed to
   * apply a delete
   */
  kind?: 'file' | 'symlink' | 'dir' | 'deleted'
  /** a file's content hash ('' for the other kinds; for 'deleted', the content removed) */
  hash: string
  size: number
  /** a symlink's target */
  target?: string
  vv: VersionVector
  /**
   * Set just before the rename: the temp file holding the verified content (`STAGING_DIR/name`
   * when staged, else its name in the path's directory) and its fingerprint, which the rename keeps. After a crash this tells
   * "placed" (the fingerprint is at the path, or neither it nor the temp file is left: placed,
   * then changed there) from "not placed" (the temp file is still there). See `recoverPlacements`.
   */
  placing?: Placing
  /**
   * Not an apply: a local version of a path with no record about to be put in our own drive
   * (`vv` is the entry's), and the fingerprint of what the disk held when it was read. A kill -9
   * between the put and the record left a new file that looks never published; if a peer then
   * deleted or replaced that version, publishing it again undid the delete (README Limits, the
   * known window until session 32). The restart adopts it as that version instead, if our drive
   * holds the entry and the disk still holds those bytes under that fingerprint.
   */
  publishing?: Fingerprint
}

/** What a file's lstat says about it that a rename keeps (inode, size, mtime, permission bits). */
export interface Fingerprint {
  ino: number
  size: number
  mtimeMs: number
  mode: number
}

/** The temp file of an apply about to be placed, and its fingerprint (see `ApplyIntent.placing`) */
export interface Placing extends Fingerprint {
  tmp: string
  /**
   * the temp file's ctime when it was complete, for a new file placed with a hard link (absent
   * for a rename, and in journals written before it was kept): the link, and a program's
   * delete of the linked name, both change it
   */
  ctimeMs?: number
}

type Op =
  | ['s', string, LocalRecord]
  | ['d', string]
  | ['c', string, number]
  | ['i', string, ApplyIntent]

interface Snapshot {
  records: Array<[string, LocalRecord]>
  checkpoints: Array<[string, number]>
  intents?: Array<[string, ApplyIntent]>
}

const SNAPSHOT = 'index.snapshot'
const JOURNAL = 'index.journal'
const FLUSH_DELAY_MS = 100
const FLUSH_OPS = 2_000

export class IndexStore {
  private readonly records = new Map<string, LocalRecord>()
  private readonly checkpoints = new Map<string, number>()
  /** intents not yet followed by a record or delete of their path */
  private readonly intents = new Map<string, ApplyIntent>()
  /** regular files and their bytes, kept as records change (status asks often) */
  private files = 0
  private bytes = 0
  private pending: Op[] = []
  private journal: FileHandle | null = null
  private journalBytes = 0
  private snapshotBytes = 0
  private flushTimer: NodeJS.Timeout | null = null
  /** a flush about to start: callers meanwhile join it (see flush) */
  private gathering: Promise<void> | null = null
  /** a compaction writing its snapshot: journal writes wait for it (see compact) */
  private compacting: Promise<void> | null = null
  private closed = false

  constructor(
    private readonly dir: string,
    private readonly key: Buffer,
    /** a background journal write failed (the ops stay pending and are retried) */
    private readonly onWriteError: (err: unknown) => void = () => undefined
  ) {}

  async ready(): Promise<void> {
    await this.load()
    this.journal = await openFile(join(this.dir, JOURNAL), 'a', 0o600)
    if (this.journalBytes > Math.max(4 * 1024 * 1024, this.snapshotBytes)) await this.compact()
  }

  get size(): number {
    return this.records.size
  }

  get(path: string): LocalRecord | undefined {
    return this.records.get(path)
  }

  entries(): IterableIterator<[string, LocalRecord]> {
    return this.records.entries()
  }

  /** Regular files in the index and their total size. */
  fileTotals(): { files: number; bytes: number } {
    return { files: this.files, bytes: this.bytes }
  }

  set(path: string, record: LocalRecord): void {
    this.put(path, record)
    this.push(['s', path, record])
  }

  delete(path: string): void {
    const intended = this.intents.has(path)
    if (!this.drop(path) && !intended) return
    this.push(['d', path])
  }

  private put(path: string, record: LocalRecord): void {
    this.drop(path)
    this.intents.delete(path)
    this.records.set(path, record)
    if (record.kind === 'file') {
      this.files++
      this.bytes += record.size
    }
  }

  private drop(path: string): boolean {
    this.intents.delete(path)
    const old = this.records.get(path)
    if (!old) return false
    this.records.delete(path)
    if (old.kind === 'file') {
      this.files--
      this.bytes -= old.size
    }
    return true
  }

  /**
   * Notes that `intent`'s version is about to be written over `path`. It reaches the journal
   * with the next flush, which the caller awaits before the rename (so the intents of files
   * written at once share a journal write). The next record or delete of the path supersedes it.
   */
  intend(path: string, intent: ApplyIntent): void {
    this.intents.set(path, intent)
    this.push(['i', path, intent])
  }

  /** The version last intended for `path` whose record never followed (a crash between). */
  intent(path: string): ApplyIntent | undefined {
    return this.intents.get(path)
  }

  /** Every intent not followed by a record or delete (read at start, before temp files go). */
  pendingIntents(): IterableIterator<[string, ApplyIntent]> {
    return this.intents.entries()
  }

  checkpoint(drive: string): number {
    return this.checkpoints.get(drive) ?? 0
  }

  setCheckpoint(drive: string, version: number): void {
    if (this.checkpoints.get(drive) === version) return
    this.checkpoints.set(drive, version)
    this.push(['c', drive, version])
  }

  /**
   * Writes every pending change to the journal. A group commit: the write waits one turn of the
   * event loop, so the changes of reconciles finishing at once share one journal write.
   *
   * The write itself is synchronous: a frame of a few hundred bytes appended to a file in the
   * page cache takes microseconds, and a writer waits for it before each placement. Through
   * the thread pool, a fresh node's 3,763 journal writes for 8,011 files were most of the
   * pool's round trips, each one a promise, a wake-up and a turn of latency for the writers
   * waiting on it (2026-11-30). Nothing is fsynced here (see close and compact): a kill -9
   * keeps what reached the page cache.
   */
  async flush(): Promise<void> {
    if (this.pending.length === 0 || !this.journal) return
    if (!this.gathering) {
      this.gathering = new Promise<void>((resolve) => setImmediate(resolve)).finally(() => (this.gathering = null))
    }
    await this.gathering
    while (this.compacting) await this.compacting.catch(() => undefined)
    this.writePending()
  }

  private writePending(): void {
    if (this.pending.length === 0 || !this.journal) return
    const ops = this.pending
    this.pending = []
    const box = seal(this.key, Buffer.from(JSON.stringify(ops)))
    const frame = Buffer.alloc(4 + box.length)
    frame.writeUInt32BE(box.length, 0)
    box.copy(frame, 4)
    const fd = this.journal.fd
    try {
      const written = writeSync(fd, frame)
      if (written !== frame.length) {
        // a filling disk takes part of a frame without an error: cut it off again, or every
        // frame appended after it would be unreadable and the next start would refuse the index
        try {
          ftruncateSync(fd, this.journalBytes)
        } catch {
          // the next start drops a torn tail anyway
        }
        throw Object.assign(new Error(`index journal: wrote ${written} of ${frame.length} bytes (disk full?)`), { code: 'ENOSPC' })
      }
      this.journalBytes += frame.length
    } catch (err) {
      this.pending = ops.concat(this.pending) // keep them for the next flush
      throw err
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.flushTimer) clearTimeout(this.flushTimer)
    await this.flush()
    await this.journal?.sync()
    await this.journal?.close()
    this.journal = null
  }

  private push(op: Op): void {
    this.pending.push(op)
    if (this.closed) return
    if (this.pending.length >= FLUSH_OPS) {
      this.flushSoon(0)
    } else {
      this.flushSoon(FLUSH_DELAY_MS)
    }
  }

  private flushSoon(delayMs: number): void {
    if (this.flushTimer && delayMs > 0) return
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null
      // the ops stay pending: the next flush retries, close() surfaces a persistent failure
      this.flush().catch(this.onWriteError)
    }, delayMs)
    this.flushTimer.unref()
  }

  private async load(): Promise<void> {
    const snapshotBox = await readIfExists(join(this.dir, SNAPSHOT))
    if (snapshotBox) {
      this.snapshotBytes = snapshotBox.length
      const plain = openBox(this.key, snapshotBox)
      if (!plain) {
        throw new SyncError('E_DATA_DIR', `the index snapshot in ${this.dir} cannot be decrypted: damaged, or written with another folder secret`)
      }
      const snapshot = JSON.parse(plain.toString('utf8')) as Snapshot
      for (const [path, record] of snapshot.records) this.put(path, record)
      for (const [drive, version] of snapshot.checkpoints) this.checkpoints.set(drive, version)
      for (const [path, intent] of snapshot.intents ?? []) this.intents.set(path, intent)
    }
    const journal = await readIfExists(join(this.dir, JOURNAL))
    if (!journal) return
    let offset = 0
    while (offset + 4 <= journal.length) {
      const length = journal.readUInt32BE(offset)
      // a write cut short by a crash leaves a frame longer than the file: drop that tail
      if (offset + 4 + length > journal.length) break
      const plain = openBox(this.key, journal.subarray(offset + 4, offset + 4 + length))
      if (!plain) {
        // a whole frame that does not authenticate is damage or another secret, not a crash
        throw new SyncError('E_DATA_DIR', `the index journal in ${this.dir} cannot be decrypted: damaged, or written with another folder secret`)
      }
      for (const op of JSON.parse(plain.toString('utf8')) as Op[]) this.replay(op)
      offset += 4 + length
    }
    this.journalBytes = offset
    if (offset !== journal.length) {
      // drop the torn tail so new frames are not appended after garbage
      await writeFile(join(this.dir, JOURNAL), journal.subarray(0, offset), { mode: 0o600 })
    }
  }

  private replay(op: Op): void {
    if (op[0] === 's') this.put(op[1], op[2])
    else if (op[0] === 'd') this.drop(op[1])
    else if (op[0] === 'i') this.intents.set(op[1], op[2])
    else this.checkpoints.set(op[1], op[2])
  }

  /**
   * Rewrites the snapshot from memory and empties the journal. Journal writes wait meanwhile:
   * one appended while the snapshot was written was cut off with the journal, and what it
   * held (changes made after the snapshot was taken) was lost at the next kill -9.
   */
  async compact(): Promise<void> {
    await this.flush()
    while (this.compacting) await this.compacting.catch(() => undefined)
    const run = this.rewriteSnapshot()
    this.compacting = run
    try {
      await run
    } finally {
      if (this.compacting === run) this.compacting = null
    }
  }

  private async rewriteSnapshot(): Promise<void> {
    const snapshot: Snapshot = { records: [...this.records], checkpoints: [...this.checkpoints], intents: [...this.intents] }
    const box = seal(this.key, Buffer.from(JSON.stringify(snapshot)))
    const tmp = join(this.dir, SNAPSHOT + '.tmp')
    const handle = await openFile(tmp, 'w', 0o600)
    try {
      const { bytesWritten } = await handle.write(box)
      if (bytesWritten !== box.length) {
        throw Object.assign(new Error(`index snapshot: wrote ${bytesWritten} of ${box.length} bytes (disk full?)`), { code: 'ENOSPC' })
      }
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, join(this.dir, SNAPSHOT))
    this.snapshotBytes = box.length
    await this.journal?.truncate(0)
    this.journalBytes = 0
  }
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}
