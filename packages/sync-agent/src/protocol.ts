import c from 'compact-encoding'
import type { Encoding } from 'protomux'
import { mac, SyncError } from '@sync-agent/shared'
import type { Member } from './replication/member.js'

/**
 * Our protomux channel, `sync-agent/v1`: message types and their encodings, nothing else.
 *
 *  open handshake  Hello   { version, proof, clockMs?, capability? }
 *                  proof = MAC(authKey, handshakeHash ‖ side): the sender holds a secret of the folder;
 *                  clockMs: the sender's wall clock (cluster-clock.ts);
 *                  capability: { kind: read | write, proof }: the sender can read (a MAC with the
 *                  read-auth key) or write (a signature by the folder's writer key), bound to this
 *                  handshake (peers/capability-proof.ts). Absent: an encrypted (blind) peer.
 *  message 0       Members [{ deviceKey, driveKey, signature }]   the writer list, with proofs
 *  message 1       Have    [{ driveKey, length }]                 how far the sender has each drive
 *  message 2       ContentRequest { id, path, hash, offset, length }  bytes of a file the sender
 *                  wants, named by the sha256 its signed entry gives (content/content-server.ts)
 *  message 3       ContentData    { id, data }                        some of those bytes, in order
 *  message 4       ContentEnd     { id, status }                      the answer is complete, or
 *                  why there is none (not here, busy, refused)
 *  message 5       IndexRequest   { id, driveKey, start, end }       raw blocks start..end-1 of a
 *                  member drive's index (replication/index-block-server.ts)
 *  message 6       IndexBlocks    { id, status, blocks }              some of them, from `start` on
 *                  (fewer than asked when they would not fit one message), or why there are none
 *  message 7       ContentRequest, urgent: served ahead of the sender's queued requests
 *  message 8       SumsRequest    { id, path, hash, blockSize }      the sha256 of each block of
 *                  a file (content/block-sums.ts), answered with ContentData and ContentEnd
 *                  under the same id: a changed file is then fetched as the blocks that differ
 *  features (hello, after capability): FEATURE_CONTENT = the sender answers content requests;
 *                  FEATURE_INDEX = it answers index requests; FEATURE_URGENT = urgent ones;
 *                  FEATURE_SUMS = block-sum requests
 *
 * Decoding is strict and bounded: a malformed message destroys the connection.
 */
export const PROTOCOL = 'sync-agent/v1'
export const PROTOCOL_VERSION = 1
export const MAX_LIST = 256

type State = Parameters<typeof c.uint.encode>[0]

export interface Hello {
  version: number
  proof: Buffer
  /** the sender's wall clock, ms since the epoch (absent from agents that predate it) */
  clockMs?: number | null
  /** what else the sender proves it can do (needs clockMs: the fields are positional) */
  capability?: Capability | null
  /** FEATURE_* bits (needs capability: the fields are positional) */
  features?: number
}

/** the sender serves file contents from its folder (messages 2–4) */
export const FEATURE_CONTENT = 1
/** the sender serves raw index blocks of the drives it holds (messages 5–6) */
export const FEATURE_INDEX = 2
/**
 * the sender takes urgent content requests (message 7: a file someone asks for now, GET
 * /files/) ahead of the ones it queued; a peer without it gets them as ordinary requests
 */
export const FEATURE_URGENT = 4
/**
 * the sender answers block-sum requests (message 8), so a file changed in part can be
 * fetched as the blocks that differ from the version here (content/delta-plan.ts)
 */
export const FEATURE_SUMS = 8

/** 1: the sender holds the read key (ro); 2: it holds the writer key (rw) */
export const CAPABILITY_READ = 1
export const CAPABILITY_WRITE = 2
const CAPABILITY_PROOF_BYTES: Record<number, number> = { [CAPABILITY_READ]: 32, [CAPABILITY_WRITE]: 64 }

export interface Capability {
  kind: typeof CAPABILITY_READ | typeof CAPABILITY_WRITE
  proof: Buffer
}

export interface Have {
  driveKey: Buffer
  length: number
}

/**
 * An encoding whose decode failures are SyncError('E_PEER_PROTOCOL') naming the message, so
 * the connection that sent it can be told apart from one that merely broke.
 */
