import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import { connect, type Socket } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { requireFromAgent } from './paths.ts'
import { until } from './until.ts'
// the project's own modules (compiled: run `pnpm build` first), so the hostile peer speaks
// exactly our protocol and only the parts it chooses to break are wrong
import { deriveFolderKeys, parseSecret, type FolderKeys } from '../../packages/shared/dist/index.js'
import {
  authProof, contentDataEncoding, contentEndEncoding, contentRequestEncoding, FEATURE_CONTENT, FEATURE_INDEX, helloEncoding, haveListEncoding,
  indexBlocksEncoding, indexRequestEncoding, membersEncoding,
  PROTOCOL, PROTOCOL_VERSION, type ContentRequest, type IndexRequest
} from '../../packages/sync-agent/dist/protocol.js'
import { signMember, type Member } from '../../packages/sync-agent/dist/replication/member.js'
import { ownCapability } from '../../packages/sync-agent/dist/peers/capability-proof.js'
import type { Capability } from '../../packages/sync-agent/dist/protocol.js'
import { vectorKeyOf } from '../../packages/sync-agent/dist/device-id.js'

/**
 * A peer under the test's control, for the hostile-peer suite: it speaks `sync-agent/v1` over
 * TCP + Noise like an agent, but every step can be broken on purpose (wrong or replayed proof,
 * forged member, raw bytes on the channel, a handshake that never ends), and as a compromised
 * read-write peer it writes raw entries into its own drive, bypassing every check an agent
 * makes before publishing.
 */
const requireFromDrive = createRequire(requireFromAgent.resolve('hyperdrive'))

/* eslint-disable @typescript-eslint/no-explicit-any -- the Holepunch modules ship no types */
const Corestore: any = requireFromAgent('corestore')
const Hyperdrive: any = requireFromAgent('hyperdrive')
const NoiseSecretStream: any = requireFromAgent('@hyperswarm/secret-stream')
const Protomux: any = requireFromAgent('protomux')
const c: any = requireFromAgent('compact-encoding')
const SubEncoder: any = requireFromDrive('sub-encoder')

/** Hyperdrive's key encoding of its file index (`files` sub-key space). */
const fileKeyEncoding = new SubEncoder('files', 'utf-8')
const FILE_KEY_PREFIX: Buffer = (() => {
  const withX = fileKeyEncoding.encode('x') as Buffer
  return Buffer.from(withX.subarray(0, withX.length - 1))
})()

export interface RawEntryValue {
  executable?: boolean
  linkname?: string | null
  blob?: { blockOffset: number; blockLength: number; byteOffset: number; byteLength: number } | null
  metadata?: unknown
}

export type ProofMode = 'valid' | 'random' | 'none' | { replay: Buffer }

export interface ConnectOptions {
  proof?: ProofMode
  /** members to announce after the hello; default: our own, signed (if we can) */
  members?: Member[] | null
  /** replicate the Corestore over the connection (default true) */
  replicate?: boolean
  version?: number
  /** the capability proof in the hello: 'own' (default) what our secret can prove, or any other */
  capability?: 'own' | ((handshakeHash: Buffer) => Capability | null)
  /**
   * Announce that we serve file contents, and answer each content request the victim sends
   * with this (forged bytes, silence, ...); absent: we announce nothing and are never asked.
   */
  content?: (request: ContentRequest, reply: ContentReply) => void
  /**
   * Announce that we serve index blocks, and answer each index request with this (forged
   * blocks, silence, ...); absent: we announce nothing and are never asked.
   */
  index?: (request: IndexRequest, reply: (status: number, blocks: Buffer[]) => void) => void
}

export interface ContentReply {
  /** sends bytes in data messages of at most 256 KiB */
  data(bytes: Buffer): void
  end(status: number): void
}

