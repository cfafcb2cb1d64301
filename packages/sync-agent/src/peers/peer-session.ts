import { Socket as NetSocket, type Socket } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import Protomux, { type Channel, type Message } from 'protomux'
import type { KeyPair } from 'corestore'
import { equalBytes, isSyncError, type FolderKeys } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import {
  authProof, contentDataEncoding, contentEndEncoding, contentRequestEncoding, haveListEncoding, helloEncoding, indexBlocksEncoding,
  indexRequestEncoding, membersEncoding, sumsRequestEncoding, FEATURE_URGENT, type SumsRequest, PROTOCOL, PROTOCOL_VERSION, type ContentData, type ContentEnd, type ContentRequest, type Have,
  type Hello, type IndexBlocks, type IndexRequest
} from '../protocol.js'
import type { Member } from '../replication/member.js'
import { deviceIdOf } from '../device-id.js'
import { checkCapability, ownCapability, type PeerRole } from './capability-proof.js'
import { RateLimitedSocket } from './rate-limited-socket.js'

/**
 * One connection to one peer: Noise over TCP, then our channel. The peer must prove it
 * holds the folder secret (a MAC over this handshake's hash) before anything else happens;
 * only then does `onAuthenticated` hand the stream to replication. In the same hello it
 * proves what else it can do (read, write: capability-proof.ts), which sets its `role`.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000
/** what a dial that reached nobody fails with (the socket's errno) */
export const UNREACHABLE: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])
export const KEEPALIVE_MS = 5_000
export const IDLE_TIMEOUT_MS = 20_000
/** content data messages up to this size are batched with the turn's other small messages */
const BATCHED_BYTES = 64 * 1024

export interface SessionHooks {
  /** return false to refuse (duplicate, self); the session then closes */
  onAuthenticated(session: PeerSession): boolean
  onMembers(session: PeerSession, members: Member[]): void
  onHave(session: PeerSession, have: Have[]): void
  onClose(session: PeerSession, error: { code: string; message: string } | null): void
  /** the peer's wall clock when it opened the channel (ms since the epoch) */
  onPeerClock(session: PeerSession, clockMs: number): void
  /** content transfer (content/): requests from the peer, and answers to ours */
  onContentRequest?(session: PeerSession, request: ContentRequest, urgent: boolean): void
  onContentData?(session: PeerSession, data: ContentData): void
  onContentEnd?(session: PeerSession, end: ContentEnd): void
  /** a request for a file's block sums (answered like a content request, under its id) */
  onSumsRequest?(session: PeerSession, request: SumsRequest): void
  /** index transfer (replication/index-block-*.ts): requests from the peer, and answers to ours */
  onIndexRequest?(session: PeerSession, request: IndexRequest): void
  onIndexBlocks?(session: PeerSession, answer: IndexBlocks): void
}

export class PeerSession {
  readonly stream: NoiseSecretStream
  remoteKey: Buffer | null = null
  deviceId: string | null = null
  authenticated = false
  /** what the peer proved it can do (null until its hello); see capability-proof.ts */
  role: PeerRole | null = null
  /** false when we cannot check the proof of its role (an encrypted peer hearing a read proof) */
  roleVerified = false
  /** FEATURE_* bits the peer announced in its hello */
  features = 0
  closed = false
  private channel: Channel | null = null
  private membersMessage: Message<Member[]> | null = null
  private haveMessage: Message<Have[]> | null = null
  private contentRequestMessage: Message<ContentRequest> | null = null
  private urgentContentRequestMessage: Message<ContentRequest> | null = null
  private contentDataMessage: Message<ContentData> | null = null
  private contentEndMessage: Message<ContentEnd> | null = null
  private indexRequestMessage: Message<IndexRequest> | null = null
  private indexBlocksMessage: Message<IndexBlocks> | null = null
  private sumsRequestMessage: Message<SumsRequest> | null = null
  private drainWaiters: Array<() => void> = []
  /** corked until the end of this event-loop turn (batchTurn) */
  private batching = false
  private failure: { code: string; message: string } | null = null
  private readonly handshakeTimer: NodeJS.Timeout
  /** the TCP socket (or its rate-limited wrapper) under Noise; null for a swarm's stream */
  private readonly raw: Socket | RateLimitedSocket | null
  /** left out of the bandwidth limits (a LAN peer, with limitLan off) */
  private exempt = false

