import { describe, expect, it } from 'vitest'
import { deriveEncrypted, deriveFolderKeys, deriveReadOnly, newSecret, parseSecret } from '@sync-agent/shared'
import { checkCapability, ownCapability } from '../src/peers/capability-proof.js'
import { CAPABILITY_READ, CAPABILITY_WRITE } from '../src/protocol.js'

const rwSecret = parseSecret(newSecret())
const keys = {
  rw: deriveFolderKeys(rwSecret),
  ro: deriveFolderKeys(deriveReadOnly(rwSecret)),
  en: deriveFolderKeys(deriveEncrypted(rwSecret))
}
const otherRw = parseSecret(newSecret())
const other = { rw: deriveFolderKeys(otherRw), ro: deriveFolderKeys(deriveReadOnly(otherRw)) }
const hash = Buffer.alloc(64, 3)
const otherHash = Buffer.alloc(64, 4)
type Kind = keyof typeof keys

describe('capability proofs', () => {
  it('rw proves write, ro proves read, en proves nothing beyond the folder secret', () => {
    expect(ownCapability(keys.rw, hash, true)?.kind).toBe(CAPABILITY_WRITE)
    expect(ownCapability(keys.ro, hash, true)?.kind).toBe(CAPABILITY_READ)
    expect(ownCapability(keys.en, hash, true)).toBeNull()
  })

  // [sender, checker, role seen, verified]
  it.each<[Kind, Kind, string, boolean]>([
    ['rw', 'rw', 'rw', true],
    ['rw', 'ro', 'rw', true],
    ['rw', 'en', 'rw', true],
    ['ro', 'rw', 'ro', true],
    ['ro', 'ro', 'ro', true],
    ['ro', 'en', 'ro', false], // an encrypted agent has no read key to check it with
    ['en', 'rw', 'en', true],
    ['en', 'ro', 'en', true],
    ['en', 'en', 'en', true]
  ])('a %s peer as seen by a %s agent', (sender, checker, role, verified) => {
    const capability = ownCapability(keys[sender], hash, true)
    expect(checkCapability(keys[checker], hash, true, capability)).toEqual({ role, verified })
  })

  it.each<[string, () => ReturnType<typeof ownCapability>, Kind]>([
    ['a write proof for another handshake (replayed)', () => ownCapability(keys.rw, otherHash, true), 'ro'],
    ['a write proof made by the other side (reflected)', () => ownCapability(keys.rw, hash, false), 'en'],
    ['a write proof signed by another folder\'s writer key', () => ownCapability(other.rw, hash, true), 'rw'],
    ['a random write proof', () => ({ kind: CAPABILITY_WRITE, proof: Buffer.alloc(64, 9) }), 'en'],
    ['a read proof for another handshake (replayed)', () => ownCapability(keys.ro, otherHash, true), 'rw'],
    ['a read proof made with another folder\'s read key', () => ownCapability(other.ro, hash, true), 'ro'],
    ['a random read proof', () => ({ kind: CAPABILITY_READ, proof: Buffer.alloc(32, 9) }), 'rw']
  ])('%s is refused', (_name, forged, checker) => {
    const result = checkCapability(keys[checker], hash, true, forged())
    expect(result).toHaveProperty('error')
    expect((result as { error: string }).error).toMatch(/proof (is not signed by the folder's writer key|does not match the folder's read key)/)
  })

  it('a read proof does not reveal the read key', () => {
    const proof = ownCapability(keys.ro, hash, true)?.proof as Buffer
    expect(proof.includes((keys.ro.readAuthKey as Buffer).subarray(0, 8))).toBe(false)
  })
})
