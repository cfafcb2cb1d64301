import { describe, expect, it, vi } from 'vitest'
import type { Tree } from '../helpers/tree.ts'
import { isCopyOf, Oracle } from './oracle.ts'

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

  // fault suite seed 17032: a truncate made while the agent applied a peer's delete: the file was
  // moved aside when the workload looked (raced), then put back with the edit in it
  it('a raced write is not required, and not unknown where the agent kept it (under its name or as a copy)', () => {
    const oracle = new Oracle()
    oracle.wrote({ node: 0, path: 'd/a.txt', hash: 'h1', size: 3, op: 'create' })
    oracle.removed({ node: 1, path: 'd/a.txt', hash: 'h1', kind: 'delete', op: 'delete' })
    oracle.raced({ node: 0, path: 'd/a.txt', hash: 'h2', size: 3, op: 'truncate' })
    expect(oracle.check(new Map()).problems).toEqual([])
    expect(oracle.check(new Map([['d/a.txt', file('h2')]])).problems).toEqual([])
    expect(oracle.check(new Map([[COPY, file('h2')]]))).toMatchObject({ problems: [], extraCopies: 1 })
    // other content is still unknown, and the deleted version still resurrected
    expect(oracle.check(new Map([['d/a.txt', file('h3')]])).problems).toEqual([expect.stringMatching(/^UNKNOWN: d\/a.txt/)])
    expect(oracle.check(new Map([['d/a.txt', file('h1')]])).problems).toEqual([expect.stringMatching(/^RESURRECTED: d\/a.txt/)])
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

  // fault suite seed 5009: on a full disk, creates leave empty files, all with the same hash
  it('the same content written again at a name after it was deleted there is a new version (empty files), allowed to vanish', () => {
    const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    const at = (ms: number) => vi.setSystemTime(1_800_000_000_000 + ms)
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      at(0)
      const model = new Oracle()
      at(1_000)
      model.wrote({ node: 2, path: 'docs/d0/a.txt', hash: EMPTY, size: 0, op: 'create' })
      expect(model.check(new Map()).problems).toEqual([expect.stringMatching(/^LOST: docs\/d0\/a.txt/)])
      at(2_000)
      model.removed({ node: 2, path: 'docs/d0/a.txt', hash: EMPTY, kind: 'delete', op: 'dir move' })
      // deleted, and nothing written again: back is RESURRECTED
      expect(model.check(new Map([['docs/d0/a.txt', file(EMPTY)]])).problems).toEqual([expect.stringMatching(/^RESURRECTED/)])
      at(3_000)
      model.wrote({ node: 2, path: 'docs/d0/a.txt', hash: EMPTY, size: 0, op: 'create' })
      expect(model.check(new Map([['docs/d0/a.txt', file(EMPTY)]])).problems).toEqual([])
      // made again where it was removed before: allowed, not required (the agent names contents
      // by hash, and withdraws a losing copy of content replaced there on purpose: seed 19512)
      expect(model.check(new Map()).problems).toEqual([])
    } finally {
      vi.useRealTimers()
    }
  })

  it('a copy the deleting node had beside the file and left there is not resurrected by that delete', () => {
    const oracle = new Oracle()
    oracle.wrote({ node: 3, path: 'd/a.txt', hash: 'h1', size: 3, op: 'create' })
    oracle.wrote({ node: 3, path: COPY, hash: 'h1', size: 3, op: 'dir move' })
    oracle.removed({ node: 4, path: 'd/a.txt', hash: 'h1', kind: 'delete', op: 'rename', copiesBeside: [COPY] })
    expect(oracle.check(new Map([[COPY, file('h1')]]))).toMatchObject({ problems: [], extraCopies: 1 })
    // not beside it when the file was deleted: the copy outlived the delete
    const unseen = new Oracle()
    unseen.wrote({ node: 3, path: 'd/a.txt', hash: 'h1', size: 3, op: 'create' })
    unseen.removed({ node: 4, path: 'd/a.txt', hash: 'h1', kind: 'delete', op: 'rename', copiesBeside: [] })
    expect(unseen.check(new Map([[COPY, file('h1')]])).problems).toEqual([expect.stringMatching(/^RESURRECTED/)])
  })

  // seed 26513: a node renamed a conflict copy away, leaving a copy of that copy beside it
  it('tells the copies of a copy from the copies of its file (what a node sees beside the path it removes)', () => {
    const copy = 'd/e.sync-conflict-20261130-085244-XTLC2NY.json'
    const copyOfCopy = 'd/e.sync-conflict-20261130-085244-XTLC2NY.sync-conflict-20261130-085249-ZKCWJGW.json'
    const otherCopy = 'd/e.sync-conflict-20261130-085301-ABCDEFG.json'
    expect(isCopyOf(copyOfCopy, copy)).toBe(true)
    expect(isCopyOf(copy, 'd/e.json')).toBe(true)
    expect(isCopyOf(copyOfCopy, 'd/e.json')).toBe(true)
    expect(isCopyOf(otherCopy, copy)).toBe(false)
    expect(isCopyOf('d/e.json', copy)).toBe(false)
    expect(isCopyOf(copy, copy)).toBe(false)
    expect(isCopyOf('x/e.sync-conflict-20261130-085244-XTLC2NY.sync-conflict-20261130-085249-ZKCWJGW.json', copy)).toBe(false)
  })
})
