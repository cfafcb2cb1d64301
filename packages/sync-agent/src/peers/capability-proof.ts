import { equalBytes, mac, sign, verify, type FolderKeys } from '@sync-agent/shared'
import { CAPABILITY_READ, CAPABILITY_WRITE, type Capability } from '../protocol.js'

/**
 * What a peer proves it can do, beyond holding a secret of the folder: read (it holds the read
 * key: a read-only or read-write secret) or write (it holds the writer key: read-write). The
 * proof is bound to the Noise handshake and to the sender's side of it, like the membership
 * proof, so it cannot be replayed on another connection or reflected back.
 *
 *   write: Ed25519 signature by the folder's writer key: every peer can check it (every
 *          secret holds the writer public key)
 *   read:  MAC with the read-auth key: only peers that can read can check it; an encrypted
 *          peer cannot, so it shows such a peer as read-only, unverified
 *   none:  the peer proved only the folder secret: encrypted (blind)
 *
 * The role grants nothing: writes are admitted only through signed members (member.ts).
 * It is what `status` shows.
 */
export type PeerRole = 'rw' | 'ro' | 'en'

export type CheckedCapability = { role: PeerRole; verified: boolean } | { error: string }

function statement(kind: number, handshakeHash: Uint8Array, senderIsInitiator: boolean): Buffer {
  return Buffer.concat([
    Buffer.from('sync-agent/v1/capability\0'),
    Buffer.from([kind]),
    handshakeHash,
    Buffer.from(senderIsInitiator ? 'initiator' : 'responder')
  ])
}

/** The strongest capability our secret lets us prove on this connection (null: encrypted). */
export function ownCapability(keys: FolderKeys, handshakeHash: Uint8Array, isInitiator: boolean): Capability | null {
  if (keys.writerKeyPair) {
    return { kind: CAPABILITY_WRITE, proof: sign(statement(CAPABILITY_WRITE, handshakeHash, isInitiator), keys.writerKeyPair.secretKey) }
  }
  if (keys.readAuthKey) {
    return { kind: CAPABILITY_READ, proof: mac(keys.readAuthKey, statement(CAPABILITY_READ, handshakeHash, isInitiator)) }
  }
  return null
}

/** Checks the capability a peer sent on this connection; a proof that fails is an error (E_AUTH). */
export function checkCapability(
  keys: FolderKeys,
  handshakeHash: Uint8Array,
  senderIsInitiator: boolean,
  capability: Capability | null | undefined
): CheckedCapability {
  if (!capability) return { role: 'en', verified: true }
  const message = statement(capability.kind, handshakeHash, senderIsInitiator)
  if (capability.kind === CAPABILITY_WRITE) {
    return verify(capability.proof, message, keys.writerPublicKey)
      ? { role: 'rw', verified: true }
      : { error: 'the peer\'s read-write proof is not signed by the folder\'s writer key' }
  }
  if (!keys.readAuthKey) return { role: 'ro', verified: false }
  return equalBytes(mac(keys.readAuthKey, message), capability.proof)
    ? { role: 'ro', verified: true }
    : { error: 'the peer\'s read-only proof does not match the folder\'s read key' }
}
