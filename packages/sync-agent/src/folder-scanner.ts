import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Stats } from 'node:fs'
import { findPathProblem, TEMP_PREFIX } from '@sync-agent/shared'
import type { IgnoreRules } from './ignore-rules.js'

/**
 * Walks the folder once at start: yields every path worth comparing with the index (ignored
 * paths and their subtrees skipped), reports leftover temp files and names we cannot sync.
 * No file is read here: the index's size+mtime+inode fingerprint decides what changed.
 */
export interface ScanHandlers {
  onEntry(path: string, st: Stats): void
  onTempFile(path: string): void
  onUnsyncable(path: string, problem: string): void
}

export async function scanFolder(root: string, rules: IgnoreRules, handlers: ScanHandlers, start = ''): Promise<void> {
  const dirs: string[] = [start]
  while (dirs.length > 0) {
    const dir = dirs.pop() as string
    let names: string[]
    try {
      names = await readdir(join(root, dir))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') continue
      throw err
    }
    const stats = await Promise.all(
      names.map(async (name) => {
        try {
          return await lstat(join(root, dir, name))
        } catch {
          return null // vanished while we looked
        }
      })
    )
    names.forEach((name, i) => {
      const st = stats[i]
      if (!st) return
      const path = dir ? `${dir}/${name}` : name
      if (name.startsWith(TEMP_PREFIX)) return handlers.onTempFile(path)
      const problem = findPathProblem(path)
      if (problem && problem !== 'reserved-name') return handlers.onUnsyncable(path, problem)
      if (rules.isIgnored(path, st.isDirectory())) return
      handlers.onEntry(path, st)
      if (st.isDirectory()) dirs.push(path)
    })
  }
}
