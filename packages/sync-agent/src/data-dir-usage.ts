import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'

/** How long one measurement of the data dir is reused (`status --watch` asks every second). */
export const DATA_DIR_USAGE_TTL_MS = 10_000

/**
 * The data dir's size on disk (what `du` counts: blocks allocated), for status and metrics, so
 * an operator sees what the store takes beside the folder (and the sweeper give space back).
 * Measured in the background, at most every `ttlMs`: `bytes()` answers at once with the last
 * measurement (null before the first one ended). Files that go while it walks (RocksDB
 * replaces its files as it compacts) are skipped.
 */
export class DataDirUsage {
  private last: number | null = null
  private measuredAt = -Infinity
  private measuring: Promise<number> | null = null

  constructor(
    private readonly dir: string,
    private readonly ttlMs = DATA_DIR_USAGE_TTL_MS,
    private readonly now: () => number = Date.now
  ) {}

  /** The last measurement; starts a new one when it is older than `ttlMs`. */
  bytes(): number | null {
    if (!this.measuring && this.now() - this.measuredAt >= this.ttlMs) void this.refresh().catch(() => undefined)
    return this.last
  }

  /** Measures now (one walk at a time: a call during one gets its result). */
  refresh(): Promise<number> {
    this.measuring ??= this.walk().then(
      (bytes) => {
        this.last = bytes
        this.measuredAt = this.now()
        this.measuring = null
        return bytes
      },
      (err: unknown) => {
        // tried again at the next question after the TTL
        this.measuredAt = this.now()
        this.measuring = null
        throw err
      }
    )
    return this.measuring
  }

  private async walk(): Promise<number> {
    let total = 0
    for (const entry of await readdir(this.dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue
      try {
        total += (await lstat(join(entry.parentPath, entry.name))).blocks * 512
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
    return total
  }
}
