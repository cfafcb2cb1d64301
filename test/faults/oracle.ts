import type { Tree } from '../helpers/tree.ts'

/**
 * The model of what the workload did, to judge the final folder against.
 *
 * Every file version a node wrote is recorded with its content hash (contents are unique per
 * write, but for empty files: a write that failed on a full disk leaves one), and so is every
 * version a node removed *after seeing it on its own disk* (the op
 * read it right before overwriting, deleting or moving it). A version that some node saw and
 * then replaced or deleted on purpose may legitimately vanish; every other version must be in
 * the final folder under its name or as a conflict copy of that name. A version that was
 * deleted on purpose and shows up again is a resurrected delete.
 */
export type RemovalKind = 'delete' | 'overwrite'

export interface WrittenVersion {
  node: number
  path: string
  hash: string
  size: number
  op: string
  atMs: number
}

export interface RemovedVersion {
  node: number
  path: string
  hash: string
  kind: RemovalKind
  op: string
  atMs: number
  /**
   * conflict copies of the path that were beside it when it was deleted: the node saw them and
   * left them, so one of them holding the deleted content is not brought back by anybody
   */
  copiesBeside?: string[]
}

const CONFLICT_MARK = /\.sync-conflict-\d{8}-\d{6}-[A-Za-z0-9]{7}/g

/** The path a conflict copy stands for (`a/b.sync-conflict-…-XXXXXXX.txt` → `a/b.txt`). */
export function familyOf(path: string): string {
  return path.replace(CONFLICT_MARK, '')
}

/**
 * Is `q` a conflict copy of `p` itself? Of a file (`a/b.txt`): any copy in its family
 * (`a/b.sync-conflict-…-X.txt`, and copies of those). Of a copy (`a/b.sync-conflict-…-X.txt`):
 * a copy made of it (`a/b.sync-conflict-…-X.sync-conflict-…-Y.txt`), whose last mark is the only
 * one it adds (fault suite seed 26513: a node renamed a copy away and left the copy of that
 * copy beside it; the oracle, which knew copies of files only, called the one left there
 * RESURRECTED).
 */
export function isCopyOf(q: string, p: string): boolean {
  if (!isConflictCopy(q)) return false
  if (familyOf(q) === p) return true
  const marks = [...q.matchAll(CONFLICT_MARK)]
  const last = marks[marks.length - 1]
  return last?.index !== undefined && q.slice(0, last.index) + q.slice(last.index + last[0].length) === p
}

export function isConflictCopy(path: string): boolean {
  return familyOf(path) !== path
}

function key(path: string, hash: string): string {
  return `${familyOf(path)}\0${hash}`
}

export interface OracleFindings {
  problems: string[]
  /** versions that were overwritten on purpose and still came back as a conflict copy */
  extraCopies: number
  required: number
}

export class Oracle {
  readonly writes: WrittenVersion[] = []
  readonly removals: RemovedVersion[] = []
  /**
   * writes whose file was replaced or moved away under the writer while it wrote: their bytes
   * went to an inode that may be unlinked, or that the agent may have put back or saved as a
   * conflict copy (allowed, not required)
   */
  readonly racedWrites: WrittenVersion[] = []
  readonly log: string[] = []
  private readonly startedAt = Date.now()

  private stamp(): string {
    return `+${((Date.now() - this.startedAt) / 1000).toFixed(3)}s`
  }

  note(line: string): void {
    this.log.push(`${this.stamp()} ${line}`)
  }

  wrote(v: Omit<WrittenVersion, 'atMs'>): void {
    this.writes.push({ ...v, atMs: Date.now() - this.startedAt })
  }

  raced(v: Omit<WrittenVersion, 'atMs'>): void {
    this.racedWrites.push({ ...v, atMs: Date.now() - this.startedAt })
    this.note(`n${v.node} RACED ${v.op} ${v.path}: the file was replaced by the agent while being written; ${v.hash.slice(0, 10)} not expected`)
  }

  removed(v: Omit<RemovedVersion, 'atMs'>): void {
    this.removals.push({ ...v, atMs: Date.now() - this.startedAt })
  }

