import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { TEMP_PREFIX } from '../helpers/tree.ts'
import { isCopyOf, type Oracle } from './oracle.ts'
import type { OpsClock } from './ops-clock.ts'
import { Prng } from './prng.ts'

/**
 * One node's share of the random workload, run straight on its folder while its agent runs
 * (or is down). Ops: create, append, truncate, rewrite, delete, rename, directory move and
 * WordPress-like theme updates. Names come from small shared pools, so nodes collide.
 *
 * Every op reads what it replaces through the same file descriptor it then writes (or moves
 * the victim aside to an ignored name first), so the oracle learns exactly which version was
 * removed on purpose and which was written, even while the agent writes the same paths.
 */
const DIRS = ['uploads/2026/01', 'uploads/2026/02', 'plugins/p0', 'plugins/p1', 'docs/d0', 'docs/d1', 'docs']
const NAMES = ['a.txt', 'b.txt', 'c.php', 'd.css', 'e.json', 'img1.jpg', 'img2.png', 'notes']
const THEMES = ['themes/t0', 'themes/t1']
const THEME_FILES = ['style.css', 'functions.php', 'index.php', 'templates/single.php', 'templates/page.php', 'assets/app.js', 'screenshot.png']

export type OpName = 'create' | 'append' | 'truncate' | 'rewrite' | 'delete' | 'rename' | 'dirMove' | 'themeUpdate'

const WEIGHTS: Record<OpName, number> = {
  create: 30,
  append: 15,
  truncate: 6,
  rewrite: 15,
  delete: 14,
  rename: 8,
  dirMove: 3,
  themeUpdate: 4
}

export interface WorkloadOptions {
  /** at most this many large files (≥ 256 KiB) per node */
  maxLargeFiles: number
  largeMaxBytes: number
}

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}

function isNoise(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) || name.endsWith('.tmp')
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'E?'
}

export class NodeWorkload {
  private seq = 0
  private largeFiles = 0
  readonly counts: Record<string, number> = {}
  failedOps = 0
  /** files written by `bulk` (not counted as operations) */
  bulkFiles = 0

  constructor(
    readonly node: number,
    readonly folder: string,
    private readonly rng: Prng,
    private readonly oracle: Oracle,
    private readonly options: WorkloadOptions
  ) {}

  private abs(p: string): string {
    return path.join(this.folder, p)
  }

  private note(line: string): void {
    this.oracle.note(`n${this.node} ${line}`)
  }

  /** Content unique to this write: a header naming node and op, then seeded bytes. */
  private content(kind: string): Buffer {
    this.seq++
    const large = this.largeFiles < this.options.maxLargeFiles && this.rng.chance(0.06)
    const size = large ? this.rng.int(256 * 1024, this.options.largeMaxBytes) : this.rng.chance(0.1) ? 0 : this.rng.int(1, 12_000)
    if (large) this.largeFiles++
    const header = Buffer.from(`n${this.node}#${this.seq} ${kind}\n`)
    return size === 0 ? header : Buffer.concat([header, this.rng.bytes(size)])
  }

  /** Files (not temp or ignored ones) under the folder, '/'-separated relative paths. */
  private async listFiles(under = ''): Promise<string[]> {
    const out: string[] = []
    const walk = async (rel: string): Promise<void> => {
      let entries
      try {
        entries = await fs.readdir(this.abs(rel), { withFileTypes: true })
      } catch {
        return
      }
      for (const e of entries) {
        if (isNoise(e.name)) continue
        const p = rel ? `${rel}/${e.name}` : e.name
        if (e.isDirectory()) await walk(p)
        else if (e.isFile()) out.push(p)
      }
    }
    await walk(under)
    return out.sort()
  }

  async step(): Promise<void> {
    const op = this.rng.weighted(WEIGHTS)
    this.counts[op] = (this.counts[op] ?? 0) + 1
    try {
      await this[op]()
    } catch (err) {
      // ENOSPC on the full node, or the agent moved something away under us: the op is void
      // except for what it recorded before failing
      this.failedOps++
      this.note(`${op} failed: ${errCode(err)} ${(err as Error).message.slice(0, 160)}`)
    }
  }

  /**
   * Writes `count` new small files at once, under a directory of their own (a site's bulk
   * import): enough entries in this node's drive for a fresh node to read its index as one
   * verified snapshot. Each is recorded as written; later ops may change or delete them.
   */
  async bulk(count: number, dirs = 12): Promise<void> {
    const base = `uploads/bulk-n${this.node}-${++this.seq}`
    for (let i = 0; i < count; i++) {
      const p = `${base}/d${i % dirs}/f${i}.bin`
      const data = Buffer.concat([Buffer.from(`n${this.node}#${this.seq} bulk ${i}\n`), this.rng.bytes(this.rng.int(1, 6_000))])
      await fs.mkdir(path.dirname(this.abs(p)), { recursive: true })
      await fs.writeFile(this.abs(p), data, { flag: 'wx' })
      this.oracle.wrote({ node: this.node, path: p, hash: sha(data), size: data.length, op: 'bulk' })
    }
    this.bulkFiles += count
    this.note(`bulk: ${count} files under ${base}`)
  }

