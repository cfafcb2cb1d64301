import { SyncError } from './errors.js'

/**
 * Paths inside the synced folder are handled in one canonical form: relative, `/`-separated,
 * no empty, `.` or `..` segments, e.g. `uploads/2024/05/cat.jpg`. Drives store them with a
 * leading slash. Every path that comes from a peer passes through `checkRelativePath` before
 * it touches the disk; a remote peer is untrusted input.
 */
export const TEMP_PREFIX = '.syncagent-tmp-'
/**
 * The directory at the folder's root where the agent writes files before it renames them into
 * place (ignored, never synced: it carries the temp prefix)
 */
export const STAGING_DIR = `${TEMP_PREFIX}staging`
export const IGNORE_FILE = '.syncignore'
export const MAX_PATH_BYTES = 4096
export const MAX_SEGMENT_BYTES = 255

export type PathProblem =
  | 'empty'
  | 'absolute'
  | 'backslash'
  | 'drive-letter'
  | 'nul'
  | 'control-character'
  | 'empty-segment'
  | 'dot-segment'
  | 'too-long'
  | 'segment-too-long'
  | 'invalid-utf8'
  | 'reserved-name'

const PROBLEM_TEXT: Record<PathProblem, string> = {
  empty: 'the path is empty',
  absolute: 'the path is absolute',
  backslash: 'the path contains a backslash',
  'drive-letter': 'the path starts with a drive letter',
  nul: 'the path contains a NUL byte',
  'control-character': 'the path contains a control character',
  'empty-segment': 'the path has an empty segment',
  'dot-segment': 'the path has a "." or ".." segment',
  'too-long': `the path is longer than ${MAX_PATH_BYTES} bytes`,
  'segment-too-long': `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`,
  'invalid-utf8': 'the path is not valid UTF-8',
  'reserved-name': 'the path uses a name reserved by sync-agent'
}

/** Returns the first problem of a relative folder path, or null when it is safe. */
export function findPathProblem(path: string): PathProblem | null {
  if (path.length === 0) return 'empty'
  if (path.includes('\0')) return 'nul'
  // lone surrogates and U+FFFD are what undecodable bytes turn into
  if (!path.isWellFormed() || path.includes('\uFFFD')) return 'invalid-utf8'
  if (path.startsWith('/')) return 'absolute'
  if (path.includes('\\')) return 'backslash'
  if (/^[A-Za-z]:/.test(path)) return 'drive-letter'
  // eslint-disable-next-line no-control-regex
  if (/[\x01-\x1f\x7f]/.test(path)) return 'control-character'
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) return 'too-long'
  const segments = path.split('/')
  for (const segment of segments) {
    if (segment.length === 0) return 'empty-segment'
    if (segment === '.' || segment === '..') return 'dot-segment'
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return 'segment-too-long'
    if (segment.startsWith(TEMP_PREFIX)) return 'reserved-name'
  }
  if (path === IGNORE_FILE) return 'reserved-name'
  return null
}

export function describePathProblem(problem: PathProblem): string {
  return PROBLEM_TEXT[problem]
}

/** Throws SyncError('E_PATH_UNSAFE') when the path is not a safe relative folder path. */
export function checkRelativePath(path: string): string {
  const problem = findPathProblem(path)
  if (problem) {
    throw new SyncError('E_PATH_UNSAFE', `unsafe path ${JSON.stringify(path.slice(0, 200))}: ${describePathProblem(problem)}`, {
      details: { problem, path: path.slice(0, 200) }
    })
  }
  return path
}

/** `uploads/a.jpg` → `/uploads/a.jpg` */
export function toDriveKey(relativePath: string): string {
  return '/' + relativePath
}

/** `/uploads/a.jpg` → `uploads/a.jpg`, checked; throws E_PATH_UNSAFE. */
export function fromDriveKey(key: string): string {
  if (!key.startsWith('/')) {
    throw new SyncError('E_PATH_UNSAFE', `unsafe path ${JSON.stringify(key.slice(0, 200))}: a drive key must start with "/"`)
  }
  return checkRelativePath(key.slice(1))
}

/** The first segment, for per-directory progress (`uploads/2024/a.jpg` → `uploads`, `index.php` → `.`). */
export function topLevelDir(relativePath: string): string {
  const slash = relativePath.indexOf('/')
  return slash === -1 ? '.' : relativePath.slice(0, slash)
}

/** Parent of a relative path, '' for the root. */
export function parentOf(relativePath: string): string {
  const slash = relativePath.lastIndexOf('/')
  return slash === -1 ? '' : relativePath.slice(0, slash)
}