  /** Judges the final tree (with sha256 of every file). */
  check(tree: Tree): OracleFindings {
    const problems: string[] = []
    // removals of a content anywhere in a family (it need not survive any more), and of a
    // content under the family's own name: a conflict copy deleted on purpose says nothing
    // against the same content under the name itself, where the workload may have put it
    // (fault suite seed 1001: a directory moved while one of its files held the same bytes as
    // that file's conflict copy; the copy was then deleted, the file kept)
    const superseded = new Map<string, RemovedVersion>()
    const deletedOnPurpose = new Map<string, RemovedVersion>()
    const supersededAtName = new Map<string, RemovedVersion>()
    const deletedAtName = new Map<string, RemovedVersion>()
    // a removal speaks for the versions written before it: the same content written at the
    // same name later (an empty file, again) is a new version (fault suite seed 5009: empty
    // files left by writes that failed on the full disk, deleted, and made again)
    const lastWriteAt = new Map<string, number>()
    for (const w of this.writes) lastWriteAt.set(key(w.path, w.hash), Math.max(w.atMs, lastWriteAt.get(key(w.path, w.hash)) ?? -1))
    // the same content written again at a name where a node had deleted or overwritten it
    // before: the agent names contents by hash (`was`, `replaced`), so when that new version
    // loses a conflict, its copy is withdrawn as content replaced on purpose (README, seed
    // 4129's known imprecision). The workload writes unique bytes, so this is an empty file
    // again (a write that failed on the full disk): allowed to vanish, nothing in it is lost
    // (fault suite seed 19512)
    const writtenAgain = new Set<string>()
    for (const r of this.removals) {
      const k = key(r.path, r.hash)
      if (r.atMs < (lastWriteAt.get(k) ?? -1)) {
        writtenAgain.add(k)
        continue
      }
      superseded.set(k, r)
      if (r.kind === 'delete') deletedOnPurpose.set(k, r)
      if (isConflictCopy(r.path)) continue
      supersededAtName.set(k, r)
      if (r.kind === 'delete') deletedAtName.set(k, r)
    }
    const present = new Set<string>()
    for (const [path, entry] of tree) {
      if (entry.type !== 'file') continue
      if (entry.sha256 === undefined) throw new Error('the oracle needs hashed trees')
      present.add(key(path, entry.sha256))
    }
    const required = new Map<string, WrittenVersion>()
    const known = new Map<string, WrittenVersion>()
    for (const w of this.writes) {
      const k = key(w.path, w.hash)
      known.set(k, w)
      if (superseded.has(k) || writtenAgain.has(k)) continue
      required.set(k, w)
    }
    // a raced write may be kept (the agent found the edit and put the file back, or saved it
    // as a conflict copy) or not: not required, but no unknown content either (fault suite
    // seed 17032: a truncate made while a peer's delete moved the file aside, which the agent
    // put back with the edit in it; the workload had found the path empty and called it raced)
    for (const w of this.racedWrites) if (!known.has(key(w.path, w.hash))) known.set(key(w.path, w.hash), w)
    for (const [k, w] of required) {
      if (!present.has(k)) {
        problems.push(`LOST: ${w.path} ${w.hash.slice(0, 12)} (${w.size} B) written by n${w.node} (${w.op}) at +${(w.atMs / 1000).toFixed(3)}s is neither under its name nor a conflict copy`)
      }
    }
    let extraCopies = 0
    for (const [path, entry] of tree) {
      if (entry.type !== 'file') continue
      const k = key(path, entry.sha256 as string)
      if (!known.has(k)) {
        problems.push(`UNKNOWN: ${path} holds ${entry.sha256?.slice(0, 12)} (${entry.sizeBytes} B), a content no node wrote at that name`)
        continue
      }
      if (required.has(k)) continue
      const copy = isConflictCopy(path)
      if (!copy && !supersededAtName.has(k)) continue // only copies of it were removed
      const deleted = (copy ? deletedOnPurpose : deletedAtName).get(k)
      // a copy the deleting node had beside the file and left there (seeds 4022, 5304: the
      // copy's own node moved it along with its directory, the other node then renamed the
      // file away and left the copy beside it)
      const leftOnPurpose = copy && deleted?.copiesBeside?.includes(path) === true
      if (deleted && !leftOnPurpose) {
        problems.push(`RESURRECTED: ${path} holds ${entry.sha256?.slice(0, 12)}, which n${deleted.node} deleted on purpose (${deleted.op}) at +${(deleted.atMs / 1000).toFixed(3)}s`)
      } else if (copy) {
        extraCopies++
      } else {
        const r = supersededAtName.get(k) as RemovedVersion
        problems.push(`STALE: ${path} shows ${entry.sha256?.slice(0, 12)}, which n${r.node} overwrote on purpose (${r.op}) at +${(r.atMs / 1000).toFixed(3)}s`)
      }
    }
    return { problems, extraCopies, required: required.size }
  }
}