function struct<T>(parts: { preencode(s: State, v: T): void; encode(s: State, v: T): void; decode(s: State): T }, name = 'message'): Encoding<T> {
  return {
    preencode: parts.preencode,
    encode: parts.encode,
    decode(s: State): T {
      try {
        return parts.decode(s)
      } catch (err) {
        if (err instanceof SyncError) throw err
        throw new SyncError('E_PEER_PROTOCOL', `malformed ${name}: ${(err as Error).message}`, { cause: err })
      }
    }
  } as unknown as Encoding<T>
}

export const helloEncoding = struct<Hello>({
  preencode(s, v) {
    c.uint.preencode(s, v.version)
    c.fixed32.preencode(s, v.proof)
    if (v.clockMs == null) return
    c.uint.preencode(s, v.clockMs)
    if (!v.capability) return
    c.uint.preencode(s, v.capability.kind)
    c.buffer.preencode(s, v.capability.proof)
    if (v.features) c.uint.preencode(s, v.features)
  },
  encode(s, v) {
    c.uint.encode(s, v.version)
    c.fixed32.encode(s, v.proof)
    if (v.clockMs == null) return
    c.uint.encode(s, v.clockMs)
    if (!v.capability) return
    c.uint.encode(s, v.capability.kind)
    c.buffer.encode(s, v.capability.proof)
    if (v.features) c.uint.encode(s, v.features)
  },
  decode(s) {
    const version = c.uint.decode(s)
    const proof = Buffer.from(c.fixed32.decode(s))
    // optional trailing fields: older agents end the message after the proof or the clock
    if (s.start >= s.end) return { version, proof }
    const clockMs = c.uint.decode(s)
    if (s.start >= s.end) return { version, proof, clockMs }
    const kind = c.uint.decode(s)
    const capabilityProof = c.buffer.decode(s)
    const want = CAPABILITY_PROOF_BYTES[kind]
    if (want === undefined) throw new SyncError('E_PEER_PROTOCOL', `malformed hello: unknown capability ${kind}`)
    if (!capabilityProof || capabilityProof.length !== want) {
      throw new SyncError('E_PEER_PROTOCOL', `malformed hello: a capability ${kind} proof of ${capabilityProof?.length ?? 0} bytes (expected ${want})`)
    }
    const capability = { kind: kind as Capability['kind'], proof: Buffer.from(capabilityProof) }
    if (s.start >= s.end) return { version, proof, clockMs, capability }
    // later fields (from newer agents) are ignored
    return { version, proof, clockMs, capability, features: c.uint.decode(s) }
  }
}, 'hello')

const memberEncoding = {
  preencode(s: State, m: Member) {
    c.fixed32.preencode(s, m.deviceKey)
    c.fixed32.preencode(s, m.driveKey)
    c.fixed64.preencode(s, m.signature)
  },
  encode(s: State, m: Member) {
    c.fixed32.encode(s, m.deviceKey)
    c.fixed32.encode(s, m.driveKey)
    c.fixed64.encode(s, m.signature)
  },
  decode(s: State): Member {
    return {
      deviceKey: Buffer.from(c.fixed32.decode(s)),
      driveKey: Buffer.from(c.fixed32.decode(s)),
      signature: Buffer.from(c.fixed64.decode(s))
    }
  }
}

const haveItemEncoding = {
  preencode(s: State, h: Have) {
    c.fixed32.preencode(s, h.driveKey)
    c.uint.preencode(s, h.length)
  },
  encode(s: State, h: Have) {
    c.fixed32.encode(s, h.driveKey)
    c.uint.encode(s, h.length)
  },
  decode(s: State): Have {
    return { driveKey: Buffer.from(c.fixed32.decode(s)), length: c.uint.decode(s) }
  }
}

function boundedList<T>(item: { preencode(s: State, v: T): void; encode(s: State, v: T): void; decode(s: State): T }, name: string): Encoding<T[]> {
  return struct<T[]>({
    preencode(s, list) {
      c.uint.preencode(s, list.length)
      for (const v of list) item.preencode(s, v)
    },
    encode(s, list) {
      c.uint.encode(s, list.length)
      for (const v of list) item.encode(s, v)
    },
    decode(s) {
      const n = c.uint.decode(s)
      if (n > MAX_LIST) throw new SyncError('E_PEER_PROTOCOL', `malformed ${name}: ${n} items exceed the limit of ${MAX_LIST}`)
      const out: T[] = []
      for (let i = 0; i < n; i++) out.push(item.decode(s))
      return out
    }
  }, name)
}

export const membersEncoding = boundedList(memberEncoding, 'member list')
export const haveListEncoding = boundedList(haveItemEncoding, 'have list')

