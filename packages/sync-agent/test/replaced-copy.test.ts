import { describe, expect, it } from 'vitest'
import { replacedCopy, replacedHistory } from '../src/reconcile-path.js'

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

  // fault suite seed 4129: the peer replaced our version (its entry named it), then edited the
  // path again after seeing a later version of ours; only the history names our content now
  it('a peer whose entry that replaced our version was since overwritten by a later edit there', () => {
    const later = { author: PEER, was: ELSE, vv: { [ME]: 6, [PEER]: 9 } }
    expect(replacedCopy(later, copy, ME)).toBe(false)
    expect(replacedCopy({ ...later, replaced: [ELSE, HASH] }, copy, ME)).toBe(true)
    // still only a version that came after ours
    expect(replacedCopy({ ...later, vv: { [ME]: 4, [PEER]: 9 }, replaced: [HASH] }, copy, ME)).toBe(false)
  })
})

describe('replacedHistory', () => {
  const h = (c: string) => c.repeat(64)
  it('carries what our previous entry replaced, newest first, without what the new one names itself', () => {
    expect(replacedHistory(undefined, h('1'))).toEqual([])
    expect(replacedHistory({ kind: 'file', hash: h('9'), was: h('2'), replaced: [h('3')], withdrawn: false }, h('1'))).toEqual([h('2'), h('3')])
    expect(replacedHistory({ kind: 'file', hash: h('9'), was: h('2'), replaced: [h('3')], withdrawn: false }, h('3'))).toEqual([h('2')])
    expect(replacedHistory({ kind: 'file', hash: h('9'), was: null, replaced: [], withdrawn: false }, null)).toEqual([])
  })

  it("a withdrawn tombstone's own content was not replaced (it lives on as a copy): only its history", () => {
    expect(replacedHistory({ kind: 'file', hash: h('9'), was: h('2'), replaced: [h('3')], withdrawn: true }, h('1'))).toEqual([h('3')])
  })

  // fault suite seed 41010 (LOST): n2's version X was touched (a write that failed on the full
  // disk set its mtime), published as X with was=X; it lost a conflict (copy kept, tombstone
  // withdrawn), then n2 edited the winner: that entry inherited "replaced X" through the
  // tombstone, and X's conflict copy was withdrawn as content replaced on purpose
  it("a touch replaced nothing: its own content is not carried as replaced, its history is", () => {
    expect(replacedHistory({ kind: 'file', hash: h('2'), was: h('2'), replaced: [h('3')], withdrawn: false }, h('1'))).toEqual([h('3')])
    // a delete or a link naming what it replaced is no touch
    expect(replacedHistory({ kind: 'deleted', hash: null, was: h('2'), replaced: [], withdrawn: false }, null)).toEqual([h('2')])
  })

  it("a withdrawal's tombstone never names the withdrawn content (it lives on as the copy)", () => {
    expect(replacedHistory({ kind: 'file', hash: h('2'), was: h('3'), replaced: [h('2'), h('4')], withdrawn: false }, null, h('2'))).toEqual([h('3'), h('4')])
  })

  it('is bounded', () => {
    const long = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map(h)
    expect(replacedHistory({ kind: 'file', hash: h('9'), was: h('0'), replaced: long.slice(0, 8), withdrawn: false }, null)).toEqual([h('0'), ...long.slice(0, 7)])
  })
})
