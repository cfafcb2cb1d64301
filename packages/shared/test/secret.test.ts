import { describe, expect, it } from 'vitest'
import { SyncError } from '../src/errors.js'
import {
  deriveEncrypted,
  deriveFolderKeys,
  deriveReadOnly,
  formatSecret,
  newSecret,
  parseSecret,
  type ParsedSecret
} from '../src/secret.js'

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

/** A fixed rw secret, so failures are reproducible. */
const RW: ParsedSecret = { kind: 'rw', payload: Buffer.alloc(32, 7) }
const RW_TEXT = formatSecret(RW)
const RO_TEXT = formatSecret(deriveReadOnly(RW))
const EN_TEXT = formatSecret(deriveEncrypted(RW))

function secretError(text: string): SyncError {
  try {
    parseSecret(text)
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError)
    expect((err as SyncError).code).toBe('E_SECRET')
    return err as SyncError
  }
  throw new Error(`parseSecret accepted ${JSON.stringify(text)}`)
}

/** Replaces the character at `index` with a different base32 letter. */
function typoAt(text: string, index: number, shift = 1): string {
  const ch = text[index] as string
  const next = BASE32[(BASE32.indexOf(ch.toLowerCase()) + shift) % 32] as string
  return text.slice(0, index) + next + text.slice(index + 1)
}

describe('secret text form', () => {
  it.each([
    ['rw', 'sa1rw-'],
    ['ro', 'sa1ro-'],
    ['en', 'sa1en-']
  ] as const)('a %s secret starts with %s', (kind, prefix) => {
    const text = { rw: RW_TEXT, ro: RO_TEXT, en: EN_TEXT }[kind]
    expect(text.startsWith(prefix)).toBe(true)
    expect(parseSecret(text).kind).toBe(kind)
  })

  it('newSecret makes a fresh rw secret that parses and formats back to itself', () => {
    const a = newSecret()
    const b = newSecret()
    expect(a).not.toBe(b)
    const parsed = parseSecret(a)
    expect(parsed.kind).toBe('rw')
    expect(parsed.payload).toHaveLength(32)
    expect(formatSecret(parsed)).toBe(a)
  })

  it.each([
    ['rw', RW_TEXT],
    ['ro', RO_TEXT],
    ['en', EN_TEXT]
  ])('an %s secret round-trips through parse and format', (_kind, text) => {
    expect(formatSecret(parseSecret(text))).toBe(text)
  })

  it('trims surrounding whitespace', () => {
    expect(parseSecret(`  \t${RW_TEXT}\n`).payload.equals(RW.payload)).toBe(true)
  })

  it('is case-insensitive', () => {
    expect(parseSecret(RW_TEXT.toUpperCase()).payload.equals(RW.payload)).toBe(true)
    expect(parseSecret(RO_TEXT.toUpperCase()).kind).toBe('ro')
  })
})

describe('parseSecret rejects', () => {
  const body = RW_TEXT.slice('sa1rw-'.length)

  it.each([
    ['empty', '', /empty/],
    ['only whitespace', '   ', /empty/],
    ['wrong version prefix', 'sa2rw-' + body, /version prefix/],
    ['unknown kind', 'sa1xx-' + body, /unknown kind/],
    ['no dash', 'sa1rw' + body, /malformed/],
    ['a character outside base32', 'sa1rw-' + body.slice(0, -1) + '1', /malformed/],
    ['truncated by one character', RW_TEXT.slice(0, -1), /wrong length/],
    ['truncated to half', RW_TEXT.slice(0, 30), /wrong length/],
    ['the body pasted twice', RW_TEXT + body, /wrong length/],
    ['the whole secret pasted twice', RW_TEXT + RW_TEXT, /malformed/],
    ['an rw body labelled ro', 'sa1ro-' + body, /wrong length/],
    ['an ro body labelled en (same length, checksum covers the kind)', 'sa1en-' + RO_TEXT.slice(6), /checksum/],
    ['an en body labelled ro', 'sa1ro-' + EN_TEXT.slice(6), /checksum/]
  ])('%s', (_name, text, message) => {
    expect(secretError(text).message).toMatch(message)
  })

  it.each([
    ['rw', RW_TEXT],
    ['ro', RO_TEXT],
    ['en', EN_TEXT]
  ])('a one-character typo at any body position of an %s secret (but the last) fails the checksum', (_kind, text) => {
    // the last character also carries unused padding bits: see the next test
    for (let i = 6; i < text.length - 1; i++) {
      for (const shift of [1, 16]) {
        expect(secretError(typoAt(text, i, shift)).message, `typo at ${i}`).toMatch(/checksum/)
      }
    }
  })

  it.each([
    ['rw', RW_TEXT],
    ['ro', RO_TEXT],
    ['en', EN_TEXT]
  ])('every one-character typo in the last character of an %s secret is rejected', (_kind, text) => {
    const last = text.length - 1
    for (let shift = 1; shift < 32; shift++) {
      secretError(typoAt(text, last, shift))
    }
  })
})

