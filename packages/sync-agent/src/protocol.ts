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
}

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
  },
  encode(s, v) {
    c.uint.encode(s, v.version)
    c.fixed32.encode(s, v.proof)
    if (v.clockMs == null) return
    c.uint.encode(s, v.clockMs)
    if (!v.capability) return
    c.uint.encode(s, v.capability.kind)
    c.buffer.encode(s, v.capability.proof)
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
    return { version, proof, clockMs, capability: { kind: kind as Capability['kind'], proof: Buffer.from(capabilityProof) } }
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

/** Proof that the sender holds the folder's auth key, bound to this Noise handshake and role. */
export function authProof(authKey: Buffer, handshakeHash: Buffer, isInitiator: boolean): Buffer {
  return mac(authKey, Buffer.concat([handshakeHash, Buffer.from(isInitiator ? 'initiator' : 'responder')]))
}