export interface HostileConnection {
  socket: Socket
  stream: any
  /** the proof we sent (to replay it on another connection) */
  sentProof: Buffer | null
  handshakeHash: Buffer | null
  /** resolves once the victim opened the channel (its proof was valid for us or not) */
  opened: Promise<void>
  closed: Promise<void>
  isClosed(): boolean
  /** sends raw bytes as message `type` on our channel, bypassing every encoding */
  sendRaw(type: number, bytes: Buffer): void
  /** the member list the victim sent us */
  membersReceived: Member[]
  sendMembers(members: Member[]): void
  sendHave(have: Array<{ driveKey: Buffer; length: number }>): void
  destroy(): void
}

export class HostilePeer {
  readonly keys: FolderKeys
  readonly dir: string
  store: any
  drive: any
  keyPair!: { publicKey: Buffer; secretKey: Buffer }
  private readonly connections: HostileConnection[] = []
  private counter = 0

  private constructor(secret: string, dir: string) {
    this.keys = deriveFolderKeys(parseSecret(secret))
    this.dir = dir
  }

  /** A peer holding `secret` (any kind) with its own store and drive in a new temp dir. */
  static async create(secret: string): Promise<HostilePeer> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sa-hostile-'))
    const peer = new HostilePeer(secret, dir)
    peer.store = new Corestore(path.join(dir, 'store'))
    await peer.store.ready()
    peer.keyPair = await peer.store.createKeyPair('hostile/device')
    peer.drive = new Hyperdrive(peer.store.namespace('hostile/own'), null, { encryptionKey: peer.keys.contentKey })
    await peer.drive.ready()
    await peer.drive.getBlobs()
    return peer
  }

  get author(): string {
    return vectorKeyOf(this.keyPair.publicKey)
  }

  /** Our drive, signed as a member: only possible with a read-write secret. */
  ownMember(): Member | null {
    return signMember(this.keys, this.keyPair.publicKey, this.drive.key)
  }

  /** A member signed with a writer key that is not the folder's. */
  forgedMember(): Member {
    return { deviceKey: this.keyPair.publicKey, driveKey: this.drive.key, signature: randomBytes(64) }
  }

  /** Plausible metadata for a file of `content` at a new version. */
  fileMeta(content: Buffer, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      v: 1,
      vv: { [this.author]: ++this.counter },
      ts: Date.now(),
      kind: 'file',
      size: content.length,
      mtime: Date.now(),
      mode: 0o644,
      hash: createHash('sha256').update(content).digest('hex'),
      ...extra
    }
  }

  nextVector(): Record<string, number> {
    return { [this.author]: ++this.counter }
  }

  /** Stores bytes in our blob core; returns their blob id. */
  async putBlob(content: Buffer): Promise<{ blockOffset: number; blockLength: number; byteOffset: number; byteLength: number }> {
    const blobs = await this.drive.getBlobs()
    return blobs.put(content)
  }

  /** Writes an entry under a raw key (no path normalisation, no checks). */
  async putRaw(key: string | Buffer, value: RawEntryValue): Promise<void> {
    const full = { executable: false, linkname: null, blob: null, metadata: null, ...value }
    if (typeof key === 'string') await this.drive.db.put(key, full, { keyEncoding: fileKeyEncoding })
    else await this.drive.db.put(Buffer.concat([FILE_KEY_PREFIX, key]), full, { keyEncoding: 'binary' })
  }

  /** Writes bytes that are not JSON as an entry's value (Hyperdrive decodes values as JSON). */
  async putUndecodable(key: string): Promise<void> {
    await this.drive.db.put(Buffer.concat([FILE_KEY_PREFIX, Buffer.from(key)]), Buffer.from([0xff, 0x00, 0x7b]), { keyEncoding: 'binary', valueEncoding: 'binary' })
  }

  /** Many entries in batches (one append per batch). */
  async putMany(count: number, entryFor: (i: number) => { key: string; value: RawEntryValue }, batchSize = 5_000): Promise<void> {
    for (let start = 0; start < count; start += batchSize) {
      const batch = this.drive.db.batch()
      for (let i = start; i < Math.min(count, start + batchSize); i++) {
        const { key, value } = entryFor(i)
        await batch.put(key, { executable: false, linkname: null, blob: null, metadata: null, ...value }, { keyEncoding: fileKeyEncoding })
      }
      await batch.flush()
    }
  }

  /**
   * Stops serving every content we published: the bytes are cleared from our blob core (the
   * signed core still covers them, so our entries stay valid), as a peer that withholds them
   * or lost them. Peers that fetched them before can still serve them.
   */
  async withholdContents(): Promise<void> {
    const blobs = await this.drive.getBlobs()
    await blobs.core.clear(0, blobs.core.length)
  }

  /**
   * Stops serving the index of our drive from block `from` on (default: all of it): those
   * blocks of its Hyperbee core (entries, tree, at 0 the header) are cleared, while the core
   * keeps its length and signature, so we still prove the signed length to peers and give them
   * none of those blocks. Clearing also drops the Merkle tree nodes below the cleared blocks: a
   * peer that holds our drive up to some length can only be upgraded if we clear from there
   * (`from` = that length). Peers that fetched the blocks before can still serve them. (Index
   * requests over our channel are answered as the connection's `index` option says.)
   */
  async withholdIndex(from = 0): Promise<void> {
    await this.drive.core.clear(from, this.drive.core.length)
  }

  /** A good file, written the way an agent would. */
  async putFile(relPath: string, content: Buffer): Promise<void> {
    const blob = await this.putBlob(content)
    await this.putRaw('/' + relPath, { blob, metadata: this.fileMeta(content) })
  }

  /** Opens a TCP + Noise connection to `address` and speaks our protocol, broken as asked. */
  connect(address: string, options: ConnectOptions = {}): HostileConnection {
    const { proof = 'valid', replicate = true, version = PROTOCOL_VERSION, capability = 'own' } = options
    const [host, port] = splitHostPort(address)
    const socket = connect({ host, port })
    socket.on('error', () => undefined)
    const stream = new NoiseSecretStream(true, socket, { keyPair: this.keyPair })
    stream.on('error', () => undefined)
    let channel: any = null
    let membersMessage: any = null
    let haveMessage: any = null
    let openedResolve!: () => void
    let isClosed = false
    const opened = new Promise<void>((resolve) => (openedResolve = resolve))
    const closed = new Promise<void>((resolve) => stream.once('close', () => {
      isClosed = true
      resolve()
    }))
    const conn: HostileConnection = {
      socket,
      stream,
      sentProof: null,
      handshakeHash: null,
      membersReceived: [],
      opened,
      closed,
      isClosed: () => isClosed,
      sendRaw: (type, bytes) => {
        // protomux frame: channel id, message type, payload (see protomux's _encodeMessage)
        const state = { start: 0, end: 0, buffer: null as Buffer | null }
        c.uint.preencode(state, channel._localId)
        c.uint.preencode(state, type)
        const head = state.end
        state.buffer = Buffer.allocUnsafe(head + bytes.length)
        c.uint.encode(state, channel._localId)
        c.uint.encode(state, type)
        bytes.copy(state.buffer, head)
        channel._mux.stream.write(state.buffer)
      },
      sendMembers: (members) => membersMessage.send(members),
      sendHave: (have) => haveMessage.send(have),
      destroy: () => stream.destroy()
    }
    stream.on('open', () => {
      // like an agent: keep-alives, or the victim drops us as idle after 20 s
      stream.setKeepAlive(5_000)
      conn.handshakeHash = Buffer.from(stream.handshakeHash)
      const mux = Protomux.from(stream)
      channel = mux.createChannel({
        protocol: PROTOCOL,
        handshake: helloEncoding,
        onopen: () => openedResolve()
      })
      membersMessage = channel.addMessage({ encoding: membersEncoding, onmessage: (m: Member[]) => (conn.membersReceived = m) })
      haveMessage = channel.addMessage({ encoding: haveListEncoding })
      // messages are numbered in the order they are added: the content ones come before the index ones
      const answer = options.content
      let dataMessage: any = null
      let endMessage: any = null
      channel.addMessage({ encoding: contentRequestEncoding, onmessage: (r: ContentRequest) => answer?.(r, {
        data: (bytes) => {
          for (let at = 0; at < bytes.length; at += 256 * 1024) dataMessage.send({ id: r.id, data: bytes.subarray(at, at + 256 * 1024) })
        },
        end: (status) => endMessage.send({ id: r.id, status })
      }) })
      dataMessage = channel.addMessage({ encoding: contentDataEncoding })
      endMessage = channel.addMessage({ encoding: contentEndEncoding })
      const index = options.index
      let blocksMessage: any = null
      channel.addMessage({ encoding: indexRequestEncoding, onmessage: (r: IndexRequest) => index?.(r, (status, blocks) => blocksMessage.send({ id: r.id, status, blocks })) })
      blocksMessage = channel.addMessage({ encoding: indexBlocksEncoding })
      let sent: Buffer
      if (proof === 'valid') sent = authProof(this.keys.authKey, conn.handshakeHash, true)
      else if (proof === 'random') sent = randomBytes(32)
      else if (proof === 'none') sent = Buffer.alloc(32)
      else sent = proof.replay
      conn.sentProof = sent
      const hash = conn.handshakeHash
      channel.open({
        version,
        proof: sent,
        clockMs: Date.now(),
        capability: capability === 'own' ? ownCapability(this.keys, hash, true) : capability(hash),
        features: (answer ? FEATURE_CONTENT : 0) | (index ? FEATURE_INDEX : 0)
      })
      if (replicate) this.store.replicate(stream)
      const members = options.members === undefined ? [this.ownMember()].filter((m): m is Member => m !== null) : options.members
      if (members && members.length > 0) membersMessage.send(members)
      haveMessage.send([{ driveKey: this.drive.key, length: this.drive.core.length }])
    })
    this.connections.push(conn)
    return conn
  }

  /** Waits until the victim replicated our drive's index up to its current length. */
  async waitUploaded(timeoutMs = 30_000): Promise<void> {
    const core = this.drive.core
    const want = core.length
    await until(() => core.peers.some((p: { remoteContiguousLength: number }) => p.remoteContiguousLength >= want), {
      timeoutMs,
      message: `the victim has our drive index up to ${want}`
    })
  }

  async close(): Promise<void> {
    for (const conn of this.connections) conn.destroy()
    await this.drive.close().catch(() => undefined)
    await this.store.close().catch(() => undefined)
    await fs.rm(this.dir, { recursive: true, force: true })
  }
}

