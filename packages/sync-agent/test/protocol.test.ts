import c from 'compact-encoding'
import type { Encoding } from 'protomux'
import { describe, expect, it } from 'vitest'
import {
  authProof, CAPABILITY_READ, CAPABILITY_WRITE, contentDataEncoding, contentEndEncoding, contentRequestEncoding, FEATURE_CONTENT, haveListEncoding,
  FEATURE_INDEX, helloEncoding, indexBlocksEncoding, indexRequestEncoding, MAX_CONTENT_CHUNK, MAX_CONTENT_WINDOW, MAX_INDEX_ANSWER_BYTES,
  MAX_INDEX_BLOCKS, MAX_LIST, MAX_SUM_BLOCK, MIN_SUM_BLOCK, membersEncoding, sumsRequestEncoding, type Have, type Hello
} from '../src/protocol.js'
import type { Member } from '../src/replication/member.js'

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill)

const member = (i: number): Member => ({ deviceKey: bytes(32, i), driveKey: bytes(32, i + 100), signature: bytes(64, i + 200) })
const have = (i: number, length: number): Have => ({ driveKey: bytes(32, i), length })

describe('hello', () => {
  it.each<[string, Hello]>([
    ['version 1', { version: 1, proof: bytes(32, 9) }],
    ['a large version', { version: 2 ** 32, proof: bytes(32, 0) }],
    ['with the sender\'s clock', { version: 1, proof: bytes(32, 9), clockMs: 1_795_900_000_123 }],
    ['with a read capability', { version: 1, proof: bytes(32, 9), clockMs: 5, capability: { kind: CAPABILITY_READ, proof: bytes(32, 7) } }],
    ['with a write capability', { version: 1, proof: bytes(32, 9), clockMs: 5, capability: { kind: CAPABILITY_WRITE, proof: bytes(64, 7) } }]
  ])('round-trips %s', (_name, hello) => {
    expect(c.decode(helloEncoding, c.encode(helloEncoding, hello))).toEqual(hello)
  })

  it('is a uint followed by 32 proof bytes', () => {
    expect(c.encode(helloEncoding, { version: 1, proof: bytes(32, 9) })).toHaveLength(33)
  })

  it('the clock is an optional trailing uint: a hello from an older agent has none', () => {
    const old = c.encode(helloEncoding, { version: 1, proof: bytes(32, 9) })
    expect(c.decode(helloEncoding, old).clockMs).toBeUndefined()
    const now = c.encode(helloEncoding, { version: 1, proof: bytes(32, 9), clockMs: 1_795_900_000_123 })
    expect(now.subarray(0, 33)).toEqual(old)
  })
})

describe('hello capability', () => {
  const withCapability = (kind: number, proofBytes: number) => {
    const head = c.encode(helloEncoding, { version: 1, proof: bytes(32, 9), clockMs: 5 })
    return Buffer.concat([head, c.encode(c.uint, kind), c.encode(c.buffer, bytes(proofBytes, 1))])
  }

  it.each([
    ['an unknown capability', withCapability(3, 32), /unknown capability 3/],
    ['a read proof of the wrong size', withCapability(CAPABILITY_READ, 64), /capability 1 proof of 64 bytes \(expected 32\)/],
    ['a write proof of the wrong size', withCapability(CAPABILITY_WRITE, 32), /capability 2 proof of 32 bytes \(expected 64\)/],
    ['an empty proof', withCapability(CAPABILITY_WRITE, 0), /capability 2 proof of 0 bytes/]
  ])('%s is a malformed hello', (_name, buf, message) => {
    expect(() => c.decode(helloEncoding, buf)).toThrow(message)
  })

  it('a hello cut inside the capability is rejected', () => {
    const full = withCapability(CAPABILITY_WRITE, 64)
    const clockEnd = c.encode(helloEncoding, { version: 1, proof: bytes(32, 9), clockMs: 5 }).length
    for (let cut = clockEnd + 1; cut < full.length; cut++) expect(() => c.decode(helloEncoding, full.subarray(0, cut)), `cut at ${cut}`).toThrow()
  })
})

describe('members list', () => {
  it.each<[string, Member[]]>([
    ['empty', []],
    ['one', [member(1)]],
    ['three', [member(1), member(2), member(3)]],
    ['the maximum', Array.from({ length: MAX_LIST }, (_, i) => member(i))]
  ])('round-trips %s', (_name, list) => {
    expect(c.decode(membersEncoding, c.encode(membersEncoding, list))).toEqual(list)
  })
})

