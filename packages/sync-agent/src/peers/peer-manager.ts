import { createServer, connect, type Server, type Socket } from 'node:net'
import type Corestore from 'corestore'
import type { KeyPair } from 'corestore'
import { formatHostPort, SyncError, type FolderKeys, type HostPort, type PeerStatus, type TransferStatus } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import type { Have } from '../protocol.js'
import type { Member } from '../replication/member.js'
import { PeerSession, UNREACHABLE, type SessionHooks } from './peer-session.js'
import { RateLimitedSocket } from './rate-limited-socket.js'
import { isLanAddress } from './lan-address.js'
import { bucketFor, type TokenBucket } from './token-bucket.js'
import type NoiseSecretStream from '@hyperswarm/secret-stream'

/**
 * Connections to known peers: listens on `listen`, dials every configured `host:port` with
 * backoff, authenticates each connection (PeerSession), keeps one connection per device
 * (both sides drop the same duplicate: the one whose initiator has the larger key) and
 * hands authenticated streams to Corestore replication.
 */
/**
 * content transfer (content/) and index transfer (replication/index-block-*.ts), handed
 * through as they are; absent: we serve none and ask for none
 */
type TransferHooks = Pick<SessionHooks, 'onContentRequest' | 'onContentData' | 'onContentEnd' | 'onSumsRequest' | 'onIndexRequest' | 'onIndexBlocks'>

export interface PeerEvents extends TransferHooks {
  onPeer(session: PeerSession): void
  onMembers(session: PeerSession, members: Member[]): void
  onHave(session: PeerSession, have: Have[]): void
  onPeerGone(session: PeerSession): void
  /** a connection ended with an error (E_AUTH, E_PEER_PROTOCOL, ...) */
  onPeerError?(session: PeerSession, code: string): void
  /** an authenticated peer told us its wall clock */
  onPeerClock(session: PeerSession, clockMs: number): void
  /** any session closed (a duplicate too), authenticated or not */
  onSessionClosed?(session: PeerSession): void
}

const BACKOFF_MIN_MS = 200
const BACKOFF_MAX_MS = 10_000
/** inbound connections that have not proved the secret yet; more are refused at once */
export const MAX_UNAUTHENTICATED = 64
const REFUSAL_LOG_INTERVAL_MS = 5_000

interface Dialer {
  target: HostPort
  address: string
  deviceKeyHex: string | null
  deviceId: string | null
  backoffMs: number
  timer: NodeJS.Timeout | null
  session: PeerSession | null
  lastError: string | null
  lastExchangeAt: number | null
  isSelf: boolean
  /** "cannot reach" was logged since the last connection */
  unreachableLogged: boolean
}

export class PeerManager {
  private server: Server | null = null
  private readonly dialers: Dialer[]
  private readonly sessions = new Set<PeerSession>()
  /** the one authenticated session per device */
  private readonly byDevice = new Map<string, PeerSession>()
  private readonly exchangeAt = new Map<string, number>()
  /** streams handed over by discovery, for status */
  private readonly discovered = new Set<NoiseSecretStream>()
  private closing = false
  private refusedSinceLog = 0
  private lastRefusalLogAt = 0
  /** what the connections that ended received and sent */
  private readonly closedBytes = { in: 0, out: 0 }
  /** shared by every TCP connection (null: no limit) */
  private readonly sendBucket: TokenBucket | null
  private readonly recvBucket: TokenBucket | null

  constructor(
    private readonly opts: {
      listen: HostPort | null
      peers: readonly HostPort[]
      keyPair: KeyPair
      /** the folder's keys: membership and capability proofs (peer-session.ts) */
      keys: FolderKeys
      /** device ids allowed in (upper case); empty = anyone who proves the secret */
      allow: readonly string[]
      store: Corestore
      log: Logger
      events: PeerEvents
      /** FEATURE_* bits announced in our hello */
      features?: number
      /**
       * bandwidth limits of all TCP connections together, KiB/s (0: none); `lan` false leaves
       * peers at LAN addresses out of them (lan-address.ts)
       */
      limits?: { sendKiBps: number; recvKiBps: number; lan: boolean }
    }
  ) {
    this.sendBucket = bucketFor(opts.limits?.sendKiBps ?? 0)
    this.recvBucket = bucketFor(opts.limits?.recvKiBps ?? 0)
    this.dialers = opts.peers.map((target) => ({
      target,
      address: formatHostPort(target),
      deviceKeyHex: null,
      deviceId: null,
      backoffMs: BACKOFF_MIN_MS,
      timer: null,
      session: null,
      lastError: null,
      lastExchangeAt: null,
      isSelf: false,
      unreachableLogged: false
    }))
  }