function splitHostPort(address: string): [string, number] {
  const colon = address.lastIndexOf(':')
  return [address.slice(0, colon), Number(address.slice(colon + 1))]
}

/** Opens a bare TCP connection that sends `bytes` (or nothing) and never completes a handshake. */
export function openRawSocket(address: string, bytes: Buffer | null = null): Socket {
  const [host, port] = splitHostPort(address)
  const socket = connect({ host, port })
  socket.on('error', () => undefined)
  if (bytes) socket.once('connect', () => socket.write(bytes))
  return socket
}

/** compact-encoding's varint, for hand-made messages */
export function encodeUint(n: number): Buffer {
  const state = { start: 0, end: 0, buffer: null as Buffer | null }
  c.uint.preencode(state, n)
  state.buffer = Buffer.alloc(state.end)
  c.uint.encode(state, n)
  return state.buffer
}

/** Resident set size of a process in bytes, from /proc (`VmHWM`: its peak so far). */
export async function rssBytes(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): Promise<number> {
  const text = await fs.readFile(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text)
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/** CPU time (user + system) a process used so far, in ms, from /proc/<pid>/stat. */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces) in parentheses; utime and stime are 14 and 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / CLOCK_TICKS_PER_S
}

/** USER_HZ: clock ticks per second in /proc (100 on every Linux build we run on) */
const CLOCK_TICKS_PER_S = 100
