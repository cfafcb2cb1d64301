import { renameSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { HeldDeletes } from '@sync-agent/shared'
import type { Logger } from './log.js'

/**
 * Holds a mass delete: when remote changes would delete more than `share` of the folder's
 * paths (an `rm -rf` on one replica, a peer gone wrong), those deletes are not applied but
 * held, shown in status, and released by `sync-agent accept-deletes`.
 *
 * The engine hands over every remote delete of a path that exists here (`submit`) instead
 * of applying it. Deletes are pooled until none arrived for SETTLE_MS (at most MAX_POOL_MS),
 * since an `rm -rf` reaches us in several batches; the pool is then let through (`release`
 * marks the paths for the engine) or, if it is a mass delete, held. While a hold lasts every
 * further remote delete joins it. Reconcile asks `mayDelete` before removing anything a peer
 * deleted. Pool and hold are persisted in the data dir, so a restart never applies a hold.
 */
export const MIN_HELD_PATHS = 10
const SETTLE_MS = 1_000
const MAX_POOL_MS = 5_000
const SAMPLE = 10
const FILE = 'held-deletes.json'

interface Saved {
  held: string[]
  pool: string[]
  folderPaths: number
  since: number
}

export class MassDeleteGuard {
  private readonly held = new Set<string>()
  private readonly pool = new Set<string>()
  private holdInfo: { folderPaths: number; since: number } | null = null
  private poolStartedAt = 0
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(
    private readonly opts: {
      share: number
      dataDir: string
      /** how many paths the folder has now (the index) */
      folderPaths: () => number
      /** deletes let through: reconcile them */
      release: (paths: string[]) => void
      log: Logger
    }
  ) {}

  /** Loads a saved hold and pool; a saved pool is reviewed again shortly. */
  async ready(): Promise<void> {
    let text: string
    try {
      text = await readFile(join(this.opts.dataDir, FILE), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    const saved = JSON.parse(text) as Saved
    for (const p of saved.held) this.held.add(p)
    if (this.held.size > 0) this.holdInfo = { folderPaths: saved.folderPaths, since: saved.since }
    if (saved.pool.length > 0) this.submit(saved.pool)
  }

  /** Remote deletes of paths that exist here, instead of applying them. */
  submit(paths: readonly string[]): void {
    if (this.closed || paths.length === 0) return
    if (this.holdInfo) {
      for (const p of paths) this.held.add(p)
      this.persist()
      return
    }
    if (this.opts.share >= 1) return this.opts.release([...paths])
    if (this.pool.size === 0) this.poolStartedAt = Date.now()
    for (const p of paths) this.pool.add(p)
    this.persist()
    if (this.timer) clearTimeout(this.timer)
    const wait = Math.max(0, Math.min(SETTLE_MS, this.poolStartedAt + MAX_POOL_MS - Date.now()))
    this.timer = setTimeout(() => this.review(), wait)
  }

  private review(): void {
    this.timer = null
    const paths = [...this.pool]
    this.pool.clear()
    const folderPaths = this.opts.folderPaths()
    const isMass = paths.length >= MIN_HELD_PATHS && paths.length > this.opts.share * folderPaths
    if (!isMass) {
      this.persist()
      this.opts.release(paths)
      return
    }
    this.holdInfo = { folderPaths, since: Date.now() }
    for (const p of paths) this.held.add(p)
    this.persist()
    this.opts.log.warn(
      { code: 'E_MASS_DELETE', deletes: paths.length, folderPaths, share: this.opts.share },
      'a remote change would delete more than the allowed share of the folder; holding the deletes until `sync-agent accept-deletes`'
    )
  }

  mayDelete(path: string): boolean {
    return !this.held.has(path) && !this.pool.has(path)
  }

  /** Remote deletes not applied yet (pooled for review, or held). */
  get waitingCount(): number {
    return this.pool.size + this.held.size
  }

  /** `accept-deletes`: releases the hold; returns how many paths it held. */
  accept(): number {
    const paths = [...this.held]
    this.held.clear()
    this.holdInfo = null
    this.persist()
    if (paths.length > 0) this.opts.log.info({ deletes: paths.length }, 'held deletes accepted')
    this.opts.release(paths)
    return paths.length
  }

  status(): HeldDeletes | null {
    if (!this.holdInfo) return null
    const sample: string[] = []
    for (const p of this.held) {
      if (sample.length >= SAMPLE) break
      sample.push(p)
    }
    return { count: this.held.size, sample, folderPaths: this.holdInfo.folderPaths, share: this.opts.share, since: this.holdInfo.since }
  }

  /**
   * Saved before `submit` returns: the engine moves its checkpoint past the drive entries these
   * deletes came from once it is idle, and pooled deletes do not keep it busy, so a kill -9
   * before an asynchronous save lost them for good (fault suite seed 844: a file deleted
   * everywhere stayed on the node, inSync). A small file, written once per diff batch.
   */
  private persist(): void {
    const saved: Saved = { held: [...this.held], pool: [...this.pool], folderPaths: this.holdInfo?.folderPaths ?? 0, since: this.holdInfo?.since ?? 0 }
    const tmp = join(this.opts.dataDir, FILE + '.tmp')
    try {
      writeFileSync(tmp, JSON.stringify(saved), { mode: 0o600 })
      renameSync(tmp, join(this.opts.dataDir, FILE))
    } catch (err) {
      this.opts.log.error({ err, code: (err as NodeJS.ErrnoException).code === 'ENOSPC' ? 'E_DISK_FULL' : 'E_IO' }, 'cannot save the held deletes')
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
  }
}
