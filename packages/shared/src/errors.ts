/**
 * One error type with a stable code. Callers branch on `code`, never on the message.
 * Only the CLI's top level turns a SyncError into an exit code and a stderr line.
 */
export type ErrorCode =
  | 'E_USAGE' // bad command-line arguments
  | 'E_CONFIG' // a setting is missing or invalid
  | 'E_SECRET' // a folder secret is malformed
  | 'E_DATA_DIR' // the state directory is unusable (locked, newer format, damaged)
  | 'E_AUTH' // a peer could not prove it holds the folder secret
  | 'E_PEER_PROTOCOL' // a peer sent something we do not accept
  | 'E_PATH_UNSAFE' // a path would escape the folder or is not representable
  | 'E_DISK_FULL' // no space left while writing into the folder or the data dir
  | 'E_IO' // any other file-system failure
  | 'E_NO_AGENT' // the CLI found no running agent at the control socket
  | 'E_TIMEOUT' // a wait ran out of time
  | 'E_CONTENT_TRANSFER' // a file's bytes from a peer's folder did not arrive whole and true: read again elsewhere
  | 'E_NO_PEER' // a path's bytes are not here and no peer is connected to fetch them from (it waits for one)
  | 'E_SUPERSEDED' // a newer entry for a path arrived while its older winner's bytes were awaited (it runs again)
  | 'E_NOT_FOUND' // what a command asked the agent for does not exist (a version, a path)
  | 'E_REFUSED' // the agent will not do what a command asked, as things stand (a directory in the way, the file changed meanwhile)

export class SyncError extends Error {
  readonly code: ErrorCode
  /** Extra structured fields for logs (setting name, path, peer id). Never secrets. */
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SyncError'
    this.code = code
    this.details = options.details ?? {}
  }
}

export function isSyncError(err: unknown, code?: ErrorCode): err is SyncError {
  return err instanceof SyncError && (code === undefined || err.code === code)
}

/** Exit codes of the CLI, one place. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2
} as const