describe('derivations', () => {
  it('are deterministic', () => {
    expect(formatSecret(deriveReadOnly(RW))).toBe(RO_TEXT)
    expect(formatSecret(deriveEncrypted(RW))).toBe(EN_TEXT)
    const a = deriveFolderKeys(RW)
    const b = deriveFolderKeys(parseSecret(RW_TEXT))
    expect(a.authKey.equals(b.authKey)).toBe(true)
    expect(a.topic.equals(b.topic)).toBe(true)
    expect(a.folderId).toBe(b.folderId)
  })

  it('differ between folders', () => {
    const other = deriveFolderKeys({ kind: 'rw', payload: Buffer.alloc(32, 8) })
    const mine = deriveFolderKeys(RW)
    expect(other.topic.equals(mine.topic)).toBe(false)
    expect(other.authKey.equals(mine.authKey)).toBe(false)
    expect(other.folderId).not.toBe(mine.folderId)
  })

  it('are one-way: the ro and en secrets do not contain the rw seed', () => {
    const ro = deriveReadOnly(RW)
    const en = deriveEncrypted(RW)
    expect(ro.payload.includes(RW.payload)).toBe(false)
    expect(en.payload.includes(RW.payload)).toBe(false)
    expect(en.payload.includes(ro.payload.subarray(0, 32))).toBe(false)
    expect(RO_TEXT.slice(6)).not.toContain(RW_TEXT.slice(6, 30))
  })

  it('en from rw equals en from the ro of that rw', () => {
    expect(deriveEncrypted(deriveReadOnly(RW)).payload.equals(deriveEncrypted(RW).payload)).toBe(true)
  })

  it.each([
    ['ro from ro', () => deriveReadOnly(deriveReadOnly(RW))],
    ['ro from en', () => deriveReadOnly(deriveEncrypted(RW))],
    ['en from en', () => deriveEncrypted(deriveEncrypted(RW))]
  ])('%s throws E_SECRET', (_name, derive) => {
    expect(derive).toThrow(SyncError)
    try {
      derive()
    } catch (err) {
      expect((err as SyncError).code).toBe('E_SECRET')
    }
  })
})

describe('deriveFolderKeys', () => {
  const rw = deriveFolderKeys(RW)
  const ro = deriveFolderKeys(deriveReadOnly(RW))
  const en = deriveFolderKeys(deriveEncrypted(RW))

  it('reports the kind', () => {
    expect([rw.kind, ro.kind, en.kind]).toEqual(['rw', 'ro', 'en'])
  })

  it.each(['authKey', 'topic', 'writerPublicKey'] as const)('rw, ro and en share %s', (field) => {
    expect(ro[field].equals(rw[field])).toBe(true)
    expect(en[field].equals(rw[field])).toBe(true)
  })

  it('rw, ro and en share the folderId', () => {
    expect(ro.folderId).toBe(rw.folderId)
    expect(en.folderId).toBe(rw.folderId)
  })

  it('rw and ro share the contentKey; en has none', () => {
    expect(rw.contentKey).not.toBeNull()
    expect(ro.contentKey?.equals(rw.contentKey as Buffer)).toBe(true)
    expect(en.contentKey).toBeNull()
  })

  it('rw and ro share the readAuthKey; en has none (it cannot prove or check that a peer reads)', () => {
    expect(rw.readAuthKey).not.toBeNull()
    expect(ro.readAuthKey?.equals(rw.readAuthKey as Buffer)).toBe(true)
    expect(en.readAuthKey).toBeNull()
  })

  it('only rw has the writer key pair, and it matches the shared public key', () => {
    expect(rw.writerKeyPair).not.toBeNull()
    expect(rw.writerKeyPair?.publicKey.equals(rw.writerPublicKey)).toBe(true)
    expect(ro.writerKeyPair).toBeNull()
    expect(en.writerKeyPair).toBeNull()
  })

  it('every derived key differs from every other (domain separation)', () => {
    const keys: Array<[string, Buffer]> = [
      ['authKey', rw.authKey],
      ['topic', rw.topic],
      ['contentKey', rw.contentKey as Buffer],
      ['readAuthKey', rw.readAuthKey as Buffer],
      ['writerPublicKey', rw.writerPublicKey],
      ['writerSecretKey seed', (rw.writerKeyPair as { secretKey: Buffer }).secretKey.subarray(0, 32)]
    ]
    for (const [nameA, a] of keys) {
      for (const [nameB, b] of keys) {
        if (nameA !== nameB) expect(a.equals(b), `${nameA} vs ${nameB}`).toBe(false)
      }
    }
  })

  it('no derived key equals or contains a secret payload', () => {
    // the secret part of each payload: rw seed, ro read key, en blind key
    const chunks = [RW.payload, deriveReadOnly(RW).payload, deriveEncrypted(RW).payload].map((p) => p.subarray(0, 32))
    for (const key of [rw.topic, rw.authKey, rw.contentKey as Buffer, rw.readAuthKey as Buffer]) {
      for (const chunk of chunks) {
        expect(key.equals(chunk)).toBe(false)
        expect(key.includes(chunk.subarray(0, 16))).toBe(false)
      }
    }
  })

  it('the folderId is short and does not appear in any secret text', () => {
    expect(rw.folderId).toMatch(/^[a-z2-7]{8}$/)
    for (const text of [RW_TEXT, RO_TEXT, EN_TEXT]) expect(text).not.toContain(rw.folderId)
  })
})
