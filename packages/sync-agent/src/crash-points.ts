/**
 * Crash points, for tests: with `SYNC_AGENT_CRASH_AT=<point>@<path>[,…]` the process kills itself
 * with SIGKILL when the engine reaches that point for that path, as a `kill -9` landing in
 * exactly that window would. The fault suite's kills land in such windows only by chance (its
 * RESURRECTED rounds, seeds 3534 and 3901, did not replay); the crash-point tests visit each
 * window on purpose. Read once at start; unset, a call is one comparison. A point names the
 * step just completed.
 */
export type CrashPoint =
  /** apply of a peer's file: intent in memory, content not fetched */
  | 'apply-intended'
  /** apply: content complete in its temp file, the intent naming it flushed; not renamed */
  | 'apply-staged'
  /** apply of a file new here: hard-linked into place, its temp name not unlinked yet */
  | 'apply-linked'
  /** apply: the file in place under its name; the record not set */
  | 'apply-placed'
  /** apply of a delete: the intent flushed, the file still there */
  | 'delete-intended'
  /** apply of a delete: the file removed; the record not dropped */
  | 'delete-removed'
  /** a new local file: the publish intent flushed, nothing put in our drive */
  | 'publish-intended'
  /** a local change put in our drive; the record not set */
  | 'publish-put'
  /** `versions restore`: the version's first piece written to the temp file, the rest not */
  | 'restore-partial'

/** `<point>@<path>`, comma-separated: a test arms several and disarms each once it fired */
const armed = new Set((process.env.SYNC_AGENT_CRASH_AT ?? '').split(',').filter((spec) => spec !== ''))

export function crashPoint(point: CrashPoint, path: string): void {
  if (armed.size > 0 && armed.has(`${point}@${path}`)) process.kill(process.pid, 'SIGKILL')
}
