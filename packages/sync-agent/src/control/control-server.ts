import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { chmod, unlink } from 'node:fs/promises'
import { isSyncError, SyncError, type ErrorCode, type RescanResult, type RestoreRequest, type RestoreResult, type StatusReport, type VersionListing } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import { stopServer } from '../http/http-server.js'

/**
 * The control API: HTTP on a Unix socket (mode 0600), so only the agent's user can ask.
 *   GET /status           → StatusReport JSON
 *   POST /accept-deletes  → { accepted } (applies a held mass delete)
 *   POST /revert          → { reverting } (read-only peers: local changes give way)
 *   GET /versions?path=P  → VersionListing (the versions kept of P, or under it)
 *   POST /restore         → RestoreResult, from a RestoreRequest JSON body
 *   POST /rescan          → RescanResult (once the folder was walked)
 *   POST /pause, /resume  → { pausedSince } (null once resumed)
 * A request that fails answers `{ error, code }` (a SyncError's message and code) with a 4xx
 * or 5xx status.
 */
export interface ControlHandlers {
  status(): StatusReport
  acceptDeletes(): { accepted: number }
  revert(): { reverting: number }
  /** absent where there is no folder (an encrypted relay) */
  versions?(path: string): Promise<VersionListing>
  restore?(request: RestoreRequest): Promise<RestoreResult>
  rescan?(): Promise<RescanResult>
  /** holds the sync, or lets it go on (absent on an encrypted relay) */
  setPaused?(paused: boolean): Promise<{ pausedSince: number | null }>
}

const ACTIONS: Record<string, 'acceptDeletes' | 'revert'> = { '/accept-deletes': 'acceptDeletes', '/revert': 'revert' }
/** a restore request's body at most (a path and a version name) */
const MAX_BODY_BYTES = 64 * 1024
const STATUS_OF: Partial<Record<ErrorCode, number>> = { E_USAGE: 400, E_PATH_UNSAFE: 400, E_NOT_FOUND: 404, E_REFUSED: 409 }

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function fail(res: ServerResponse, err: unknown): void {
  const code: ErrorCode = isSyncError(err) ? err.code : 'E_IO'
  answer(res, STATUS_OF[code] ?? 500, { error: (err as Error).message, code })
}

/** A restore request from the body, checked: E_USAGE naming what is wrong. */
async function readRestoreRequest(req: IncomingMessage): Promise<RestoreRequest> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new SyncError('E_USAGE', `restore: the request is over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  let body: unknown
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new SyncError('E_USAGE', 'restore: the request is not JSON')
  }
  const { path, version } = (body ?? {}) as Record<string, unknown>
  if (typeof path !== 'string') throw new SyncError('E_USAGE', 'restore: "path" must be a string')
  if (version !== undefined && typeof version !== 'string') throw new SyncError('E_USAGE', 'restore: "version" must be a string')
  return version === undefined ? { path } : { path, version }
}

export class ControlServer {
  private server: Server | null = null

  constructor(
    private readonly path: string,
    private readonly handlers: ControlHandlers,
    private readonly log: Logger
  ) {}

  async ready(): Promise<void> {
    await this.removeStaleSocket()
    const server = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/status' || req.url === '/status/')) {
        const body = JSON.stringify(this.handlers.status())
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(body)
        return
      }
      const action = req.method === 'POST' ? ACTIONS[req.url ?? ''] : undefined
      if (action) {
        const body = JSON.stringify(this.handlers[action]())
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(body)
        return
      }
      const url = new URL(req.url ?? '/', 'http://control')
      const { versions, restore, rescan, setPaused } = this.handlers
      const noFolder = (what: string) => fail(res, new SyncError('E_REFUSED', `an encrypted relay has no folder: ${what}`))
      if (req.method === 'GET' && url.pathname === '/versions') {
        if (!versions) return noFolder('it keeps no versions')
        versions.call(this.handlers, url.searchParams.get('path') ?? '').then((listing) => answer(res, 200, listing), (err: unknown) => fail(res, err))
        return
      }
      if (req.method === 'POST' && url.pathname === '/restore') {
        if (!restore) return noFolder('it keeps no versions')
        readRestoreRequest(req)
          .then((request) => restore.call(this.handlers, request))
          .then((result) => answer(res, 200, result), (err: unknown) => fail(res, err))
        return
      }
      if (req.method === 'POST' && (url.pathname === '/pause' || url.pathname === '/resume')) {
        if (!setPaused) return noFolder('nothing to pause')
        setPaused.call(this.handlers, url.pathname === '/pause').then((result) => answer(res, 200, result), (err: unknown) => fail(res, err))
        return
      }
      if (req.method === 'POST' && url.pathname === '/rescan') {
        if (!rescan) return noFolder('nothing to rescan')
        rescan.call(this.handlers).then((result) => answer(res, 200, result), (err: unknown) => fail(res, err))
        return
      }
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'not found' }))
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      // created with a umask that leaves only the owner, then chmod to be sure
      const oldMask = process.umask(0o177)
      server.listen(this.path, () => {
        process.umask(oldMask)
        server.removeListener('error', reject)
        resolve()
      })
    })
    await chmod(this.path, 0o600)
    this.log.debug({ path: this.path }, 'control socket ready')
  }

  private async removeStaleSocket(): Promise<void> {
    const alive = await new Promise<boolean>((resolve) => {
      const socket = connect(this.path)
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (alive) throw new SyncError('E_DATA_DIR', `another agent is running with control socket ${this.path}`)
    await unlink(this.path).catch(() => undefined)
  }

  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = null
    await stopServer(server)
    await unlink(this.path).catch(() => undefined)
  }
}