describe('have list', () => {
  it.each<[string, Have[]]>([
    ['empty', []],
    ['lengths of every uint size', [have(1, 0), have(2, 0xfc), have(3, 0xfd), have(4, 0x10000), have(5, 2 ** 40)]],
    ['the maximum', Array.from({ length: MAX_LIST }, (_, i) => have(i, i))]
  ])('round-trips %s', (_name, list) => {
    expect(c.decode(haveListEncoding, c.encode(haveListEncoding, list))).toEqual(list)
  })
})

describe('strict decoding', () => {
  it.each([
    ['members', membersEncoding as Encoding<unknown[]>, member(0) as unknown],
    ['haves', haveListEncoding as Encoding<unknown[]>, have(0, 1) as unknown]
  ])('a %s list of more than 256 items is rejected', (_name, enc, item) => {
    const tooMany = c.encode(enc, Array.from({ length: MAX_LIST + 1 }, () => item))
    expect(() => c.decode(enc, tooMany)).toThrow(/exceed the limit of 256/)
  })

  it('a list that claims a huge count but holds nothing is rejected', () => {
    const claim = c.encode(c.uint, 2 ** 32)
    expect(() => c.decode(membersEncoding, claim)).toThrow()
    expect(() => c.decode(haveListEncoding, claim)).toThrow()
  })

  const encoded: Array<[string, Encoding<unknown>, Uint8Array]> = [
    ['hello', helloEncoding as Encoding<unknown>, c.encode(helloEncoding, { version: 1, proof: bytes(32, 9) })],
    ['members', membersEncoding as Encoding<unknown>, c.encode(membersEncoding, [member(1), member(2)])],
    ['haves', haveListEncoding as Encoding<unknown>, c.encode(haveListEncoding, [have(1, 2 ** 40), have(2, 5)])]
  ]

  it.each(encoded)('a truncated %s message is rejected at every cut', (_name, enc, buf) => {
    for (let cut = 0; cut < buf.length; cut++) {
      expect(() => c.decode(enc, buf.subarray(0, cut)), `cut at ${cut} of ${buf.length}`).toThrow()
    }
  })
})

describe('authProof', () => {
  const authKey = bytes(32, 1)
  const hash = bytes(64, 2)

  it('is deterministic and 32 bytes', () => {
    const proof = authProof(authKey, hash, true)
    expect(proof).toHaveLength(32)
    expect(authProof(authKey, hash, true).equals(proof)).toBe(true)
  })

  it.each<[string, Buffer]>([
    ['the other role', authProof(authKey, hash, false)],
    ['another handshake hash', authProof(authKey, bytes(64, 3), true)],
    ['another auth key', authProof(bytes(32, 4), hash, true)]
  ])('differs for %s', (_name, other) => {
    expect(other.equals(authProof(authKey, hash, true))).toBe(false)
  })

  it('does not reveal the auth key', () => {
    expect(authProof(authKey, hash, true).includes(authKey.subarray(0, 8))).toBe(false)
  })
})

describe('content messages', () => {
  const request = { id: 7, path: 'uploads/2026/11/a b.jpg', hash: bytes(32, 3), offset: 2 * 1024 * 1024, length: 1000 }

  it('round-trip: a request, a chunk of data, an end; features ride at the end of the hello', () => {
    expect(c.decode(contentRequestEncoding, c.encode(contentRequestEncoding, request))).toEqual(request)
    const data = { id: 7, data: bytes(1000, 5) }
    expect(c.decode(contentDataEncoding, c.encode(contentDataEncoding, data))).toEqual(data)
    expect(c.decode(contentEndEncoding, c.encode(contentEndEncoding, { id: 7, status: 1 }))).toEqual({ id: 7, status: 1 })
    const hello: Hello = { version: 1, proof: bytes(32, 9), clockMs: 5, capability: { kind: CAPABILITY_READ, proof: bytes(32, 7) }, features: FEATURE_CONTENT }
    expect(c.decode(helloEncoding, c.encode(helloEncoding, hello))).toEqual(hello)
  })

  it.each<[string, () => unknown]>([
    ['a request for nothing', () => c.decode(contentRequestEncoding, c.encode(contentRequestEncoding, { ...request, length: 0 }))],
    ['a request for more than a window', () => c.decode(contentRequestEncoding, c.encode(contentRequestEncoding, { ...request, length: MAX_CONTENT_WINDOW + 1 }))],
    ['a request past any file', () => c.decode(contentRequestEncoding, c.encode(contentRequestEncoding, { ...request, offset: Number.MAX_SAFE_INTEGER }))],
    ['a path of 5,000 bytes', () => c.decode(contentRequestEncoding, c.encode(contentRequestEncoding, { ...request, path: 'x'.repeat(5000) }))],
    ['an empty chunk', () => c.decode(contentDataEncoding, c.encode(contentDataEncoding, { id: 1, data: Buffer.alloc(0) }))],
    ['a chunk over the limit', () => c.decode(contentDataEncoding, c.encode(contentDataEncoding, { id: 1, data: Buffer.alloc(MAX_CONTENT_CHUNK + 1) }))],
    ['an unknown end status', () => c.decode(contentEndEncoding, c.encode(contentEndEncoding, { id: 1, status: 9 }))],
    ['a truncated request', () => c.decode(contentRequestEncoding, c.encode(contentRequestEncoding, request).subarray(0, 20))]
  ])('refuses %s as E_PEER_PROTOCOL', (_name, decode) => {
    expect(decode).toThrow(expect.objectContaining({ code: 'E_PEER_PROTOCOL' }))
  })
})