/** the most one content request may ask for, and one data message may carry */
export const MAX_CONTENT_WINDOW = 4 * 1024 * 1024
export const MAX_CONTENT_CHUNK = 1024 * 1024
const MAX_CONTENT_PATH_BYTES = 4096

export interface ContentRequest {
  id: number
  /** folder-relative path */
  path: string
  /** sha256 of the whole file, as the version's signed entry names it */
  hash: Buffer
  offset: number
  length: number
}

export interface ContentData {
  id: number
  data: Buffer
}

/** the bytes asked for were all sent */
export const CONTENT_DONE = 0
/** no file with that content at that path here (changed, deleted, never had it) */
export const CONTENT_NOT_HERE = 1
/** too many requests of this peer waiting: ask again later or elsewhere */
export const CONTENT_BUSY = 2
/** this peer may not read contents (an encrypted peer) */
export const CONTENT_REFUSED = 3

export interface ContentEnd {
  id: number
  status: number
}

/** one compact-encoding codec (c.uint, c.string, ...) */
interface FieldCodec {
  preencode(s: State, v: unknown): void
  encode(s: State, v: unknown): void
  decode(s: State): unknown
}

/**
 * A message of fields in a fixed order: encoded as laid out, decoded and then handed to
 * `check`, which validates (throwing SyncError) and returns the value.
 */
function fields<T>(layout: ReadonlyArray<readonly [keyof T & string, FieldCodec]>, check: (v: T) => T, name: string): Encoding<T> {
  return struct<T>({
    preencode(s, v) {
      for (const [key, codec] of layout) codec.preencode(s, v[key])
    },
    encode(s, v) {
      for (const [key, codec] of layout) codec.encode(s, v[key])
    },
    decode(s) {
      const v: Record<string, unknown> = {}
      for (const [key, codec] of layout) v[key] = codec.decode(s)
      return check(v as T)
    }
  }, name)
}