  async ready(): Promise<void> {
    const limits = this.opts.limits
    if (this.sendBucket || this.recvBucket) this.opts.log.info({ maxSendKiBps: limits?.sendKiBps ?? 0, maxRecvKiBps: limits?.recvKiBps ?? 0, limitLan: limits?.lan ?? true }, 'bandwidth limits on peer connections (0: none)')
    if (this.opts.listen) await this.listen(this.opts.listen)
    for (const d of this.dialers) this.dial(d)
  }

  /** Authenticated sessions, one per device. */
  connected(): PeerSession[] {
    return [...this.byDevice.values()]
  }

  markExchange(session: PeerSession): void {
    if (session.remoteKey) this.exchangeAt.set(session.remoteKey.toString('hex'), Date.now())
  }

  /**
   * `isWriter`: is this device a signed member (a writer, so rw even if its hello said less);
   * `notServingSince`: since when a peer's claims have been out of reach (unserved-claims.ts)
   */
  status({ isWriter = () => false, notServingSince = () => null }: { isWriter?: (deviceKey: Buffer) => boolean; notServingSince?: (session: PeerSession) => number | null } = {}): PeerStatus[] {
    const roleOf = (session: PeerSession | undefined): Pick<PeerStatus, 'role' | 'roleVerified'> => {
      if (!session?.remoteKey || session.role === null) return { role: null, roleVerified: false }
      if (isWriter(session.remoteKey)) return { role: 'rw', roleVerified: true }
      return { role: session.role, roleVerified: session.roleVerified }
    }
    const out: PeerStatus[] = []
    const listed = new Set<string>()
    for (const d of this.dialers) {
      if (d.isSelf) continue
      const session = d.deviceKeyHex ? this.byDevice.get(d.deviceKeyHex) : undefined
      if (d.deviceKeyHex) listed.add(d.deviceKeyHex)
      out.push({
        address: d.address,
        connected: session !== undefined,
        deviceId: d.deviceId,
        source: 'configured',
        ...roleOf(session),
        lastError: session ? null : d.lastError,
        notServingSince: session ? notServingSince(session) : null,
        lastExchangeAt: d.deviceKeyHex ? (this.exchangeAt.get(d.deviceKeyHex) ?? null) : null,
        receivedBytes: session ? session.bytesIn : null,
        sentBytes: session ? session.bytesOut : null,
        rateLimited: session ? session.rateLimited : null
      })
    }
    for (const [hex, session] of this.byDevice) {
      if (listed.has(hex)) continue
      out.push({
        address: session.address,
        connected: true,
        deviceId: session.deviceId,
        source: this.discovered.has(session.stream) ? 'dht' : 'inbound',
        ...roleOf(session),
        lastError: null,
        notServingSince: notServingSince(session),
        lastExchangeAt: this.exchangeAt.get(hex) ?? null,
        receivedBytes: session.bytesIn,
        sentBytes: session.bytesOut,
        rateLimited: session.rateLimited
      })
    }
    return out
  }