describe('block-sum requests', () => {
  const request = { id: 9, path: 'uploads/backups/site.tar', hash: bytes(32, 3), blockSize: 1024 * 1024 }

  it('round-trip, for every block size allowed', () => {
    expect(c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, request))).toEqual(request)
    for (let blockSize = MIN_SUM_BLOCK; blockSize <= MAX_SUM_BLOCK; blockSize *= 2) {
      expect(c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, { ...request, blockSize })).blockSize).toBe(blockSize)
    }
  })

  it.each<[string, () => unknown]>([
    ['blocks smaller than 128 KiB', () => c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, { ...request, blockSize: MIN_SUM_BLOCK / 2 }))],
    ['blocks larger than 16 MiB', () => c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, { ...request, blockSize: MAX_SUM_BLOCK * 2 }))],
    ['blocks of a size not a power of two', () => c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, { ...request, blockSize: 3 * MIN_SUM_BLOCK }))],
    ['blocks of no size', () => c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, { ...request, blockSize: 0 }))],
    ['a path of 5,000 bytes', () => c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, { ...request, path: 'x'.repeat(5000) }))],
    ['a truncated request', () => c.decode(sumsRequestEncoding, c.encode(sumsRequestEncoding, request).subarray(0, 20))]
  ])('refuses %s as E_PEER_PROTOCOL', (_name, decode) => {
    expect(decode).toThrow(expect.objectContaining({ code: 'E_PEER_PROTOCOL' }))
  })
})

describe('index messages', () => {
  const request = { id: 3, driveKey: bytes(32, 4), start: 4096, end: 8192 }
  const answer = { id: 3, status: 0, blocks: [bytes(300, 1), bytes(1, 2)] }
  const blocks = (n: number, size: number) => Array.from({ length: n }, (_, i) => bytes(size, i))

  it('round-trip: a request and its blocks; an answer without blocks says why', () => {
    expect(c.decode(indexRequestEncoding, c.encode(indexRequestEncoding, request))).toEqual(request)
    expect(c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, answer))).toEqual(answer)
    const none = { id: 3, status: 1, blocks: [] }
    expect(c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, none))).toEqual(none)
    expect(c.decode(helloEncoding, c.encode(helloEncoding, { version: 1, proof: bytes(32, 9), clockMs: 5, capability: { kind: CAPABILITY_READ, proof: bytes(32, 7) }, features: FEATURE_CONTENT | FEATURE_INDEX })).features).toBe(3)
  })

  it.each<[string, () => unknown]>([
    ['a request for no block', () => c.decode(indexRequestEncoding, c.encode(indexRequestEncoding, { ...request, end: request.start }))],
    ['a backwards request', () => c.decode(indexRequestEncoding, c.encode(indexRequestEncoding, { ...request, end: 1 }))],
    ['a request for more blocks than allowed', () => c.decode(indexRequestEncoding, c.encode(indexRequestEncoding, { ...request, end: request.start + MAX_INDEX_BLOCKS + 1 }))],
    ['a truncated request', () => c.decode(indexRequestEncoding, c.encode(indexRequestEncoding, request).subarray(0, 10))],
    ['more blocks than allowed', () => c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, { ...answer, blocks: blocks(MAX_INDEX_BLOCKS + 1, 1) }))],
    ['more bytes than allowed', () => c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, { ...answer, blocks: blocks(5, MAX_INDEX_ANSWER_BYTES / 4) }))],
    ['an empty block', () => c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, { ...answer, blocks: [bytes(5, 1), Buffer.alloc(0)] }))],
    ['done without blocks', () => c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, { ...answer, blocks: [] }))],
    ['blocks with a refusal', () => c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, { ...answer, status: 3 }))],
    ['an unknown status', () => c.decode(indexBlocksEncoding, c.encode(indexBlocksEncoding, { id: 1, status: 9, blocks: [] }))]
  ])('refuses %s as E_PEER_PROTOCOL', (_name, decode) => {
    expect(decode).toThrow(expect.objectContaining({ code: 'E_PEER_PROTOCOL' }))
  })
})
