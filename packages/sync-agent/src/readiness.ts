import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Is this node safe to serve visitors? Ready means: the start-up scan is done and either
 *  - it expects no peers: none configured, no DHT discovery (the first node: it serves what it has), or
 *  - the classes needed for ready (themes, plugins… by default) are complete as of what a
 *    connected peer has, after one exchange with it, or
 *  - the node was ready before (its data dir says so), and no peer could be reached for
 *    `offlineReadyAfterS` after start: a fail-over node that restarts while its peer is down
 *    must still serve the content of its last sync.
 * Ready latches: once ready the node stays ready (a theme update arriving later does not
 * take it out of the load balancer), and the data dir remembers it.
 */
const MARKER = 'ready-once'

export interface ReadinessInput {
  scanDone: boolean
  /** address of a connected peer whose ready classes we have caught up with, if any */
  caughtUpWith: string | null
  connectedPeers: number
  /** what the ready classes still lack, for the reason text */
  missing: { files: number; bytes: number }
}

export interface ReadinessState {
  ready: boolean
  reason: string
  readyAt: number | null
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1) + ' MiB'
}

export class Readiness {
  private readyAt: number | null = null
  private reason = 'starting'
  private wasReadyBefore = false
  private readonly startedAt: number

  constructor(
    private readonly dataDir: string,
    private readonly opts: { hasPeers: boolean; offlineReadyAfterS: number; requiredClasses: string[] },
    private readonly now: () => number = Date.now
  ) {
    this.startedAt = now()
  }

  async ready(): Promise<void> {
    try {
      await readFile(join(this.dataDir, MARKER))
      this.wasReadyBefore = true
    } catch {
      this.wasReadyBefore = false
    }
  }

  /** Re-evaluates; returns true when the node just became ready. */
  update(input: ReadinessInput): boolean {
    if (this.readyAt !== null) return false
    const classes = this.opts.requiredClasses.join(', ') || 'none'
    let reason: string | null = null
    if (!input.scanDone) this.reason = 'scanning the folder'
    else if (!this.opts.hasPeers) reason = 'no peers configured and no discovery: serving the local folder'
    else if (input.caughtUpWith !== null) reason = `complete as of peer ${input.caughtUpWith} (${classes})`
    else if (this.wasReadyBefore && input.connectedPeers === 0 && this.opts.offlineReadyAfterS > 0 && this.now() - this.startedAt >= this.opts.offlineReadyAfterS * 1000) {
      reason = `no peer reachable for ${this.opts.offlineReadyAfterS} s: serving the content of the last sync`
    } else if (input.connectedPeers === 0) this.reason = `waiting for a peer (${classes} not known yet)`
    else if (input.missing.files > 0) this.reason = `fetching ${classes}: ${input.missing.files} files (${mib(input.missing.bytes)}) left`
    else this.reason = `reading the file index of ${classes} from peers`
    if (reason === null) return false
    this.reason = reason
    this.readyAt = this.now()
    writeFile(join(this.dataDir, MARKER), new Date(this.readyAt).toISOString() + '\n', { mode: 0o600 }).catch(() => undefined)
    this.wasReadyBefore = true
    return true
  }

  state(): ReadinessState {
    return { ready: this.readyAt !== null, reason: this.reason, readyAt: this.readyAt }
  }
}
