/** A directory made again this soon after the agent removed it may have lost its watch. */
export const REMADE_WINDOW_MS = 5_000
/** entries kept at most before the old ones are dropped */
const MAX_REMOVED = 1_000

/**
 * The directories this agent removed lately, so that one it makes again at such a path is
 * known. chokidar tells a directory's entries by name: a directory removed and made again
 * within a few milliseconds keeps the old one's watch, which no longer reports anything, and
 * nothing in the new directory is seen until the folder is watched afresh (checked on chokidar
 * 5: a 5 ms gap is enough for it to drop the old watch and add the new). The agent does that
 * itself when it applies a peer's delete of a directory and then places a file there (a
 * conflict copy, another peer's new file): fault suite seed 4909, a delete made in such a
 * directory was found by the periodic rescan 37 s later. A program that replaces a directory
 * so fast is caught by its new inode (LocalChanges); here the index holds the new inode
 * already, as the agent recorded what it made. One that makes it again right after the agent
 * removed it leaves no record to compare with: LocalChanges asks `removedLately`.
 */
export class RemadeDirs {
  /** absolute path → when it was removed, oldest first */
  private readonly removedAt = new Map<string, number>()

  constructor(
    private readonly onRemade: (abs: string) => void,
    private readonly now: () => number = Date.now
  ) {}

  /** The agent removed the directory `abs`. */
  removed(abs: string): void {
    this.removedAt.delete(abs)
    this.removedAt.set(abs, this.now())
    if (this.removedAt.size > MAX_REMOVED) this.dropOld()
  }

  /** The agent made the directory `abs`: if it removed it within the window, onRemade. */
  made(abs: string): void {
    const at = this.removedAt.get(abs)
    if (at === undefined) return
    this.removedAt.delete(abs)
    if (this.now() - at <= REMADE_WINDOW_MS) this.onRemade(abs)
  }

  /** Did the agent remove the directory `abs` within the window? */
  removedLately(abs: string): boolean {
    const at = this.removedAt.get(abs)
    return at !== undefined && this.now() - at <= REMADE_WINDOW_MS
  }

  private dropOld(): void {
    const before = this.now() - REMADE_WINDOW_MS
    for (const [abs, at] of this.removedAt) {
      if (at > before && this.removedAt.size <= MAX_REMOVED) break
      this.removedAt.delete(abs)
    }
  }
}
