import ignore, { type Ignore } from 'ignore'
import { IGNORE_FILE, TEMP_PREFIX } from '@sync-agent/shared'

/**
 * What is never synced: our own temp files and `.syncignore` (always), a preset (the
 * `wordpress` one by default) and the patterns of `.syncignore` (gitignore syntax).
 */
export const PRESETS: Record<'wordpress', readonly string[]> = {
  wordpress: [
    // caches at the wp-content root only: plugins ship code in folders named cache/ too
    '/cache/',
    '/et-cache/',
    '/w3tc-config/',
    '/litespeed/',
    '/wflogs/',
    // core and plugin updates in progress
    '/upgrade/',
    '/upgrade-temp-backup/',
    // logs
    '*.log',
    // editors, OS and download droppings
    '*.tmp',
    '*.temp',
    '*.swp',
    '*.swx',
    '*~',
    '.DS_Store',
    'Thumbs.db',
    '*.part',
    '*.crdownload'
  ]
}

export interface IgnoreRules {
  /** `relativePath` uses `/`; pass `isDir` for directories so `dir/` patterns match them */
  isIgnored(relativePath: string, isDir: boolean): boolean
}

export function isInternalName(relativePath: string): boolean {
  if (relativePath === IGNORE_FILE) return true
  const base = relativePath.slice(relativePath.lastIndexOf('/') + 1)
  return base.startsWith(TEMP_PREFIX)
}

/**
 * The `ignore` matcher caches its answer for every path it was asked about, for as long as it
 * lives: a folder (or a peer's drive) of millions of paths would keep them all (measured: the
 * victim of a million-entry drive grew past 550 MiB). A fresh matcher after this many
 * questions bounds the cache; rebuilding one from the patterns takes microseconds.
 */
export const MATCHER_RESET_CALLS = 20_000

/**
 * The presets alone (no patterns of the user's), answered without the `ignore` matcher: it
 * tests a path and each of its parents against every pattern's regex, ~5 µs a path, ~45 ms of
 * a fresh node's main thread on the benchmark's 8,000 files. The presets hold three forms
 * only, matched here as gitignore (and `ignore`, case-insensitive in ASCII as its regexes
 * are) matches them: `/name/`, a directory at the root; `*suffix` and `name`, a file or
 * directory of that name at any depth. A directory that matches takes what is under it
 * along. Returns null for a pattern of another form. `ignore-rules.test.ts` holds the two to
 * the same answers on generated paths.
 */
export function presetMatcher(patterns: readonly string[]): ((relativePath: string, isDir: boolean) => boolean) | null {
  const rootDirs = new Set<string>()
  const names = new Set<string>()
  const suffixes: string[] = []
  for (const p of patterns) {
    if (/^\/[A-Za-z0-9._-]+\/$/.test(p)) rootDirs.add(asciiLower(p.slice(1, -1)))
    else if (/^\*[A-Za-z0-9._~-]+$/.test(p)) suffixes.push(asciiLower(p.slice(1)))
    else if (/^[A-Za-z0-9._-]+$/.test(p) && !p.includes('..') && p !== '.') names.add(asciiLower(p))
    else return null
  }
  return (relativePath, isDir) => {
    let start = 0
    for (;;) {
      const slash = relativePath.indexOf('/', start)
      const last = slash === -1
      const segment = asciiLower(last ? relativePath.slice(start) : relativePath.slice(start, slash))
      if (start === 0 && (!last || isDir) && rootDirs.has(segment)) return true
      if (names.has(segment)) return true
      for (const suffix of suffixes) if (segment.endsWith(suffix)) return true
      if (last) return false
      start = slash + 1
    }
  }
}

function asciiLower(s: string): string {
  return /[A-Z]/.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s
}

export function buildIgnoreRules(presets: readonly 'wordpress'[], patterns: readonly string[], fileText: string | null): IgnoreRules {
  const fast = patterns.length === 0 && !fileText?.trim() ? presetMatcher(presets.flatMap((p) => PRESETS[p])) : null
  if (fast) {
    return {
      isIgnored(relativePath, isDir) {
        if (isInternalName(relativePath)) return true
        // what `ignore` refuses (it throws): left to it, as before
        if (relativePath === '' || relativePath.startsWith('/') || relativePath.startsWith('./') || relativePath.startsWith('../')) return ignore().ignores(relativePath)
        return fast(relativePath, isDir)
      }
    }
  }
  const build = (): Ignore => {
    const ig = ignore({ allowRelativePaths: false })
    for (const preset of presets) ig.add([...PRESETS[preset]])
    ig.add([...patterns])
    if (fileText) ig.add(fileText)
    return ig
  }
  let ig = build()
  let calls = 0
  return {
    isIgnored(relativePath, isDir) {
      if (isInternalName(relativePath)) return true
      if (++calls > MATCHER_RESET_CALLS) {
        ig = build()
        calls = 1
      }
      return ig.ignores(isDir ? relativePath + '/' : relativePath)
    }
  }
}
