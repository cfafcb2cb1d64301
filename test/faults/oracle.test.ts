import { describe, expect, it } from 'vitest'
import type { Tree } from '../helpers/tree.ts'
import { Oracle } from './oracle.ts'

const file = (sha256: string): Tree extends Map<string, infer E> ? E : never => ({ type: 'file', sizeBytes: 3, sha256, execBits: 0, mtimeS: 1 }) as never
const COPY = 'd/a.sync-conflict-20261129-071128-RBTKZ2J.txt'

describe('Oracle', () => {
  it('a version deleted on purpose that comes back, under its name or as a copy, is RESURRECTED', () => {
    const oracle = new Oracle()
    oracle.wrote({ node: 0, path: 'd/a.txt', hash: 'h1', size: 3, op: 'create' })
    oracle.removed({ node: 1, path: 'd/a.txt', hash: 'h1', kind: 'delete', op: 'delete' })
    expect(oracle.check(new Map([['d/a.txt', file('h1')]])).problems).toEqual([expect.stringMatching(/^RESURRECTED: d\/a.txt/)])
    expect(oracle.check(new Map([[COPY, file('h1')]])).problems).toEqual([expect.stringMatching(/^RESURRECTED: d\/a.sync-conflict/)])
  })

  it('a conflict copy deleted on purpose says nothing against the same bytes under the name itself', () => {
    // fault suite seed 1001: the file and its conflict copy held the same bytes when the
    // directory was moved; the copy was deleted, the file kept
    const oracle = new Oracle()
    oracle.wrote({ node: 1, path: 'd/a.txt', hash: 'h1', size: 3, op: 'dirMove' })
    oracle.wrote({ node: 1, path: COPY, hash: 'h1', size: 3, op: 'dirMove' })
    oracle.removed({ node: 1, path: COPY, hash: 'h1', kind: 'delete', op: 'delete' })
    expect(oracle.check(new Map([['d/a.txt', file('h1')]])).problems).toEqual([])
    expect(oracle.check(new Map([[COPY, file('h1')]])).problems).toEqual([expect.stringMatching(/^RESURRECTED/)])
    // and the deleted copy's content may be gone altogether
    expect(oracle.check(new Map()).problems).toEqual([])
  })

  it('a version overwritten on purpose that is still shown under its name is STALE; a copy of it is an extra copy', () => {
    const oracle = new Oracle()
    oracle.wrote({ node: 0, path: 'a.txt', hash: 'h1', size: 3, op: 'create' })
    oracle.removed({ node: 1, path: 'a.txt', hash: 'h1', kind: 'overwrite', op: 'rewrite' })
    oracle.wrote({ node: 1, path: 'a.txt', hash: 'h2', size: 3, op: 'rewrite' })
    expect(oracle.check(new Map([['a.txt', file('h1')]])).problems).toEqual([expect.stringMatching(/^LOST: a.txt h2/), expect.stringMatching(/^STALE: a.txt/)])
    const withCopy = oracle.check(new Map([['a.txt', file('h2')], ['a.sync-conflict-20261129-071128-RBTKZ2J.txt', file('h1')]]))
    expect(withCopy).toMatchObject({ problems: [], extraCopies: 1 })
  })
})
