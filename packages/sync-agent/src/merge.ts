import { compareVectors } from './version-vector.js'
import { sameContent, type Version } from './entry-format.js'

/**
 * Pure merge: given what every drive says about one path, which version the folder shows.
 *
 * 1. A version dominated by another (its vector is strictly before) is history: ignored.
 * 2. Among the remaining, concurrent versions: an existing file beats a delete ("modify
 *    beats delete"), then the later publish time, then the larger author id, then the
 *    larger drive key. Every peer that sees the same versions picks the same winner.
 *    A touch (a version whose content is the one it replaced: a new mtime, mode or the same
 *    bytes written again) does not win over a concurrent version that replaced or deleted
 *    that very content on purpose (its `was` or `replaced` names it): it brings nothing the
 *    other had not seen, and letting it win undid a delete (fault suite seed 10513: a write
 *    that failed on a full disk still set the file's mtime).
 * 3. Every other concurrent version is a loser. A loser whose content differs from the
 *    winner's must be kept as a conflict copy; its author (and only its author) publishes
 *    that copy and withdraws its entry, which ends the conflict everywhere. A touch that lost
 *    as above is not kept: its content was replaced or deleted on purpose.
 */
export interface Loser {
  version: Version
  keepCopy: boolean
}

export interface Decision {
  winner: Version | null
  losers: Loser[]
}

export function rank(a: Version, b: Version): number {
  const aLive = a.kind !== 'deleted' ? 1 : 0
  const bLive = b.kind !== 'deleted' ? 1 : 0
  if (aLive !== bLive) return aLive - bLive
  if (a.ts !== b.ts) return a.ts - b.ts
  if (a.author !== b.author) return a.author < b.author ? -1 : 1
  if (a.drive !== b.drive) return a.drive < b.drive ? -1 : 1
  return 0
}

export function decide(versions: readonly Version[]): Decision {
  const maximal: Version[] = []
  for (const v of versions) {
    let dominated = false
    for (const w of versions) {
      if (w === v) continue
      const order = compareVectors(v.vv, w.vv)
      // equal vectors are the same version; keep the one from the higher-ranked drive
      if (order === 'before' || (order === 'equal' && rank(v, w) < 0)) {
        dominated = true
        break
      }
    }
    if (!dominated) maximal.push(v)
  }
  if (maximal.length === 0) return { winner: null, losers: [] }
  let spent = new Set(maximal.filter((v) => isTouch(v) && maximal.some((w) => w !== v && names(w, v.hash as string))))
  // touches that all name each other's content (no other version left): the plain order decides
  if (spent.size === maximal.length) spent = new Set()
  let winner = maximal.find((v) => !spent.has(v)) as Version
  for (const v of maximal) if (!spent.has(v) && rank(v, winner) > 0) winner = v
  const losers: Loser[] = []
  for (const v of maximal) {
    if (v === winner) continue
    losers.push({ version: v, keepCopy: v.kind !== 'deleted' && v.kind !== 'dir' && !spent.has(v) && !sameContent(v, winner) })
  }
  return { winner, losers }
}

/** A file version whose content is the one it replaced (see decide). */
export function isTouch(v: Pick<Version, 'kind' | 'hash' | 'was'>): boolean {
  return v.kind === 'file' && v.hash !== null && v.was === v.hash
}

/** Does `w` name `hash` as content it replaced or deleted (itself, or its author earlier at the path)? */
function names(w: Version, hash: string): boolean {
  return (w.was === hash && !isTouch(w) && !w.withdrawn) || w.replaced.includes(hash)
}

function pad(n: number): string {
  return n < 10 ? '0' + n : String(n)
}

/**
 * Syncthing's conflict-copy name: `name.sync-conflict-YYYYMMDD-HHMMSS-<id7>.ext`, with the
 * loser's publish time (UTC, so every peer computes the same name) and its author's short id.
 */
export function conflictName(path: string, ts: number, shortId: string): string {
  const slash = path.lastIndexOf('/')
  const dir = path.slice(0, slash + 1)
  const base = path.slice(slash + 1)
  const dot = base.lastIndexOf('.')
  const ext = dot === -1 ? '' : base.slice(dot)
  const stem = dot === -1 ? base : base.slice(0, dot)
  return `${dir}${stem}.sync-conflict-${utcStamp(ts)}-${shortId.slice(0, 7)}${ext}`
}

/** `YYYYMMDD-HHMMSS` of `ts` in UTC (conflict copies' and versions' names). */
export function utcStamp(ts: number): string {
  const d = new Date(ts)
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-` + `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
}

/** `a/b.sync-conflict-20260101-120000-ABCDEFG.txt` → family `a/b.txt`, short id `ABCDEFG`; null if not a copy's name. */
export function parseConflictName(path: string): { family: string; shortId: string } | null {
  // the shortest prefix: a copy of a copy of a file with no extension has the older marker as
  // its extension (`notes.sync-conflict-NEW-ID.sync-conflict-OLD-ID0`), and its family is the
  // first copy (fault suite seed 843: the newer copy was taken for a copy of `notes` by ID0)
  const m = /^(.*?)\.sync-conflict-\d{8}-\d{6}-([A-Za-z0-9]{7})(\.[^./]*)?$/.exec(path)
  if (!m) return null
  const family = (m[1] as string) + (m[3] ?? '')
  if (family === '' || family.endsWith('/')) return null
  return { family, shortId: m[2] as string }
}

export type NameUse = 'free' | 'same' | 'taken'

/**
 * A conflict-copy name that does not replace another version: Syncthing's name is only
 * unique to the second, and one device can lose twice on one path within a second (seen in
 * the fault suite: the second copy replaced the first, whose content was lost). A taken name
 * moves the stamp on by a second; a name already holding this very content is reused.
 */
export async function pickConflictName(path: string, ts: number, shortId: string, use: (name: string) => Promise<NameUse>): Promise<string> {
  for (let i = 0; ; i++) {
    const name = conflictName(path, ts + i * 1000, shortId)
    const u = await use(name)
    if (u !== 'taken') return name
  }
}
