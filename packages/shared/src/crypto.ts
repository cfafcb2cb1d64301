import sodium from 'sodium-universal'

/**
 * Small, typed wrappers around libsodium. Every derivation names its purpose (domain
 * separation), so one key never serves two jobs.
 */
const PREFIX = 'sync-agent/v1/'

function toBytes(part: Uint8Array | string): Uint8Array {
  return typeof part === 'string' ? Buffer.from(part, 'utf8') : part
}

/** BLAKE2b-256 over a length-prefixed label and the parts: `H(label, parts…)`. */
export function hashFor(label: string, ...parts: Array<Uint8Array | string>): Buffer {
  const labelBytes = Buffer.from(PREFIX + label, 'utf8')
  const header = Buffer.alloc(2)
  header.writeUInt16BE(labelBytes.length)
  const out = Buffer.alloc(32)
  const inputs: Uint8Array[] = [header, labelBytes]
  for (const part of parts) {
    const bytes = toBytes(part)
    const len = Buffer.alloc(4)
    len.writeUInt32BE(bytes.length)
    inputs.push(len, bytes)
  }
  sodium.crypto_generichash_batch(out, inputs)
  return out
}

/** Keyed BLAKE2b-256 (a MAC) of a message. */
export function mac(key: Uint8Array, message: Uint8Array): Buffer {
  const out = Buffer.alloc(32)
  sodium.crypto_generichash(out, message, key)
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium.sodium_memcmp(a, b)
}

export function randomBytes(length: number): Buffer {
  const out = Buffer.alloc(length)
  sodium.randombytes_buf(out)
  return out
}

export interface SigningKeyPair {
  publicKey: Buffer
  secretKey: Buffer
}

export function signingKeyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES)
  const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
  return { publicKey, secretKey }
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Buffer {
  const out = Buffer.alloc(sodium.crypto_sign_BYTES)
  sodium.crypto_sign_detached(out, message, secretKey)
  return out
}

export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== sodium.crypto_sign_BYTES || publicKey.length !== sodium.crypto_sign_PUBLICKEYBYTES) return false
  return sodium.crypto_sign_verify_detached(signature, message, publicKey)
}

/** Authenticated encryption (XSalsa20-Poly1305) with a random nonce stored in front. */
export function seal(key: Uint8Array, message: Uint8Array): Buffer {
  const nonce = randomBytes(sodium.crypto_secretbox_NONCEBYTES)
  const out = Buffer.alloc(nonce.length + message.length + sodium.crypto_secretbox_MACBYTES)
  nonce.copy(out, 0)
  sodium.crypto_secretbox_easy(out.subarray(nonce.length), message, nonce, key)
  return out
}

/** Returns null when the box was tampered with or the key is wrong. */
export function open(key: Uint8Array, box: Uint8Array): Buffer | null {
  const n = sodium.crypto_secretbox_NONCEBYTES
  if (box.length < n + sodium.crypto_secretbox_MACBYTES) return null
  const out = Buffer.alloc(box.length - n - sodium.crypto_secretbox_MACBYTES)
  const ok = sodium.crypto_secretbox_open_easy(out, box.subarray(n), box.subarray(0, n), key)
  return ok ? out : null
}
