/**
 * The paths a rescan must mark as gone that its walk of the index cannot see: a path applied or
 * published for the first time has no record until its run ends, so if its file went from disk
 * meanwhile (its watcher event lost, e.g. in a watch restart), only a run after this one finds
 * that. Fault suite seed 4501: a file deleted while it was being published stayed in our drive
 * until the periodic rescan, 60 s later; the watch restart's own rescan ran before the publish
 * ended. Marked while it runs, a path runs once more.
 *
 * `running`: the paths being worked on when the walk started and when it ended; `seen`: what the
 * walk found on disk. Paths already marked again are left out, and so is any path on disk now.
 */
export async function goneWhileRunning(
  running: Iterable<string>,
  seen: ReadonlySet<string>,
  deps: { willReconcile(path: string): boolean; exists(path: string): Promise<boolean> }
): Promise<string[]> {
  const gone: string[] = []
  for (const path of new Set(running)) {
    if (seen.has(path) || deps.willReconcile(path) || (await deps.exists(path))) continue
    gone.push(path)
  }
  return gone
}
