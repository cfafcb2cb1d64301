import { createReadStream } from 'node:fs'
import { open, realpath, type FileHandle } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { constants } from 'node:fs'
import { extname, sep } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import picomatch from 'picomatch'
import { describePathProblem, findPathProblem } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import type { IndexStore, LocalRecord } from '../index-store.js'
import type { IgnoreRules } from '../ignore-rules.js'
import { decide } from '../merge.js'
import type { PathReconciler } from '../reconcile-path.js'
import type { SyncEngine } from '../sync-engine.js'
import { sendJson } from './http-server.js'

/**
 * `GET /files/<path>`: a file a visitor needs now. Served from disk when it is there;
 * otherwise fetched from peers ahead of everything else, then served; 404 when no peer has
 * it. Serves only what the `serve` patterns allow (uploads by default), and never PHP
 * sources, dotfiles, or anything outside the folder (symlinks included).
 */
export const URL_PREFIX = '/files/'
const FETCH_WAIT_MS = 30_000
const MAX_CONCURRENT_FETCHES = 32

/** Never served whatever `serve` says: code the web server would execute, or could leak. */
const NEVER_SERVED_EXT = new Set(['.php', '.phtml', '.phar', '.php3', '.php4', '.php5', '.php7', '.php8', '.pht', '.phps', '.inc', '.cgi', '.pl', '.py', '.sh', '.sql'])

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.bmp': 'image/bmp',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.wav': 'audio/wav',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf'
}

export interface OnDemandDeps {
  root: string
  serve: readonly string[]
  rules: () => IgnoreRules
  index: IndexStore
  engine: SyncEngine
  reconciler: PathReconciler
  log: Logger
}

type Refusal = { status: number; error: string }

export class OnDemandFiles {
  private readonly allowed: (path: string) => boolean
  private fetching = 0
  /** served on demand (fetched from a peer first) since start */
  fetched = 0

  constructor(private readonly deps: OnDemandDeps) {
    this.allowed = picomatch([...deps.serve], { dot: false })
  }

  /** The folder-relative path a request names, or why it is refused. */
  pathOf(url: URL): string | Refusal {
    const raw = url.pathname.slice(URL_PREFIX.length)
    let segments: string[]
    try {
      segments = raw.split('/').map((s) => decodeURIComponent(s))
    } catch {
      return { status: 400, error: 'bad percent-encoding in the path' }
    }
    const path = segments.join('/')
    const problem = findPathProblem(path)
    if (problem) return { status: 400, error: `bad path: ${describePathProblem(problem)}` }
    if (segments.some((s) => s.startsWith('.'))) return { status: 403, error: 'dotfiles are never served' }
    if (NEVER_SERVED_EXT.has(extname(path).toLowerCase())) return { status: 403, error: 'source files are never served' }
    if (!this.allowed(path)) return { status: 403, error: 'this path is not in the served classes (setting "serve")' }
    if (this.deps.rules().isIgnored(path, false)) return { status: 404, error: 'not synced (ignored)' }
    return path
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = this.pathOf(url)
    if (typeof path !== 'string') {
      sendJson(res, path.status, { error: path.error })
      return
    }
    if (await this.serveFromDisk(req, res, path, false)) return
    // not here (yet): does any peer have it?
    const winner = decide(await this.deps.reconciler.gather(path)).winner
    if (!winner || winner.kind !== 'file') {
      sendJson(res, 404, { error: 'no peer has this file' })
      return
    }
    if (this.fetching >= MAX_CONCURRENT_FETCHES) {
      res.setHeader('retry-after', '1')
      sendJson(res, 503, { error: 'too many files being fetched on demand; retry' })
      return
    }
    this.fetching++
    try {
      this.deps.engine.mark(path, winner.size, null, true)
      const settled = await this.deps.engine.whenSettled(path, FETCH_WAIT_MS)
      if (settled && (await this.serveFromDisk(req, res, path, true))) {
        this.fetched++
        this.deps.log.info({ path, bytes: winner.size }, 'served a file on demand')
        return
      }
      sendJson(res, 504, { error: 'could not fetch the file from peers in time' })
    } finally {
      this.fetching--
    }
  }

  /** Streams the file if the disk holds the version the index knows; false if it does not. */
  private async serveFromDisk(req: IncomingMessage, res: ServerResponse, path: string, afterFetch: boolean): Promise<boolean> {
    const record = this.deps.index.get(path)
    // a newer version may be on its way: like the web server in front, serve what is here
    if (!record || record.kind !== 'file') return false
    const abs = this.deps.root + sep + path
    // a parent directory may be a symlink: the real file must still be inside the folder
    let real: string
    try {
      real = await realpath(abs)
    } catch {
      return false
    }
    if (!real.startsWith(this.deps.root + sep)) return false
    let handle
    try {
      handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch {
      return false
    }
    try {
      return await this.stream(req, res, path, handle, record, afterFetch)
    } finally {
      await handle.close().catch(() => undefined)
    }
  }

  private async stream(req: IncomingMessage, res: ServerResponse, path: string, handle: FileHandle, record: LocalRecord, afterFetch: boolean): Promise<boolean> {
    const st = await handle.stat()
    if (!st.isFile() || st.size !== record.size || Math.abs(st.mtimeMs - record.mtimeMs) > 1) return false
    const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream'
    const headers: Record<string, string | number> = {
      'content-type': type,
      'content-length': st.size,
      'last-modified': st.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
      'x-sync-agent': afterFetch ? 'fetched' : 'disk'
    }
    // an uploaded SVG can carry script: never let it run in our origin
    if (type === 'image/svg+xml') headers['content-security-policy'] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    res.writeHead(200, headers)
    if (req.method === 'HEAD') {
      res.end()
      return true
    }
    // pipeline, not pipe: a visitor gone before the first byte (the fetch took seconds) closed
    // the response already, and a 'close' listener added after it never fired: the request
    // waited for good and its file stayed open until the collector closed it
    await pipeline(createReadStream('', { fd: handle.fd, autoClose: false }), res).catch((err: unknown) => {
      this.deps.log.debug({ err, path }, 'a file served on demand was not sent whole (the visitor left)')
      res.destroy()
    })
    return true
  }
}