  /** `transport`: a TCP socket, as it is or rate-limited (wrapped in Noise here), or a Noise stream a swarm opened */
  constructor(
    transport: Socket | RateLimitedSocket | NoiseSecretStream,
    readonly isInitiator: boolean,
    readonly address: string,
    keyPair: KeyPair,
    private readonly keys: FolderKeys,
    private readonly hooks: SessionHooks,
    private readonly log: Logger,
    /** FEATURE_* bits we announce */
    private readonly ownFeatures = 0
  ) {
    if (transport instanceof NetSocket || transport instanceof RateLimitedSocket) {
      ;(transport instanceof NetSocket ? transport : transport.socket).setNoDelay(true)
      this.raw = transport
      this.stream = new NoiseSecretStream(isInitiator, transport, { keyPair })
    } else {
      this.raw = null
      this.stream = transport
    }
    this.handshakeTimer = setTimeout(() => this.fail('E_AUTH', 'the peer did not finish the handshake in time'), HANDSHAKE_TIMEOUT_MS)
    this.stream.on('error', (err: Error) => {
      if (this.failure || this.closed) return
      // our dial found nobody (the peer is down, or not there): not a protocol failure, and
      // the peer manager says so once, not at every retry
      const errno = (err as NodeJS.ErrnoException).code
      if (isInitiator && this.remoteKey === null && errno !== undefined && UNREACHABLE.has(errno)) {
        this.failure = { code: errno, message: err.message }
        this.log.debug({ code: errno, peer: this.address }, 'could not connect')
        return
      }
      this.failure = { code: 'E_PEER_PROTOCOL', message: err.message }
      // before the proof this is a stranger sending junk; after it, a peer that went away or broke the protocol
      const fields = { code: 'E_PEER_PROTOCOL', peer: this.address, device: this.deviceId?.slice(0, 7) ?? null, err: err.message }
      if (isSyncError(err, 'E_PEER_PROTOCOL')) this.log.warn(fields, 'the peer sent a malformed message; dropped it')
      else if (this.authenticated) this.log.info(fields, 'peer connection failed')
      else this.log.warn(fields, 'connection failed before the peer proved it holds the folder secret')
    })
    this.stream.on('close', () => this.onClose())
    // a swarm hands over streams that are already open
    if (this.stream.handshakeHash) queueMicrotask(() => this.onOpen())
    else this.stream.on('open', () => this.onOpen())
  }

  /**
   * Bytes received on the connection so far: read from the socket (every byte, as it comes),
   * or for a swarm's stream whole Noise messages. Waits for answers time out on this
   * (stall-timer.ts), not on the answer's own messages.
   */
  /** Is this connection under the bandwidth limits (set, and this peer not exempt)? */
  get rateLimited(): boolean {
    return this.raw instanceof RateLimitedSocket && !this.exempt
  }

  /** Leaves this connection out of the bandwidth limits; effective when called before the peer's proof is checked through (from onAuthenticated). */
  exemptFromLimits(): void {
    this.exempt = true
  }

  /** the remote IP address of a TCP connection (null for a swarm's stream) */
  get remoteAddress(): string | null {
    if (!this.raw) return null
    return (this.raw instanceof RateLimitedSocket ? this.raw.socket : this.raw).remoteAddress ?? null
  }

  get bytesIn(): number {
    return this.raw ? this.raw.bytesRead : this.stream.rawBytesRead
  }

  /** Bytes sent on the connection so far (to the socket; for a swarm's stream, whole Noise messages). */
  get bytesOut(): number {
    if (this.raw instanceof RateLimitedSocket) return this.raw.socket.bytesWritten
    return this.raw ? this.raw.bytesWritten : this.stream.rawBytesWritten
  }

