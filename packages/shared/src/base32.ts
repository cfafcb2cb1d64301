/** RFC 4648 base32 without padding, lowercase on output, case-insensitive on input. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

export function base32Encode(bytes: Uint8Array): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return out
}

/** Returns null on any character outside the alphabet. */
export function base32Decode(text: string): Uint8Array | null {
  const clean = text.toLowerCase()
  const out = new Uint8Array(Math.floor((clean.length * 5) / 8))
  let bits = 0
  let value = 0
  let index = 0
  for (const ch of clean) {
    const v = ALPHABET.indexOf(ch)
    if (v === -1) return null
    value = ((value << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      out[index++] = (value >>> (bits - 8)) & 255
      bits -= 8
    }
  }
  // canonical form only: leftover bits must be padding zeros, and fewer than one character
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return null
  return out
}
