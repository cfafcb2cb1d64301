import { realpathSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path'

/** Is `child` the directory `parent` or inside it (absolute paths, as given)? */
export function insideOrEqual(parent: string, child: string): boolean {
  const rel = relative(parent, child)
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel))
}

/** `path` with its links resolved, as far as it exists (the rest appended as given). */
export function realOrResolved(path: string): string {
  // the data dir may not exist yet: resolve its nearest existing ancestor
  let current = path
  const tail: string[] = []
  for (;;) {
    try {
      return join(realpathSync(current), ...tail.reverse())
    } catch {
      const parent = dirname(current)
      if (parent === current) return path
      tail.push(basename(current))
      current = parent
    }
  }
}