  private async pickExisting(): Promise<string | null> {
    const files = await this.listFiles()
    return files.length === 0 ? null : this.rng.pick(files)
  }

  private async create(): Promise<void> {
    const p = `${this.rng.pick(DIRS)}/${this.rng.pick(NAMES)}`
    const data = this.content('create')
    await fs.mkdir(path.dirname(this.abs(p)), { recursive: true })
    let fh
    try {
      fh = await fs.open(this.abs(p), 'wx+')
    } catch (err) {
      if (errCode(err) === 'EEXIST') return this.modify('rewrite', p)
      throw err
    }
    await this.writeThrough(fh, p, 'create', null, null, async () => {
      await fh.write(data, 0, data.length, 0)
    })
  }

  private append(): Promise<void> {
    return this.modify('append')
  }

  private truncate(): Promise<void> {
    return this.modify('truncate')
  }

  private rewrite(): Promise<void> {
    return this.modify('rewrite')
  }

  private async modify(kind: 'append' | 'truncate' | 'rewrite', given?: string): Promise<void> {
    const p = given ?? (await this.pickExisting())
    if (!p) return
    let fh
    try {
      fh = await fs.open(this.abs(p), 'r+')
    } catch (err) {
      if (errCode(err) === 'ENOENT') return
      throw err
    }
    let before: Buffer
    try {
      before = await fh.readFile()
    } catch (err) {
      await fh.close()
      throw err
    }
    // every content starts with a unique header line (see content()): a cut keeps it, so no
    // two versions are equal (an empty or header-cut file would match other versions, and the
    // oracle would read it as a deleted or overwritten version shown again)
    const keep = before.indexOf(10) + 1
    if (kind === 'truncate' && (keep <= 0 || before.length - 1 < keep)) {
      await fh.close()
      return
    }
    // what was overwritten; a write that changed nothing (a full disk took all of it) replaced
    // nothing: the same bytes are still the version seen there, not an overwritten one
    const was = sha(before)
    const overwrote = (now: string) => {
      if (now !== was) this.oracle.removed({ node: this.node, path: p, hash: was, kind: 'overwrite', op: kind })
    }
    await this.writeThrough(fh, p, kind, overwrote, was, async () => {
      if (kind === 'append') {
        const extra = this.content('append').subarray(0, this.rng.int(20, 4000))
        await fh.write(extra, 0, extra.length, before.length)
      } else if (kind === 'truncate') {
        await fh.truncate(this.rng.int(keep, before.length - 1))
      } else {
        const data = this.content('rewrite')
        await fh.truncate(0)
        await fh.write(data, 0, data.length, 0)
      }
    })
  }

  /**
   * Runs `write` on the open file, then records what the file holds afterwards (also after a
   * failed write: a full disk leaves a partial version that is real). If the agent replaced
   * the path while we wrote, our bytes went to an unlinked inode: recorded as raced. A write
   * that left the bytes as they were (`before`: a full disk took all of it) wrote no version:
   * the file holds the version written earlier, and a removal made meanwhile elsewhere still
   * counts against it (fault suite seed 11013: a failed append after a peer's delete of the
   * same empty file, whose only trace was a new mtime, was judged a new version, LOST).
   */
  private async writeThrough(fh: fs.FileHandle, p: string, op: string, onResult: ((hash: string) => void) | null, before: string | null, write: () => Promise<void>): Promise<void> {
    let failure: unknown = null
    try {
      await write()
    } catch (err) {
      failure = err
    }
    try {
      const st = await fh.stat()
      const whole = Buffer.alloc(st.size)
      await fh.read(whole, 0, st.size, 0)
      const hash = sha(whole)
      const now = await fs.lstat(this.abs(p)).catch(() => null)
      const v = { node: this.node, path: p, hash, size: st.size, op }
      onResult?.(hash)
      const unchanged = hash === before
      if (unchanged) {
        // nothing written: no version (see above)
      } else if (!now || now.ino !== st.ino) this.oracle.raced(v)
      else this.oracle.wrote(v)
      this.note(`${op} ${p} → ${hash.slice(0, 10)} ${st.size} B${failure ? ` (write failed: ${errCode(failure)})` : ''}${unchanged ? ' (bytes unchanged: no new version)' : ''}`)
    } finally {
      await fh.close()
    }
    if (failure) throw failure
  }

  /**
   * The conflict copies of `p` beside it now: a person deleting or renaming `p` sees them and
   * leaves them (the oracle does not count them as resurrected by that removal).
   */
  private async copiesBeside(p: string): Promise<string[]> {
    const dir = path.posix.dirname(p)
    const names = await fs.readdir(this.abs(dir)).catch(() => [] as string[])
    return names.map((n) => `${dir}/${n}`).filter((q) => isCopyOf(q, p))
  }