  private onOpen(): void {
    this.remoteKey = Buffer.from(this.stream.remotePublicKey)
    this.deviceId = deviceIdOf(this.remoteKey)
    const mux = Protomux.from(this.stream)
    const channel = mux.createChannel<Hello>({
      protocol: PROTOCOL,
      handshake: helloEncoding,
      onopen: (hello) => this.onHello(hello),
      onclose: () => {
        if (!this.closed) this.fail('E_PEER_PROTOCOL', 'the peer closed the sync channel')
      },
      ondrain: () => this.drained()
    })
    if (!channel) return this.fail('E_PEER_PROTOCOL', 'duplicate sync channel')
    this.channel = channel
    this.membersMessage = channel.addMessage({ encoding: membersEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onMembers(this, m)
    } })
    this.haveMessage = channel.addMessage({ encoding: haveListEncoding, onmessage: (h) => {
      if (this.authenticated) this.hooks.onHave(this, h)
    } })
    // the content messages are only handled once the peer proved the secret; a request is
    // answered (or refused) by the hook's owner, which checks the peer's role
    this.contentRequestMessage = channel.addMessage({ encoding: contentRequestEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onContentRequest?.(this, m, false)
    } })
    this.contentDataMessage = channel.addMessage({ encoding: contentDataEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onContentData?.(this, m)
    } })
    this.contentEndMessage = channel.addMessage({ encoding: contentEndEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onContentEnd?.(this, m)
    } })
    this.indexRequestMessage = channel.addMessage({ encoding: indexRequestEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onIndexRequest?.(this, m)
    } })
    this.indexBlocksMessage = channel.addMessage({ encoding: indexBlocksEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onIndexBlocks?.(this, m)
    } })
    this.urgentContentRequestMessage = channel.addMessage({ encoding: contentRequestEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onContentRequest?.(this, m, true)
    } })
    this.sumsRequestMessage = channel.addMessage({ encoding: sumsRequestEncoding, onmessage: (m) => {
      if (this.authenticated) this.hooks.onSumsRequest?.(this, m)
    } })
    const hash = this.stream.handshakeHash
    channel.open({
      version: PROTOCOL_VERSION,
      proof: authProof(this.keys.authKey, hash, this.isInitiator),
      clockMs: Date.now(),
      capability: ownCapability(this.keys, hash, this.isInitiator),
      features: this.ownFeatures
    })
  }

  private onHello(hello: Hello): void {
    if (hello.version !== PROTOCOL_VERSION) {
      return this.fail('E_PEER_PROTOCOL', `the peer speaks protocol version ${hello.version}, we speak ${PROTOCOL_VERSION}`)
    }
    const expected = authProof(this.keys.authKey, this.stream.handshakeHash, !this.isInitiator)
    if (!equalBytes(expected, hello.proof)) {
      return this.fail('E_AUTH', 'the peer could not prove it holds the folder secret')
    }
    const checked = checkCapability(this.keys, this.stream.handshakeHash, !this.isInitiator, hello.capability)
    if ('error' in checked) return this.fail('E_AUTH', checked.error)
    this.role = checked.role
    this.roleVerified = checked.verified
    this.features = hello.features ?? 0
    clearTimeout(this.handshakeTimer)
    this.authenticated = true
    if (!this.hooks.onAuthenticated(this)) {
      this.authenticated = false
      this.close()
      return
    }
    this.stream.setKeepAlive(KEEPALIVE_MS)
    this.stream.setTimeout(IDLE_TIMEOUT_MS)
    // the bandwidth limits count from here: a stranger's bytes before its proof must not take
    // the budget the peers share (a LAN peer may be exempt: exemptFromLimits)
    if (this.rateLimited) (this.raw as RateLimitedSocket).startLimiting()
    if (typeof hello.clockMs === 'number') this.hooks.onPeerClock(this, hello.clockMs)
  }

  sendMembers(members: Member[]): void {
    if (this.authenticated && !this.closed) this.membersMessage?.send(members)
  }

  sendHave(have: Have[]): void {
    if (this.authenticated && !this.closed) this.haveMessage?.send(have)
  }

  /**
   * Returns false when the stream's buffer is full: wait for `whenDrained()` before sending
   * more. `urgent` (a file someone asks for now) goes as an urgent request to a peer that
   * takes them (FEATURE_URGENT), as an ordinary one to others.
   */
  sendContentRequest(request: ContentRequest, urgent = false): boolean {
    if (!this.authenticated || this.closed) return false
    this.batchTurn()
    const message = urgent && this.features & FEATURE_URGENT ? this.urgentContentRequestMessage : this.contentRequestMessage
    return message?.send(request) ?? false
  }

  /** Only to a peer that announced FEATURE_SUMS (others do not know message 8). */
  sendSumsRequest(request: SumsRequest): boolean {
    if (!this.authenticated || this.closed) return false
    this.batchTurn()
    return this.sumsRequestMessage?.send(request) ?? false
  }

  sendContentData(data: ContentData): boolean {
    if (!this.authenticated || this.closed) return false
    if (data.data.length <= BATCHED_BYTES) this.batchTurn()
    return this.contentDataMessage?.send(data) ?? false
  }

  sendContentEnd(end: ContentEnd): void {
    if (!this.authenticated || this.closed) return
    this.batchTurn()
    this.contentEndMessage?.send(end)
  }

  sendIndexRequest(request: IndexRequest): void {
    if (this.authenticated && !this.closed) this.indexRequestMessage?.send(request)
  }

  /**
   * Small messages sent during this turn of the event loop leave together, in one frame: one
   * encryption and one write instead of one each. A fresh node asks for thousands of small
   * files, a few each turn, and each answer is two messages; one write apiece made socket
   * writes ~8% of its main thread and as much of the serving peer's.
   */
  private batchTurn(): void {
    const channel = this.channel
    if (this.batching || !channel) return
    this.batching = true
    channel.cork()
    setImmediate(() => {
      this.batching = false
      if (!this.closed) channel.uncork()
    })
  }

  sendIndexBlocks(answer: IndexBlocks): void {
    if (this.authenticated && !this.closed) this.indexBlocksMessage?.send(answer)
  }

  /** Resolves when the stream has room again (at once if it has), or when the session closes. */
  whenDrained(): Promise<void> {
    if (this.closed || this.channel === null || this.channel.drained) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  private drained(): void {
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  fail(code: string, message: string): void {
    if (this.closed) return
    this.failure = { code, message }
    this.log.warn({ code, peer: this.address, device: this.deviceId?.slice(0, 7) ?? null }, message)
    this.close()
  }

  close(): void {
    this.stream.destroy()
  }

  private onClose(): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.handshakeTimer)
    this.channel = null
    this.drained()
    this.hooks.onClose(this, this.failure)
  }
}
