import { describe, expect, it } from 'vitest'
import { replacedCopy } from '../src/reconcile-path.js'

const ME = 'AAAAAAAAAAAAAAAA'
const PEER = 'BBBBBBBBBBBBBBBB'
const OTHER = 'CCCCCCCCCCCCCCCC'
const HASH = 'ab'.repeat(32)
const ELSE = 'cd'.repeat(32)

/** our version {ME: 5, PEER: 1} lost and is kept as a copy with that vector */
const copy = { vv: { [ME]: 5, [PEER]: 1 }, hash: HASH }

describe('replacedCopy', () => {
  it('a peer that had our version on its disk and deleted or edited it (any number of times)', () => {
    expect(replacedCopy({ author: PEER, was: HASH, vv: { [ME]: 5, [PEER]: 7 } }, copy, ME)).toBe(true)
    expect(replacedCopy({ author: PEER, was: null, vv: { [ME]: 5, [PEER]: 9 } }, copy, ME)).toBe(true)
    expect(replacedCopy({ author: OTHER, was: ELSE, vv: { [ME]: 5, [PEER]: 9, [OTHER]: 2 } }, copy, ME)).toBe(true)
  })

  it('our own delete of that very content, made after the copy', () => {
    expect(replacedCopy({ author: ME, was: HASH, vv: { [ME]: 8, [PEER]: 1 } }, copy, ME)).toBe(true)
  })

  it('not a version concurrent with ours (the winner), nor one before it', () => {
    expect(replacedCopy({ author: PEER, was: ELSE, vv: { [ME]: 3, [PEER]: 4 } }, copy, ME)).toBe(false)
    expect(replacedCopy({ author: PEER, was: HASH, vv: { [ME]: 3, [PEER]: 1 } }, copy, ME)).toBe(false)
  })

  it('not our later edit of the winner, nor a peer edit made on top of it: they never had our version', () => {
    // the winner {PEER: 4, ME: 3}; we edit it after the copy: {ME: 9, PEER: 4}, which dominates the copy's vector
    expect(replacedCopy({ author: ME, was: ELSE, vv: { [ME]: 9, [PEER]: 4 } }, copy, ME)).toBe(false)
    expect(replacedCopy({ author: OTHER, was: ELSE, vv: { [ME]: 9, [PEER]: 4, [OTHER]: 1 } }, copy, ME)).toBe(false)
  })
})
