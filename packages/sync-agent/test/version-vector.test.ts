import { describe, expect, it } from 'vitest'
import { advance, compareVectors, isVersionVector, joinVectors, type Ordering, type VersionVector } from '../src/version-vector.js'

const A = 'AAAAAAAAAAAAAAAA'
const B = 'BBBBBBBBBBBBBBBB'
const C = 'CCCCCCCCCCCCCCCC'

describe('compareVectors', () => {
  it.each<[string, VersionVector, VersionVector, Ordering]>([
    ['identical', { [A]: 1, [B]: 2 }, { [A]: 1, [B]: 2 }, 'equal'],
    ['both empty', {}, {}, 'equal'],
    ['a missing key counts as 0 (equal)', { [A]: 1 }, { [A]: 1, [B]: 0 }, 'equal'],
    ['a behind on one key', { [A]: 1 }, { [A]: 2 }, 'before'],
    ['a lacks a key b has', { [A]: 1 }, { [A]: 1, [B]: 1 }, 'before'],
    ['a ahead on one key', { [A]: 3, [B]: 1 }, { [A]: 2, [B]: 1 }, 'after'],
    ['a has a key b lacks', { [A]: 1, [C]: 1 }, { [A]: 1 }, 'after'],
    ['each ahead on its own key', { [A]: 2, [B]: 1 }, { [A]: 1, [B]: 2 }, 'concurrent'],
    ['disjoint keys', { [A]: 1 }, { [B]: 1 }, 'concurrent'],
    ['ahead on two, behind on one', { [A]: 5, [B]: 5, [C]: 1 }, { [A]: 1, [B]: 1, [C]: 2 }, 'concurrent']
  ])('%s: %j vs %j → %s', (_name, a, b, ordering) => {
    expect(compareVectors(a, b)).toBe(ordering)
  })

  it('is antisymmetric', () => {
    const flip: Record<Ordering, Ordering> = { equal: 'equal', before: 'after', after: 'before', concurrent: 'concurrent' }
    const vectors: VersionVector[] = [{ [A]: 1 }, { [A]: 2 }, { [B]: 1 }, { [A]: 1, [B]: 1 }, { [A]: 2, [B]: 3 }]
    for (const a of vectors) for (const b of vectors) expect(compareVectors(b, a)).toBe(flip[compareVectors(a, b)])
  })
})

describe('joinVectors', () => {
  it.each<[string, VersionVector[], Record<string, number>]>([
    ['nothing', [], {}],
    ['one', [{ [A]: 2 }], { [A]: 2 }],
    ['the maximum per key', [{ [A]: 2, [B]: 1 }, { [A]: 1, [B]: 3 }], { [A]: 2, [B]: 3 }],
    ['the union of keys', [{ [A]: 1 }, { [B]: 1 }, { [C]: 4 }], { [A]: 1, [B]: 1, [C]: 4 }]
  ])('of %s', (_name, vectors, joined) => {
    expect(joinVectors(vectors)).toEqual(joined)
  })

  it('does not change its inputs', () => {
    const a = { [A]: 1 }
    joinVectors([a, { [A]: 5 }])
    expect(a).toEqual({ [A]: 1 })
  })

  it('is after or equal to every input', () => {
    const inputs = [{ [A]: 2, [B]: 1 }, { [A]: 1, [B]: 3 }]
    const joined = joinVectors(inputs)
    for (const v of inputs) expect(compareVectors(joined, v)).toBe('after')
  })
})

describe('advance', () => {
  it.each<[string, VersionVector[], string, number, Record<string, number>]>([
    ['a first change', [], A, 1, { [A]: 1 }],
    ['on top of what was seen', [{ [A]: 1, [B]: 4 }], A, 7, { [A]: 7, [B]: 4 }],
    ['a counter that is too low is raised past the old one', [{ [A]: 9 }], A, 3, { [A]: 10 }],
    ['an equal counter is raised by one', [{ [A]: 9 }], A, 9, { [A]: 10 }],
    ['joins concurrent versions', [{ [A]: 2 }, { [B]: 3 }], C, 1, { [A]: 2, [B]: 3, [C]: 1 }]
  ])('%s', (_name, seen, device, counter, expected) => {
    const out = advance(seen, device, counter)
    expect(out).toEqual(expected)
    for (const v of seen) expect(compareVectors(out, v)).toBe('after')
  })
})

/** A vector naming `n` distinct valid devices. */
function devices(n: number): Record<string, number> {
  const x = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const vv = Object.fromEntries(Array.from({ length: n }, (_, i) => [`AAAAAAAAAAAAAA${x[i >> 5]}${x[i & 31]}`, 1]))
  expect(Object.keys(vv)).toHaveLength(n)
  return vv
}

describe('isVersionVector', () => {
  it.each<[string, unknown]>([
    ['one device', { [A]: 1 }],
    ['several devices', { [A]: 1, [B]: 99, [C]: Number.MAX_SAFE_INTEGER }],
    ['base32 digits in the key', { ABCDEFGHIJKLMN27: 1 }]
  ])('accepts %s', (_name, value) => {
    expect(isVersionVector(value)).toBe(true)
  })

  it.each<[string, unknown]>([
    ['null', null],
    ['a number', 1],
    ['a string', 'AAAAAAAAAAAAAAAA'],
    ['an array', [1, 2]],
    ['an empty object', {}],
    ['a fractional counter', { [A]: 1.5 }],
    ['a zero counter', { [A]: 0 }],
    ['a negative counter', { [A]: -1 }],
    ['an unsafe integer counter', { [A]: 2 ** 53 }],
    ['a string counter', { [A]: '1' }],
    ['NaN', { [A]: NaN }],
    ['a lower-case key', { aaaaaaaaaaaaaaaa: 1 }],
    ['a 15-character key', { AAAAAAAAAAAAAAA: 1 }],
    ['a 17-character key', { AAAAAAAAAAAAAAAAA: 1 }],
    ['a key with a non-base32 digit', { AAAAAAAAAAAAAAA1: 1 }],
    ['a key with punctuation', { 'AAAAAAAA-AAAAAAA': 1 }],
    ['more than 64 devices', devices(65)]
  ])('rejects %s', (_name, value) => {
    expect(isVersionVector(value)).toBe(false)
  })

  it('accepts exactly 64 devices', () => {
    expect(isVersionVector(devices(64))).toBe(true)
  })
})
