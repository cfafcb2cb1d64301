/**
 * What the control socket's `/versions` and `/restore` answer (the CLI's `versions` command
 * prints them). Paths are folder paths (`uploads/2026/11/cat.jpg`); a version's `name` is its
 * path inside the versions dir (`uploads/2026/11/cat~20261130-231500.jpg`).
 */
export interface KeptVersion {
  /** the folder path it is a version of */
  path: string
  /** its path under the versions dir */
  name: string
  /** the stamp in its name (`20261130-231500`; `-N` after it for a later one in that second), which names it to `restore` */
  stamp: string
  /** when it was replaced or deleted here (from its name; ISO 8601, UTC, whole seconds) */
  madeAt: string
  size: number
  /** the file's own mtime (ms since epoch), which a restore gives back */
  mtimeMs: number
}

export interface VersionListing {
  /** the versions dir, null when this agent keeps no versions (`versionsDir` unset) */
  dir: string | null
  /** newest first within each path, paths in order */
  versions: KeptVersion[]
  /** more versions matched than the listing holds (`limit`) */
  truncated: boolean
}

export interface RestoreRequest {
  /** a folder path, or an absolute path inside the folder */
  path: string
  /** which version: its name, its file name or its stamp (`YYYYMMDD-HHMMSS`); the newest when absent */
  version?: string
}

export interface RestoreResult {
  path: string
  /** the version restored (it stays in the versions dir) */
  restored: KeptVersion
  /** where the file the restore replaced was kept (its name under the versions dir), null when nothing was there or it could not be kept */
  replacedKeptAs: string | null
}
