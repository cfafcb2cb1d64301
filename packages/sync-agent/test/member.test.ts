import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { deriveEncrypted, deriveFolderKeys, deriveReadOnly, type ParsedSecret } from '@sync-agent/shared'
import { loadMembers, saveMembers, signMember, verifyMember, type Member } from '../src/replication/member.js'

const RW: ParsedSecret = { kind: 'rw', payload: Buffer.alloc(32, 5) }
const rw = deriveFolderKeys(RW)
const ro = deriveFolderKeys(deriveReadOnly(RW))
const en = deriveFolderKeys(deriveEncrypted(RW))
const otherFolder = deriveFolderKeys({ kind: 'rw', payload: Buffer.alloc(32, 6) })

const deviceKey = Buffer.alloc(32, 0x11)
const driveKey = Buffer.alloc(32, 0x22)

function signed(): Member {
  const m = signMember(rw, deviceKey, driveKey)
  if (!m) throw new Error('an rw secret must be able to sign')
  return m
}

function flipByte(buf: Buffer, index: number): Buffer {
  const out = Buffer.from(buf)
  out[index] = (out[index] as number) ^ 1
  return out
}

describe('signMember', () => {
  it('with rw keys returns the member with a 64-byte signature', () => {
    const m = signed()
    expect(m.deviceKey.equals(deviceKey)).toBe(true)
    expect(m.driveKey.equals(driveKey)).toBe(true)
    expect(m.signature).toHaveLength(64)
  })

  it.each([
    ['ro', ro],
    ['en', en]
  ])('with %s keys returns null', (_name, keys) => {
    expect(signMember(keys, deviceKey, driveKey)).toBeNull()
  })
})

describe('verifyMember', () => {
  it.each([
    ['rw', rw],
    ['ro', ro],
    ['en', en]
  ])('a signed member verifies with %s keys', (_name, keys) => {
    expect(verifyMember(keys, signed())).toBe(true)
  })

  it.each<[string, (m: Member) => Member]>([
    ['a changed drive key', (m) => ({ ...m, driveKey: flipByte(m.driveKey, 31) })],
    ['a changed device key', (m) => ({ ...m, deviceKey: flipByte(m.deviceKey, 0) })],
    ['swapped device and drive keys', (m) => ({ ...m, deviceKey: m.driveKey, driveKey: m.deviceKey })],
    ['a changed signature (first byte)', (m) => ({ ...m, signature: flipByte(m.signature, 0) })],
    ['a changed signature (last byte)', (m) => ({ ...m, signature: flipByte(m.signature, 63) })],
    ['a truncated signature', (m) => ({ ...m, signature: m.signature.subarray(0, 63) })],
    ['an empty signature', (m) => ({ ...m, signature: Buffer.alloc(0) })],
    ['a short device key', (m) => ({ ...m, deviceKey: m.deviceKey.subarray(0, 31) })],
    ['a long drive key', (m) => ({ ...m, driveKey: Buffer.concat([m.driveKey, Buffer.alloc(1)]) })],
    ['a signature from another member', (m) => ({ ...m, signature: (signMember(rw, deviceKey, Buffer.alloc(32, 0x33)) as Member).signature })]
  ])('rejects %s', (_name, tamper) => {
    expect(verifyMember(rw, tamper(signed()))).toBe(false)
    expect(verifyMember(ro, tamper(signed()))).toBe(false)
  })

  it('rejects a member signed for another folder', () => {
    const foreign = signMember(otherFolder, deviceKey, driveKey) as Member
    expect(verifyMember(otherFolder, foreign)).toBe(true)
    expect(verifyMember(rw, foreign)).toBe(false)
    expect(verifyMember(ro, foreign)).toBe(false)
  })
})

describe('saveMembers', () => {
  // fault suite: two members added at once shared the temp file; one rename failed (ENOENT)
  // and the older list could land last
  it('saves of one data dir at once all succeed, and the last list is the one kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sa-members-'))
    try {
      const lists = Array.from({ length: 8 }, (_, i) =>
        Array.from({ length: i + 1 }, (_, j) => {
          const m = signMember(rw, Buffer.alloc(32, j + 1), Buffer.alloc(32, j + 101))
          if (!m) throw new Error('an rw secret must be able to sign')
          return m
        })
      )
      await Promise.all(lists.map((list) => saveMembers(dir, list)))
      const loaded = await loadMembers(dir, rw)
      expect(loaded.map((m) => m.deviceKey[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
      expect(await readdir(dir)).toEqual(['members.json'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