  private listen(at: HostPort): Promise<void> {
    const server = createServer((socket) => this.accept(socket))
    this.server = server
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new SyncError('E_CONFIG', `cannot listen on ${formatHostPort(at)}: ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}`, { cause: err, details: { setting: 'listen' } }))
      })
      server.listen(at.port, at.host, () => {
        server.removeAllListeners('error')
        server.on('error', (err) => this.opts.log.error({ err }, 'listener error'))
        this.opts.log.info({ listen: formatHostPort(at) }, 'listening for peers')
        resolve()
      })
    })
  }

  private accept(socket: Socket): void {
    if (this.closing) return void socket.destroy()
    const address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`
    let unauthenticated = 0
    for (const s of this.sessions) if (!s.authenticated) unauthenticated++
    if (unauthenticated >= MAX_UNAUTHENTICATED) {
      socket.destroy()
      this.refusedSinceLog++
      const now = Date.now()
      if (now - this.lastRefusalLogAt >= REFUSAL_LOG_INTERVAL_MS) {
        this.opts.log.warn({ code: 'E_PEER_PROTOCOL', peer: address, refused: this.refusedSinceLog, limit: MAX_UNAUTHENTICATED }, 'too many connections still in their handshake; refusing new ones')
        this.lastRefusalLogAt = now
        this.refusedSinceLog = 0
      }
      return
    }
    this.startSession(this.limited(socket), false, address, null)
  }

  /** The socket under the bandwidth limits, if any are set. */
  private limited(socket: Socket): Socket | RateLimitedSocket {
    return this.sendBucket || this.recvBucket ? new RateLimitedSocket(socket, this.sendBucket, this.recvBucket) : socket
  }

  private dial(d: Dialer): void {
    if (this.closing || d.isSelf) return
    d.timer = null
    // the device is already connected (it dialled us): wait until that connection ends
    if (d.deviceKeyHex && this.byDevice.has(d.deviceKeyHex)) return
    const socket = connect({ host: d.target.host, port: d.target.port })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      d.lastError = err.code ?? err.message
    })
    this.startSession(this.limited(socket), true, d.address, d)
  }

  private scheduleDial(d: Dialer): void {
    if (this.closing || d.isSelf || d.timer) return
    const delay = Math.round(d.backoffMs * (0.75 + Math.random() * 0.5))
    d.backoffMs = Math.min(BACKOFF_MAX_MS, d.backoffMs * 2)
    d.timer = setTimeout(() => this.dial(d), delay)
  }

  /** A connection a discovery swarm opened (already Noise-encrypted, with our device key). */
  attachDiscovered(stream: NoiseSecretStream): void {
    if (this.closing) return void stream.destroy()
    const raw = stream.rawStream as unknown as { remoteHost?: string; remotePort?: number } | null
    const address = raw?.remoteHost ? `${raw.remoteHost}:${raw.remotePort ?? 0}` : 'dht'
    this.discovered.add(stream)
    stream.once('close', () => this.discovered.delete(stream))
    this.startSession(stream, stream.isInitiator, address, null)
  }

  private startSession(socket: Socket | RateLimitedSocket | NoiseSecretStream, isInitiator: boolean, address: string, dialer: Dialer | null): void {
    const { onContentRequest, onContentData, onContentEnd, onSumsRequest, onIndexRequest, onIndexBlocks } = this.opts.events
    const hooks: SessionHooks = {
      onContentRequest, onContentData, onContentEnd, onSumsRequest, onIndexRequest, onIndexBlocks,
      onAuthenticated: (s) => this.admit(s, dialer),
      onMembers: (s, m) => this.opts.events.onMembers(s, m),
      onHave: (s, h) => this.opts.events.onHave(s, h),
      onPeerClock: (s, clockMs) => this.opts.events.onPeerClock(s, clockMs),
      onClose: (s, error) => this.onSessionClose(s, dialer, error)
    }
    const session = new PeerSession(socket, isInitiator, address, this.opts.keyPair, this.opts.keys, hooks, this.opts.log, this.opts.features ?? 0)
    this.sessions.add(session)
    if (dialer) dialer.session = session
  }

  private admit(session: PeerSession, dialer: Dialer | null): boolean {
    const remote = session.remoteKey as Buffer
    const hex = remote.toString('hex')
    if (remote.equals(this.opts.keyPair.publicKey)) {
      if (dialer) {
        dialer.isSelf = true
        this.opts.log.warn({ peer: dialer.address }, 'a configured peer is this agent itself; not dialling it again')
      }
      return false
    }
    if (dialer) {
      dialer.deviceKeyHex = hex
      dialer.deviceId = session.deviceId
    }
    if (this.opts.allow.length > 0 && !this.opts.allow.includes(session.deviceId as string)) {
      this.opts.log.warn({ code: 'E_AUTH', peer: session.address, device: session.deviceId }, 'the peer holds the secret but its device id is not in the allow list (SYNC_AGENT_ALLOW); refused')
      if (dialer) dialer.lastError = 'E_NOT_ALLOWED'
      return false
    }
    const existing = this.byDevice.get(hex)
    if (existing && !existing.closed) {
      // keep the connection whose initiator has the smaller key; both sides agree
      const ownIsSmaller = Buffer.compare(this.opts.keyPair.publicKey, remote) < 0
      const keepNew = session.isInitiator === ownIsSmaller
      if (!keepNew) return false
      this.byDevice.delete(hex)
      existing.close()
    }
    this.byDevice.set(hex, session)
    if (this.opts.limits?.lan === false && isLanAddress(session.remoteAddress ?? undefined)) session.exemptFromLimits()
    if (dialer) {
      dialer.backoffMs = BACKOFF_MIN_MS
      dialer.lastError = null
      dialer.unreachableLogged = false
    }
    this.opts.log.info({ peer: session.address, device: session.deviceId?.slice(0, 7), initiator: session.isInitiator, role: session.role, roleVerified: session.roleVerified, rateLimited: session.rateLimited }, 'peer connected')
    this.opts.store.replicate(session.stream)
    this.opts.events.onPeer(session)
    return true
  }

  /** Bytes received and sent on every peer connection since the start, and the limits. */
  transfer(): Omit<TransferStatus, 'reusedBytes'> {
    let receivedBytes = this.closedBytes.in
    let sentBytes = this.closedBytes.out
    for (const s of this.sessions) {
      receivedBytes += s.bytesIn
      sentBytes += s.bytesOut
    }
    return { receivedBytes, sentBytes, maxSendKiBps: this.opts.limits?.sendKiBps ?? 0, maxRecvKiBps: this.opts.limits?.recvKiBps ?? 0, limitLan: this.opts.limits?.lan ?? true }
  }

  private onSessionClose(session: PeerSession, dialer: Dialer | null, error: { code: string; message: string } | null): void {
    if (this.sessions.has(session)) {
      this.closedBytes.in += session.bytesIn
      this.closedBytes.out += session.bytesOut
    }
    this.sessions.delete(session)
    this.opts.events.onSessionClosed?.(session)
    if (error && !this.closing) this.opts.events.onPeerError?.(session, error.code)
    const hex = session.remoteKey?.toString('hex')
    const wasActive = hex !== undefined && this.byDevice.get(hex) === session
    if (wasActive) {
      this.byDevice.delete(hex)
      this.opts.log.info({ peer: session.address, device: session.deviceId?.slice(0, 7) }, 'peer disconnected')
      this.opts.events.onPeerGone(session)
      // a configured dialer waiting for this device may dial again now
      for (const d of this.dialers) if (d.deviceKeyHex === hex && d !== dialer) this.scheduleDial(d)
    }
    if (dialer) {
      if (dialer.session === session) dialer.session = null
      // closed before its proof by a device connected to us already: the remote dropped our
      // duplicate. Noise proved the key, so this dialer is that device: its row shows that
      // connection, and it dials again once it ends, not every few seconds meanwhile (its row
      // used to read "disconnected, E_PEER_PROTOCOL" beside the same peer connected inbound)
      const remoteHex = session.authenticated ? undefined : session.remoteKey?.toString('hex')
      if (remoteHex !== undefined && this.byDevice.has(remoteHex)) {
        dialer.deviceKeyHex = remoteHex
        dialer.deviceId = session.deviceId
        dialer.lastError = null
        dialer.backoffMs = BACKOFF_MIN_MS
        return
      }
      // once per outage (each retry logs at debug)
      if (error && UNREACHABLE.has(error.code) && !dialer.unreachableLogged) {
        dialer.unreachableLogged = true
        this.opts.log.info({ code: error.code, peer: dialer.address }, 'cannot reach a configured peer; trying again with a backoff (up to 10 s)')
      }
      if (error) dialer.lastError = error.code
      this.scheduleDial(dialer)
    }
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    for (const d of this.dialers) if (d.timer) clearTimeout(d.timer)
    for (const s of this.sessions) s.close()
    if (this.server) await new Promise<void>((resolve) => this.server?.close(() => resolve()))
  }
}
