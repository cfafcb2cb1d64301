import { dirname, join } from 'node:path'
import type { Stats } from 'node:fs'
import { STAGING_DIR } from '@sync-agent/shared'
import { lstatAt } from './folder-writer.js'
import { fingerprintOf, hasFingerprint, type ApplyIntent, type IndexStore, type Placing } from './index-store.js'
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
 * A temp file beside its file can be deleted by a program too (a theme update removes the
 * whole directory), and "neither" then also fits a rename that never happened: the program
 * deleted the old version, and taking it for a delete of the new one deleted a peer's version
 * nobody here had seen (fault suite seed 2107: a kill -9 during the journal's flush before
 * the rename). So temp files are written in the staging directory (FolderWriter), which
 * programs leave alone: there a temp file missing means renamed, one present means not.
 *
 * The temp file left in the staging directory does not settle it alone: a kill -9 between the
 * hard link into place and the unlink of the temp name leaves it there too, and if a program
 * then deleted the file while the agent was down, "temp file there" read as "never placed" and
 * the version was applied again over that delete (fault suite seed 29501: RESURRECTED). Its
 * nlink is 1 either way; its ctime is not. The link, and the program's unlink of the linked
 * name, each change the inode's ctime after the one journaled with the intent (taken after the
 * last change the writer made to it). So a temp file whose ctime moved was placed, then changed.
 * (On kernels with coarse timestamps, before multigrain ctime in Linux 6.13, a delete within
 * one tick of the intent, a few ms, still reads as "not placed": the old behaviour.)
 *
 * Intents without a temp file (the crash came before the content was complete, or the rename
 * never happened and its temp file is swept now) are left to the reconcile (see `heldAfterCrash`).
 */
export async function recoverPlacements(index: IndexStore, folder: string, log: Logger): Promise<Map<string, PlacementOutcome>> {
  const outcomes = new Map<string, PlacementOutcome>()
  for (const [path, intent] of [...index.pendingIntents()]) {
    const placing = intent.placing
    if (!placing) continue
    const abs = join(folder, path)
    const atPath = lstatAt(abs)
    let outcome: PlacementOutcome
    const staged = placing.tmp.startsWith(`${STAGING_DIR}/`)
    if (atPath && hasFingerprint(atPath, placing)) outcome = 'placed'
    else if (staged) {
      // nothing but our rename takes a file out of the staging directory; a crash between a
      // hard link into place and the unlink leaves it there, touched by the link (and, if a
      // program deleted the file since, by that delete)
      const temp = lstatAt(join(folder, placing.tmp))
      outcome = temp && untouched(temp, placing) ? 'not-placed' : 'placed-then-changed'
    } else {
      const temp = lstatAt(join(dirname(abs), placing.tmp))
      outcome = temp && hasFingerprint(temp, placing) && untouched(temp, placing) ? 'not-placed' : 'placed-then-changed'
    }
    if (outcome !== 'not-placed') index.set(path, recordOf(intent, placing))
    // the temp file is swept next: the intent no longer names it. Named still, a second crash
    // before the path was applied again read "temp file gone" as "renamed", and the version
    // nobody had placed was recorded; the start-up scan took its absence for a local delete
    // (fault suite seed 16007: a conflict copy deleted on every node, LOST)
    else index.intend(path, withoutPlacing(intent))
    outcomes.set(path, outcome)
    log.info({ path, outcome }, 'settled an apply interrupted by a crash')
  }
  if (outcomes.size > 0) await index.flush()
  return outcomes
}

/**
 * The journal's `placing` for a temp file whose content and metadata are complete (`st` taken
 * after the last change). Its ctime only when it is to be placed with a hard link: a rename
 * takes the temp name away, which says "placed" by itself, and a ctime changed by anything
 * else (a `chown -R` over the folder while the agent is down) must not read as placed.
 */
export function placingOf(tmp: string, st: Stats, byLink: boolean): Placing {
  const placing: Placing = { tmp, ...fingerprintOf(st) }
  if (byLink) placing.ctimeMs = st.ctimeMs
  return placing
}

/** Nothing linked, unlinked or changed the temp file since its intent was journaled. */
function untouched(temp: Stats, placing: Placing): boolean {
  return placing.ctimeMs === undefined || temp.ctimeMs === placing.ctimeMs
}

function withoutPlacing(intent: ApplyIntent): ApplyIntent {
  const { placing: _, ...rest } = intent
  return rest
}

function recordOf(intent: ApplyIntent, placing: Placing) {
  return { kind: 'file' as const, size: placing.size, mtimeMs: placing.mtimeMs, ino: placing.ino, mode: placing.mode, hash: intent.hash, target: null, vv: intent.vv }
}
