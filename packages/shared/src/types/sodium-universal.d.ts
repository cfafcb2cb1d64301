// The parts of sodium-universal this package uses (it ships no types).
declare module 'sodium-universal' {
  type Bytes = Uint8Array
  const sodium: {
    crypto_generichash_BYTES: number
    crypto_generichash_batch(out: Bytes, inputs: Bytes[], key?: Bytes): void
    crypto_generichash(out: Bytes, input: Bytes, key?: Bytes): void
    crypto_sign_PUBLICKEYBYTES: number
    crypto_sign_SECRETKEYBYTES: number
    crypto_sign_BYTES: number
    crypto_sign_seed_keypair(publicKey: Bytes, secretKey: Bytes, seed: Bytes): void
    crypto_sign_detached(signature: Bytes, message: Bytes, secretKey: Bytes): void
    crypto_sign_verify_detached(signature: Bytes, message: Bytes, publicKey: Bytes): boolean
    crypto_secretbox_NONCEBYTES: number
    crypto_secretbox_MACBYTES: number
    crypto_secretbox_KEYBYTES: number
    crypto_secretbox_easy(out: Bytes, message: Bytes, nonce: Bytes, key: Bytes): void
    crypto_secretbox_open_easy(out: Bytes, cipher: Bytes, nonce: Bytes, key: Bytes): boolean
    randombytes_buf(out: Bytes): void
    sodium_memcmp(a: Bytes, b: Bytes): boolean
  }
  export default sodium
}
