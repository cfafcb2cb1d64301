import { base32Decode, base32Encode } from './base32.js'
import { hashFor, randomBytes, signingKeyPairFromSeed, type SigningKeyPair } from './crypto.js'
import { SyncError } from './errors.js'

/**
 * Folder secrets, BitTorrent-Sync style. The text form is
 *   `sa1` + kind + `-` + base32(payload ‖ checksum[4])
 * where kind is `rw` (read-write), `ro` (read-only) or `en` (encrypted, blind).
 * The checksum covers the kind, so a typo or an edited prefix is caught.
 *
 * Derivations are one-way: rw → ro → en. Everything an agent needs is derived here:
 *   - authKey: proves over a Noise handshake that a peer holds *some* secret of this folder
 *   - readAuthKey: proves that a peer holds the read key (a read-only or read-write secret),
 *     so its role shows in status; only rw and ro holders can make or check that proof
 *   - topic: discovery topic (never reveals the secret)
 *   - contentKey: encrypts drives (file names and contents) at rest and in replication
 *   - writer signing key pair: only rw holders can sign a writer's drive key into the folder
 */
export type SecretKind = 'rw' | 'ro' | 'en'

const VERSION_PREFIX = 'sa1'
const CHECKSUM_BYTES = 4
const SEED_BYTES = 32
const PUBLIC_KEY_BYTES = 32

export interface ParsedSecret {
  kind: SecretKind
  /** the raw payload bytes: rw = seed; ro = read key ‖ writer public key; en = blind key ‖ writer public key */
  payload: Buffer
}

export interface FolderKeys {
  kind: SecretKind
  authKey: Buffer
  /** null for encrypted (blind) peers: they cannot prove, nor check, that a peer can read */
  readAuthKey: Buffer | null
  topic: Buffer
  /** null for encrypted (blind) peers */
  contentKey: Buffer | null
  /** Ed25519 public key that signs writers; every kind knows it */
  writerPublicKey: Buffer
  /** only rw */
  writerKeyPair: SigningKeyPair | null
  /** A short, non-secret fingerprint of the folder for logs and status. */
  folderId: string
}

function checksum(kind: SecretKind, payload: Uint8Array): Buffer {
  return hashFor('secret-checksum', kind, payload).subarray(0, CHECKSUM_BYTES)
}

export function formatSecret(secret: ParsedSecret): string {
  const body = Buffer.concat([secret.payload, checksum(secret.kind, secret.payload)])
  return `${VERSION_PREFIX}${secret.kind}-${base32Encode(body)}`
}

export function newSecret(): string {
  return formatSecret({ kind: 'rw', payload: randomBytes(SEED_BYTES) })
}

function expectedPayloadBytes(kind: SecretKind): number {
  return kind === 'rw' ? SEED_BYTES : SEED_BYTES + PUBLIC_KEY_BYTES
}

/** Parses the text form; throws SyncError('E_SECRET') naming what is wrong. */
export function parseSecret(text: string): ParsedSecret {
  const trimmed = text.trim()
  if (trimmed.length === 0) throw new SyncError('E_SECRET', 'the secret is empty')
  const match = /^([a-z0-9]{3})([a-z]{2})-([a-z2-7]+)$/i.exec(trimmed)
  if (!match) {
    throw new SyncError('E_SECRET', `the secret is malformed: expected "${VERSION_PREFIX}rw-…", "${VERSION_PREFIX}ro-…" or "${VERSION_PREFIX}en-…" (make one with "sync-agent secret new")`)
  }
  const [, version, kindText, body] = match as unknown as [string, string, string, string]
  if (version.toLowerCase() !== VERSION_PREFIX) {
    throw new SyncError('E_SECRET', `the secret has an unknown version prefix "${version}" (expected "${VERSION_PREFIX}")`)
  }
  const kind = kindText.toLowerCase()
  if (kind !== 'rw' && kind !== 'ro' && kind !== 'en') {
    throw new SyncError('E_SECRET', `the secret has an unknown kind "${kindText}" (expected rw, ro or en)`)
  }
  const bytes = base32Decode(body)
  const want = expectedPayloadBytes(kind)
  if (!bytes || bytes.length !== want + CHECKSUM_BYTES) {
    throw new SyncError('E_SECRET', `the secret has the wrong length for kind "${kind}" (was it cut or pasted twice?)`)
  }
  const payload = Buffer.from(bytes.subarray(0, want))
  const sum = Buffer.from(bytes.subarray(want))
  if (!checksum(kind, payload).equals(sum)) {
    throw new SyncError('E_SECRET', 'the secret checksum does not match: it has a typo')
  }
  return { kind, payload }
}

function writerKeyPairOf(seed: Uint8Array): SigningKeyPair {
  return signingKeyPairFromSeed(hashFor('writer-signing-seed', seed))
}

/** rw → ro. One-way: the ro secret does not reveal the rw seed. */
export function deriveReadOnly(secret: ParsedSecret): ParsedSecret {
  if (secret.kind !== 'rw') throw new SyncError('E_SECRET', `a read-only secret is made from a read-write secret, not from "${secret.kind}"`)
  const readKey = hashFor('read-key', secret.payload)
  return { kind: 'ro', payload: Buffer.concat([readKey, writerKeyPairOf(secret.payload).publicKey]) }
}

/** rw or ro → en (blind). One-way. */
export function deriveEncrypted(secret: ParsedSecret): ParsedSecret {
  const ro = secret.kind === 'rw' ? deriveReadOnly(secret) : secret
  if (ro.kind !== 'ro') throw new SyncError('E_SECRET', 'an encrypted secret is made from a read-write or read-only secret')
  const readKey = ro.payload.subarray(0, SEED_BYTES)
  const writerPublicKey = ro.payload.subarray(SEED_BYTES)
  return { kind: 'en', payload: Buffer.concat([hashFor('blind-key', readKey), writerPublicKey]) }
}

/** Every key an agent needs, derived with domain separation. */
export function deriveFolderKeys(secret: ParsedSecret): FolderKeys {
  const writerKeyPair = secret.kind === 'rw' ? writerKeyPairOf(secret.payload) : null
  const ro = secret.kind === 'rw' ? deriveReadOnly(secret) : secret
  const en = ro.kind === 'en' ? ro : deriveEncrypted(ro)
  const blindKey = en.payload.subarray(0, SEED_BYTES)
  const writerPublicKey = Buffer.from(en.payload.subarray(SEED_BYTES))
  const readKey = ro.kind === 'ro' ? ro.payload.subarray(0, SEED_BYTES) : null
  const contentKey = readKey ? hashFor('content-key', readKey) : null
  const topic = hashFor('discovery-topic', blindKey)
  return {
    kind: secret.kind,
    authKey: hashFor('peer-auth', blindKey),
    readAuthKey: readKey ? hashFor('peer-read-auth', readKey) : null,
    topic,
    contentKey,
    writerPublicKey,
    writerKeyPair,
    folderId: base32Encode(hashFor('folder-id', blindKey).subarray(0, 5))
  }
}
