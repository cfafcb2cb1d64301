import { dirname, join } from 'node:path'
import type { Stats } from 'node:fs'
import { lstatAt } from './folder-writer.js'
import type { ApplyIntent, IndexStore } from './index-store.js'
import type { Logger } from './log.js'

export type PlacementOutcome = 'placed' | 'placed-then-changed' | 'not-placed'

/**
 * Settles, at start and before temp files are swept, the applies a kill -9 interrupted between
 * the rename that put a peer's version in place and the journaling of its record.
 *
 * The intent journaled just before the rename names the temp file and its fingerprint (inode,
 * size, mtime, mode: a rename keeps them all). So:
 * - that fingerprint at the path: the version is there; it is recorded as applied;
 * - the temp file still there with it: the rename never happened; nothing is recorded (the
 *   version is applied again from the drives, the temp file is swept);
 * - neither: the version was placed and then deleted or replaced by a program before the
 *   crash. It is recorded as applied, so the start-up scan sees that local change and
 *   publishes it on top of the version it replaced. Without this the path looked as if the
 *   version had never arrived and it was applied again over the program's delete (fault suite
 *   seed 904: a theme file placed, removed by a theme update at once, came back: RESURRECTED).
 *
 * Intents without a temp file (the crash came before the content was complete) are left to
 * the reconcile (see `heldAfterCrash`).
 */
export async function recoverPlacements(index: IndexStore, folder: string, log: Logger): Promise<Map<string, PlacementOutcome>> {
  const outcomes = new Map<string, PlacementOutcome>()
  for (const [path, intent] of [...index.pendingIntents()]) {
    const placing = intent.placing
    if (!placing) continue
    const abs = join(folder, path)
    const atPath = lstatAt(abs)
    let outcome: PlacementOutcome
    if (atPath && matches(atPath, placing)) outcome = 'placed'
    else {
      const temp = lstatAt(join(dirname(abs), placing.tmp))
      outcome = temp && matches(temp, placing) ? 'not-placed' : 'placed-then-changed'
    }
    if (outcome !== 'not-placed') index.set(path, recordOf(intent, placing))
    outcomes.set(path, outcome)
    log.info({ path, outcome }, 'settled an apply interrupted by a crash')
  }
  if (outcomes.size > 0) await index.flush()
  return outcomes
}

function matches(st: Stats, placing: NonNullable<ApplyIntent['placing']>): boolean {
  return st.isFile() && st.ino === placing.ino && st.size === placing.size && st.mtimeMs === placing.mtimeMs && (st.mode & 0o777) === placing.mode
}

function recordOf(intent: ApplyIntent, placing: NonNullable<ApplyIntent['placing']>) {
  return { kind: 'file' as const, size: placing.size, mtimeMs: placing.mtimeMs, ino: placing.ino, mode: placing.mode, hash: intent.hash, target: null, vv: intent.vv }
}
