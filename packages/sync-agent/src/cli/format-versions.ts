import type { RestoreResult, VersionListing } from '@sync-agent/shared'
import { formatBytes } from './format-status.js'

/** `2026-11-30T23:15:00Z` → `2026-11-30 23:15:00 UTC` */
function when(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, ' UTC')
}

/**
 * `sync-agent versions`: one block per folder path, its versions newest first, each with the
 * stamp to restore it by, when it was replaced, its size and its file under the versions dir.
 */
export function formatVersions(listing: VersionListing, asked: string): string {
  if (listing.dir === null) return 'this agent keeps no versions (versionsDir is not set)'
  const what = asked === '' ? '' : ` of ${asked}`
  if (listing.versions.length === 0) return `no versions kept${what} in ${listing.dir}`
  const lines: string[] = []
  let path: string | null = null
  let paths = 0
  for (const v of listing.versions) {
    if (v.path !== path) {
      path = v.path
      paths++
      lines.push(path)
    }
    lines.push(`  ${v.stamp.padEnd(17)}  replaced ${when(v.madeAt)}  ${formatBytes(v.size).padStart(9)}  ${v.name}`)
  }
  const count = `${listing.versions.length} version${listing.versions.length === 1 ? '' : 's'} of ${paths} file${paths === 1 ? '' : 's'}${what} in ${listing.dir}`
  lines.push(listing.truncated ? `${count} (the first ${listing.versions.length} only: give a PATH to see the rest)` : count)
  lines.push('restore one: sync-agent versions restore PATH [--version STAMP]')
  return lines.join('\n')
}

export function formatRestore(result: RestoreResult): string {
  const kept = result.replacedKeptAs === null ? '' : `; the file it replaced is kept as ${result.replacedKeptAs}`
  return `restored ${result.path} from its version of ${when(result.restored.madeAt)} (${result.restored.stamp})${kept}`
}