  /** Moves `p` aside to an ignored name (atomic), records what it held, removes it. */
  private async removeFile(p: string, op: string): Promise<void> {
    const aside = path.join(path.dirname(this.abs(p)), `.del-n${this.node}-${this.seq++}.tmp`)
    const copiesBeside = await this.copiesBeside(p)
    try {
      await fs.rename(this.abs(p), aside)
    } catch (err) {
      if (errCode(err) === 'ENOENT') return
      throw err
    }
    const data = await fs.readFile(aside)
    await fs.unlink(aside)
    this.oracle.removed({ node: this.node, path: p, hash: sha(data), kind: 'delete', op, copiesBeside })
    this.note(`${op} ${p} (held ${sha(data).slice(0, 10)})${copiesBeside.length ? ` beside ${copiesBeside.join(', ')}` : ''}`)
  }

  private async delete(): Promise<void> {
    const p = await this.pickExisting()
    if (p) await this.removeFile(p, 'delete')
  }

  private async rename(): Promise<void> {
    const from = await this.pickExisting()
    if (!from) return
    const to = `${this.rng.pick(DIRS)}/r${this.node}x${this.seq++}-${path.basename(from)}`
    await fs.mkdir(path.dirname(this.abs(to)), { recursive: true })
    const copiesBeside = await this.copiesBeside(from)
    try {
      await fs.rename(this.abs(from), this.abs(to))
    } catch (err) {
      if (errCode(err) === 'ENOENT') return
      throw err
    }
    const data = await fs.readFile(this.abs(to))
    const hash = sha(data)
    this.oracle.removed({ node: this.node, path: from, hash, kind: 'delete', op: `rename to ${to}`, copiesBeside })
    this.oracle.wrote({ node: this.node, path: to, hash, size: data.length, op: `rename from ${from}` })
    this.note(`rename ${from} → ${to} (${hash.slice(0, 10)})${copiesBeside.length ? ` beside ${copiesBeside.join(', ')}` : ''}`)
  }

  /** Moves a docs/plugins directory to a new name: every file in it is deleted there and written here. */
  private async dirMove(): Promise<void> {
    const candidates = ['docs/d0', 'docs/d1', 'plugins/p0', 'plugins/p1']
    const from = this.rng.pick(candidates)
    const to = `${path.dirname(from)}/m${this.node}x${this.seq++}`
    try {
      await fs.rename(this.abs(from), this.abs(to))
    } catch (err) {
      if (errCode(err) === 'ENOENT') return
      throw err
    }
    const files = await this.listFiles(to)
    for (const f of files) {
      const data = await fs.readFile(this.abs(f))
      const hash = sha(data)
      const old = from + f.slice(to.length)
      this.oracle.removed({ node: this.node, path: old, hash, kind: 'delete', op: `dir move to ${to}` })
      this.oracle.wrote({ node: this.node, path: f, hash, size: data.length, op: `dir move from ${from}` })
    }
    this.note(`dirMove ${from} → ${to} (${files.length} files)`)
  }

  /** What a WordPress theme update does: delete the theme's directory, write the new version. */
  private async themeUpdate(): Promise<void> {
    const theme = this.rng.pick(THEMES)
    const aside = `${path.dirname(theme)}/.old-${path.basename(theme)}-n${this.node}x${this.seq++}.tmp`
    let moved = true
    try {
      await fs.rename(this.abs(theme), this.abs(aside))
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err
      moved = false
    }
    if (moved) {
      const old = await this.listFiles(aside)
      for (const f of old) {
        const data = await fs.readFile(this.abs(f))
        const p = theme + f.slice(aside.length)
        this.oracle.removed({ node: this.node, path: p, hash: sha(data), kind: 'delete', op: 'theme update' })
      }
      await fs.rm(this.abs(aside), { recursive: true, force: true })
      this.note(`themeUpdate ${theme}: removed ${old.length} files`)
    }
    for (const name of THEME_FILES) {
      const p = `${theme}/${name}`
      await fs.mkdir(path.dirname(this.abs(p)), { recursive: true })
      let fh
      try {
        fh = await fs.open(this.abs(p), 'wx+')
      } catch (err) {
        // the agent brought in another node's version meanwhile: that one counts as seen
        if (errCode(err) === 'EEXIST') {
          await this.modify('rewrite', p)
          continue
        }
        throw err
      }
      const data = this.content(`theme ${name}`)
      await this.writeThrough(fh, p, 'theme write', null, null, async () => {
        await fh.write(data, 0, data.length, 0)
      })
    }
  }
}

/**
 * Runs `opsEach` operations on every workload at once, each node with its own think time
 * between two operations (20–350 ms, seeded by `staggerSeed` and the node), and counts every
 * operation on `clock`, which ends when all are done.
 *
 * The think time is the workload's pace, not a wait for the system: it sets how many writes
 * race with each sync (Jepsen's stagger). Everything that waits for the agents waits for a
 * condition with a deadline (OpsClock, `until`, waitConverged).
 */
export function runPaced(workloads: readonly NodeWorkload[], opsEach: number, clock: OpsClock, staggerSeed: number): Promise<void> {
  const runs = workloads.map(async (w) => {
    const stagger = new Prng(staggerSeed + w.node)
    for (let n = 0; n < opsEach; n++) {
      await w.step()
      clock.tick()
      await delay(stagger.int(20, 350))
    }
  })
  return Promise.all(runs)
    .then(() => undefined)
    .finally(() => clock.end())
}
