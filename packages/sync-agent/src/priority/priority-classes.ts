import picomatch from 'picomatch'
import type { PriorityClass } from '@sync-agent/shared'

/**
 * The order in which a node fetches what it lacks. Each path belongs to the first class
 * whose patterns match it; paths no class matches fall into a last class, "other". Within a
 * newest-first class (uploads), newer year/month folders and newer files come first.
 */
export const PRIORITY_PRESETS: Record<'wordpress' | 'none', readonly PriorityClass[]> = {
  wordpress: [
    // what PHP needs to render a page at all: without these a visitor sees a blank page
    { name: 'critical', paths: ['themes/**', 'plugins/**', 'mu-plugins/**', 'languages/**', '*.php'], order: 'path' },
    { name: 'uploads', paths: ['uploads/**'], order: 'newest-first' }
  ],
  none: []
}

export const OTHER_CLASS = 'other'

/** Sort key inside a class: larger first. */
export interface Rank {
  /**
   * 1: a local change or a peer's small change (a live site's new upload); 0: part of a bulk
   * transfer (a fresh node, a peer back after long, a flood). Fresh ones go first, so a bulk
   * backlog never delays a new upload.
   */
  lane: number
  /** yyyymm of an uploads-style `YYYY/MM/` folder in the path, 0 if none */
  month: number
  /** mtime in ms, 0 if unknown */
  mtime: number
}

export const FRESH = 1
export const BULK = 0
const YEAR_MONTH = /(?:^|\/)((?:19|20|21)\d\d)\/(0[1-9]|1[0-2])\//

interface Compiled {
  name: string
  newestFirst: boolean
  match: (path: string) => boolean
  /** literal directory prefixes (`themes/`) whose entries all belong here, for ranged index reads */
  prefixes: string[]
  /** the class also takes files at the root matching a pattern without a directory (`*.php`) */
  rootFiles: boolean
  /** every pattern is covered by a prefix or the root listing */
  rangesComplete: boolean
}

/** The literal leading directories of a glob (`themes/**` → `themes/`), or null. */
function literalPrefix(glob: string): string | null {
  const parts = glob.split('/')
  const literal: string[] = []
  for (const part of parts.slice(0, -1)) {
    if (picomatch.scan(part).isGlob) break
    literal.push(part)
  }
  if (literal.length === 0) return null
  return literal.join('/') + '/'
}

export class PriorityClasses {
  private readonly classes: Compiled[]

  constructor(spec: 'wordpress' | 'none' | readonly PriorityClass[]) {
    const list = typeof spec === 'string' ? PRIORITY_PRESETS[spec] : spec
    this.classes = list.map((c) => {
      const prefixes: string[] = []
      let rootFiles = false
      let rangesComplete = true
      for (const glob of c.paths) {
        const prefix = literalPrefix(glob)
        if (prefix) prefixes.push(prefix)
        else if (!glob.includes('/') && !glob.includes('**')) rootFiles = true
        else rangesComplete = false
      }
      return { name: c.name, newestFirst: c.order === 'newest-first', match: picomatch([...c.paths], { dot: true }), prefixes, rootFiles, rangesComplete }
    })
    if (!this.classes.some((c) => c.name === OTHER_CLASS)) {
      this.classes.push({ name: OTHER_CLASS, newestFirst: false, match: () => true, prefixes: [], rootFiles: false, rangesComplete: false })
    }
  }

  get names(): string[] {
    return this.classes.map((c) => c.name)
  }

  get count(): number {
    return this.classes.length
  }

  /** Index of the first class matching the path (the last class takes the rest). */
  classOf(path: string): number {
    for (let i = 0; i < this.classes.length - 1; i++) if ((this.classes[i] as Compiled).match(path)) return i
    return this.classes.length - 1
  }

  rankOf(classIndex: number, path: string, mtime: number | undefined, lane = FRESH): Rank {
    const c = this.classes[classIndex]
    if (!c || !c.newestFirst) return { lane, month: 0, mtime: 0 }
    const ym = YEAR_MONTH.exec(path)
    return { lane, month: ym ? Number(ym[1]) * 100 + Number(ym[2]) : 0, mtime: mtime ?? 0 }
  }

  /**
   * Where to look in a file index for the paths of a class without reading all of it:
   * directory prefixes, and whether root-level files may belong to it.
   * A class whose patterns have no literal directory (`**\/*.css`) cannot be read this way.
   */
  indexRanges(classIndex: number): { prefixes: string[]; rootFiles: boolean; complete: boolean } {
    const c = this.classes[classIndex]
    if (!c) return { prefixes: [], rootFiles: false, complete: false }
    return { prefixes: c.prefixes, rootFiles: c.rootFiles, complete: c.rangesComplete }
  }
}

/** Larger rank first; ties keep insertion order (callers add a sequence number). */
export function compareRanks(a: Rank, b: Rank): number {
  if (a.lane !== b.lane) return b.lane - a.lane
  if (a.month !== b.month) return b.month - a.month
  return b.mtime - a.mtime
}
