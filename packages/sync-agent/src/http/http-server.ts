import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatHostPort, SyncError, type HostPort } from '@sync-agent/shared'
import type { Logger } from '../log.js'

/**
 * The agent's HTTP port (off unless configured; a bare port binds to loopback): health and
 * readiness for load balancers and orchestrators, files on demand, metrics. Routes are
 * registered by the parts that own them; everything else is 404.
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>

interface Route {
  methods: readonly string[]
  path: string
  /** match `path` as a prefix (for /files/…) */
  prefix: boolean
  handle: RouteHandler
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

export class HttpServer {
  private server: Server | null = null
  private readonly routes: Route[] = []

  constructor(
    private readonly listen: HostPort,
    private readonly log: Logger
  ) {}

  route(methods: readonly string[], path: string, handle: RouteHandler, opts: { prefix?: boolean } = {}): void {
    this.routes.push({ methods, path, prefix: opts.prefix ?? false, handle })
  }

  async ready(): Promise<void> {
    const server = createServer((req, res) => this.dispatch(req, res))
    server.headersTimeout = 10_000
    server.requestTimeout = 60_000
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new SyncError('E_CONFIG', `cannot listen for HTTP on ${formatHostPort(this.listen)}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`, { cause: err }))
      })
      server.listen(this.listen.port, this.listen.host, () => resolve())
    })
    this.log.info({ address: formatHostPort(this.address) }, 'HTTP listening')
  }

  get address(): HostPort {
    const a = this.server?.address() as AddressInfo | null
    return a ? { host: a.address, port: a.port } : this.listen
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://agent')
    } catch {
      sendJson(res, 400, { error: 'bad request URL' })
      return
    }
    const matching = this.routes.filter((r) => (r.prefix ? url.pathname.startsWith(r.path) : url.pathname === r.path))
    if (matching.length === 0) {
      sendJson(res, 404, { error: 'not found' })
      return
    }
    const route = matching.find((r) => r.methods.includes(req.method ?? ''))
    if (!route) {
      res.setHeader('allow', [...new Set(matching.flatMap((r) => r.methods))].join(', '))
      sendJson(res, 405, { error: 'method not allowed' })
      return
    }
    Promise.resolve()
      .then(() => route.handle(req, res, url))
      .catch((err: unknown) => {
        this.log.error({ err, path: url.pathname }, 'HTTP handler failed')
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' })
        else res.destroy()
      })
  }

  async close(): Promise<void> {
    const server = this.server
    this.server = null
    await stopServer(server)
  }
}

/** Stops an HTTP server now: open keep-alive connections are cut, not waited for. */
export async function stopServer(server: Server | null): Promise<void> {
  if (!server) return
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
