import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'

export type TreeEntry =
  | { type: 'file'; sizeBytes: number; sha256: string | undefined; execBits: number; mtimeS: number }
  | { type: 'dir' }
  | { type: 'symlink'; target: string }
  | { type: 'other' }

/** Relative path ('/'-separated) → entry, in sorted path order. */
export type Tree = Map<string, TreeEntry>

export interface ReadTreeOptions {
  /** Hash file contents (default true). Turn off for cheap polls of big trees. */
  hash?: boolean
}

export const TEMP_PREFIX = '.syncagent-tmp-'
/** the agent's staging directory at the root of its folder (its temp files are written there) */
export const STAGING_DIR = `${TEMP_PREFIX}staging`

const SMALL_FILE_BYTES = 1024 * 1024

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * Walks `root` and describes everything in it: regular files (size, sha256, exec bits =
 * mode & 0o111, mtime in whole seconds), directories, symlinks (their target, not followed)
 * and anything else. Entries that vanish during the walk are skipped. The agent's staging
 * directory at the root is not an entry (every agent has one, like Syncthing's `.stfolder`),
 * but what it holds is: temp files, which `tempFiles` reports.
 */
export async function readTree(root: string, { hash = true }: ReadTreeOptions = {}): Promise<Tree> {
  const entries: [string, TreeEntry][] = []
  async function walk(dir: string, rel: string): Promise<void> {
    let names: string[]
    try {
      names = await fs.readdir(dir)
    } catch (error) {
      if (isVanished(error)) return
      throw error
    }
    for (const name of names) {
      const abs = path.join(dir, name)
      const relPath = rel === '' ? name : `${rel}/${name}`
      let stat
      try {
        stat = await fs.lstat(abs)
        if (stat.isDirectory()) {
          if (relPath !== STAGING_DIR) entries.push([relPath, { type: 'dir' }])
          await walk(abs, relPath)
        } else if (stat.isSymbolicLink()) {
          entries.push([relPath, { type: 'symlink', target: await fs.readlink(abs) }])
        } else if (stat.isFile()) {
          entries.push([
            relPath,
            {
              type: 'file',
              sizeBytes: stat.size,
              // a small file in one read (a stream per file costs more CPU than the hash)
              sha256: hash ? (stat.size <= SMALL_FILE_BYTES ? sha256(await fs.readFile(abs)) : await sha256File(abs)) : undefined,
              execBits: stat.mode & 0o111,
              mtimeS: Math.floor(stat.mtimeMs / 1000)
            }
          ])
        } else {
          entries.push([relPath, { type: 'other' }])
        }
      } catch (error) {
        if (isVanished(error)) continue
        throw error
      }
    }
  }
  await walk(root, '')
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return new Map(entries)
}

function isVanished(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

export function describeEntry(entry: TreeEntry | undefined): string {
  if (entry === undefined) return 'missing'
  switch (entry.type) {
    case 'file':
      return `file ${entry.sizeBytes} B sha256=${entry.sha256?.slice(0, 12) ?? '?'} exec=${entry.execBits.toString(8)} mtimeS=${entry.mtimeS}`
    case 'symlink':
      return `symlink -> ${entry.target}`
    default:
      return entry.type
  }
}

function entriesDiffer(a: TreeEntry, b: TreeEntry): boolean {
  if (a.type !== b.type) return true
  if (a.type === 'file' && b.type === 'file') {
    if (a.sizeBytes !== b.sizeBytes || a.execBits !== b.execBits || a.mtimeS !== b.mtimeS) return true
    return a.sha256 !== undefined && b.sha256 !== undefined && a.sha256 !== b.sha256
  }
  if (a.type === 'symlink' && b.type === 'symlink') return a.target !== b.target
  return false
}

export interface DiffOptions {
  labels?: [string, string]
  /** Paths to leave out of the comparison (e.g. things that by design exist on one side only). */
  ignore?: (relPath: string) => boolean
}

/** One line per path that differs, e.g. `docs/a.txt: A has file 3 B …, B has missing`. */
export function diffTrees(a: Tree, b: Tree, { labels = ['A', 'B'], ignore }: DiffOptions = {}): string[] {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort()
  const lines: string[] = []
  for (const p of paths) {
    if (ignore?.(p)) continue
    const ea = a.get(p)
    const eb = b.get(p)
    if (ea !== undefined && eb !== undefined && !entriesDiffer(ea, eb)) continue
    lines.push(`${p}: ${labels[0]} has ${describeEntry(ea)}, ${labels[1]} has ${describeEntry(eb)}`)
  }
  return lines
}

export function treesEqual(a: Tree, b: Tree, options: DiffOptions = {}): boolean {
  return diffTrees(a, b, options).length === 0
}

/** Throws an error listing (the first 40 of) the differences, for use inside `until`. */
export function assertTreesEqual(a: Tree, b: Tree, options: DiffOptions = {}): void {
  const lines = diffTrees(a, b, options)
  if (lines.length === 0) return
  const shown = lines.slice(0, 40).join('\n  ')
  const more = lines.length > 40 ? `\n  … and ${lines.length - 40} more` : ''
  throw new Error(`trees differ in ${lines.length} paths:\n  ${shown}${more}`)
}

/** Paths of sync-agent temp files (`.syncagent-tmp-*`) anywhere in the tree. */
export function tempFiles(tree: Tree): string[] {
  return [...tree.keys()].filter((p) => path.posix.basename(p).startsWith(TEMP_PREFIX))
}

export function fileCount(tree: Tree): number {
  let count = 0
  for (const entry of tree.values()) if (entry.type === 'file') count++
  return count
}
