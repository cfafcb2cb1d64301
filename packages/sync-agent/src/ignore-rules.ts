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

export function buildIgnoreRules(presets: readonly 'wordpress'[], patterns: readonly string[], fileText: string | null): IgnoreRules {
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
