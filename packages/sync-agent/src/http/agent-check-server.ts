import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { formatHostPort, SyncError, type HostPort } from '@sync-agent/shared'
import type { Logger } from '../log.js'

/**
 * Answers HAProxy's `agent-check`: on each connection one line, then close.
 *   ready:      `up ready`      (operational, and out of any maintenance the agent set)
 *   not ready:  `maint #<why>`  (no traffic at all, not even sessions pinned to this server
 *                                by a sticky cookie; `drain` would still admit those)
 * HAProxy keeps polling the agent while the server is in maintenance set by the agent, and
 * `ready` brings it back.
 */
export interface AgentCheckAnswer {
  ready: boolean
  reason: string
}

/** The line to send; the text after `#` is shown by HAProxy as the check's description. */
export function agentCheckLine(answer: AgentCheckAnswer): string {
  // one line, printable ASCII only: HAProxy reads up to the first newline
  const why = answer.reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)
  return answer.ready ? 'up ready\n' : `maint #${why}\n`
}

export class AgentCheckServer {
  private server: Server | null = null
  private readonly sockets = new Set<Socket>()

  constructor(
    private readonly listen: HostPort,
    private readonly answer: () => AgentCheckAnswer,
    private readonly log: Logger
  ) {}

  async ready(): Promise<void> {
    const server = createServer((socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
      socket.on('error', () => undefined)
      socket.setTimeout(5_000, () => socket.destroy())
      socket.end(agentCheckLine(this.answer()))
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new SyncError('E_CONFIG', `cannot listen for agent-check on ${formatHostPort(this.listen)}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`, { cause: err }))
      })
      server.listen(this.listen.port, this.listen.host, () => resolve())
    })
    this.log.info({ address: formatHostPort(this.address) }, 'agent-check listening')
  }

  get address(): HostPort {
    const a = this.server?.address() as AddressInfo | null
    return a ? { host: a.address, port: a.port } : this.listen
  }

  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = null
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