function asBuffer(bytes: Uint8Array): Buffer {
  // no copy: a view of the message (which holds little else)
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export const contentRequestEncoding = fields<ContentRequest>(
  [['id', c.uint], ['path', c.string], ['hash', c.fixed32], ['offset', c.uint], ['length', c.uint]],
  (v) => {
    const pathBytes = Buffer.byteLength(v.path)
    if (pathBytes > MAX_CONTENT_PATH_BYTES) throw new SyncError('E_PEER_PROTOCOL', `malformed content request: a path of ${pathBytes} bytes`)
    if (v.length === 0 || v.length > MAX_CONTENT_WINDOW) throw new SyncError('E_PEER_PROTOCOL', `malformed content request: ${v.length} bytes asked for at once (1 to ${MAX_CONTENT_WINDOW})`)
    if (!Number.isSafeInteger(v.offset + v.length)) throw new SyncError('E_PEER_PROTOCOL', 'malformed content request: offset out of range')
    return { ...v, hash: asBuffer(v.hash) }
  },
  'content request'
)

export const contentDataEncoding = fields<ContentData>(
  [['id', c.uint], ['data', c.buffer]],
  (v) => {
    const size = v.data?.length ?? 0
    if (size === 0 || size > MAX_CONTENT_CHUNK) throw new SyncError('E_PEER_PROTOCOL', `malformed content data: a chunk of ${size} bytes (1 to ${MAX_CONTENT_CHUNK})`)
    return { id: v.id, data: asBuffer(v.data) }
  },
  'content data'
)

export const contentEndEncoding = fields<ContentEnd>(
  [['id', c.uint], ['status', c.uint]],
  (v) => {
    if (v.status > CONTENT_REFUSED) throw new SyncError('E_PEER_PROTOCOL', `malformed content end: unknown status ${v.status}`)
    return v
  },
  'content end'
)

/** the sizes a block-sum request may name: powers of two from 128 KiB to 16 MiB */
export const MIN_SUM_BLOCK = 128 * 1024
export const MAX_SUM_BLOCK = 16 * 1024 * 1024
/** a block's sum: its sha256 */
export const SUM_BYTES = 32
/** the most sums one answer holds (2 MiB of them; a file of 2 GiB has 2,048 blocks of 1 MiB) */
export const MAX_SUMS = 65_536

export interface SumsRequest {
  id: number
  /** folder-relative path */
  path: string
  /** sha256 of the whole file, as the version's signed entry names it */
  hash: Buffer
  blockSize: number
}

export const sumsRequestEncoding = fields<SumsRequest>(
  [['id', c.uint], ['path', c.string], ['hash', c.fixed32], ['blockSize', c.uint]],
  (v) => {
    const pathBytes = Buffer.byteLength(v.path)
    if (pathBytes > MAX_CONTENT_PATH_BYTES) throw new SyncError('E_PEER_PROTOCOL', `malformed sums request: a path of ${pathBytes} bytes`)
    if (v.blockSize < MIN_SUM_BLOCK || v.blockSize > MAX_SUM_BLOCK || (v.blockSize & (v.blockSize - 1)) !== 0) {
      throw new SyncError('E_PEER_PROTOCOL', `malformed sums request: blocks of ${v.blockSize} bytes (a power of two from ${MIN_SUM_BLOCK} to ${MAX_SUM_BLOCK})`)
    }
    return { ...v, hash: asBuffer(v.hash) }
  },
  'sums request'
)

/** the most blocks one index request may ask for */
export const MAX_INDEX_BLOCKS = 4096
/** the most bytes of blocks one answer may carry (and one block may be) */
export const MAX_INDEX_ANSWER_BYTES = 4 * 1024 * 1024

export interface IndexRequest {
  id: number
  driveKey: Buffer
  /** blocks start..end-1 */
  start: number
  end: number
}

/** status: CONTENT_DONE (blocks from the request's start on), _NOT_HERE, _BUSY or _REFUSED */
export interface IndexBlocks {
  id: number
  status: number
  blocks: Buffer[]
}

export const indexRequestEncoding = fields<IndexRequest>(
  [['id', c.uint], ['driveKey', c.fixed32], ['start', c.uint], ['end', c.uint]],
  (v) => {
    if (v.end <= v.start || v.end - v.start > MAX_INDEX_BLOCKS) throw new SyncError('E_PEER_PROTOCOL', `malformed index request: blocks ${v.start} to ${v.end} (1 to ${MAX_INDEX_BLOCKS} at once)`)
    if (!Number.isSafeInteger(v.end)) throw new SyncError('E_PEER_PROTOCOL', 'malformed index request: block out of range')
    return { ...v, driveKey: asBuffer(v.driveKey) }
  },
  'index request'
)

const blockListCodec: FieldCodec = {
  preencode(s, v) {
    const blocks = v as Buffer[]
    c.uint.preencode(s, blocks.length)
    for (const b of blocks) c.buffer.preencode(s, b)
  },
  encode(s, v) {
    const blocks = v as Buffer[]
    c.uint.encode(s, blocks.length)
    for (const b of blocks) c.buffer.encode(s, b)
  },
  decode(s) {
    const n = c.uint.decode(s)
    if (n > MAX_INDEX_BLOCKS) throw new SyncError('E_PEER_PROTOCOL', `malformed index blocks: ${n} blocks (at most ${MAX_INDEX_BLOCKS})`)
    const out: Buffer[] = []
    let bytes = 0
    for (let i = 0; i < n; i++) {
      const b = c.buffer.decode(s)
      if (!b || b.length === 0) throw new SyncError('E_PEER_PROTOCOL', 'malformed index blocks: an empty block')
      bytes += b.length
      if (bytes > MAX_INDEX_ANSWER_BYTES) throw new SyncError('E_PEER_PROTOCOL', `malformed index blocks: more than ${MAX_INDEX_ANSWER_BYTES} bytes`)
      out.push(asBuffer(b))
    }
    return out
  }
}

export const indexBlocksEncoding = fields<IndexBlocks>(
  [['id', c.uint], ['status', c.uint], ['blocks', blockListCodec]],
  (v) => {
    if (v.status > CONTENT_REFUSED) throw new SyncError('E_PEER_PROTOCOL', `malformed index blocks: unknown status ${v.status}`)
    if ((v.status === CONTENT_DONE) !== (v.blocks.length > 0)) throw new SyncError('E_PEER_PROTOCOL', `malformed index blocks: status ${v.status} with ${v.blocks.length} blocks`)
    return v
  },
  'index blocks'
)

/** Proof that the sender holds the folder's auth key, bound to this Noise handshake and role. */
export function authProof(authKey: Buffer, handshakeHash: Buffer, isInitiator: boolean): Buffer {
  return mac(authKey, Buffer.concat([handshakeHash, Buffer.from(isInitiator ? 'initiator' : 'responder')]))
}
