import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { chmod, unlink } from 'node:fs/promises'
import { SyncError, type StatusReport } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import { stopServer } from '../http/http-server.js'

/**
 * The control API: HTTP on a Unix socket (mode 0600), so only the agent's user can ask.
 *   GET /status           → StatusReport JSON
 *   POST /accept-deletes  → { accepted } (applies a held mass delete)
 *   POST /revert          → { reverting } (read-only peers: local changes give way)
 */
export interface ControlHandlers {
  status(): StatusReport
  acceptDeletes(): { accepted: number }
  revert(): { reverting: number }
}

const ACTIONS: Record<string, 'acceptDeletes' | 'revert'> = { '/accept-deletes': 'acceptDeletes', '/revert': 'revert' }

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
