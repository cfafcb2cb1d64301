import { afterEach, describe, expect, it } from 'vitest'
import { findPathProblem } from '@sync-agent/shared'
import type { Version } from '../src/entry-format.js'
import { conflictName, decide, parseConflictName, pickConflictName, type Decision, type NameUse } from '../src/merge.js'

// devices (version-vector keys) and the drives they write, in ascending order
const A = 'AAAAAAAAAAAAAAAA'
const B = 'BBBBBBBBBBBBBBBB'
const C = 'CCCCCCCCCCCCCCCC'
const DRIVE: Record<string, string> = { [A]: 'a'.repeat(64), [B]: 'b'.repeat(64), [C]: 'c'.repeat(64) }
const HASH1 = '1'.repeat(64)
const HASH2 = '2'.repeat(64)

/** A version of `photo.jpg` by `author`; a file with HASH1, mode 0o644 unless overridden. */
function version(author: string, vv: Record<string, number>, ts: number, over: Partial<Version> = {}): Version {
  const kind = over.kind ?? 'file'
  return {
    drive: DRIVE[author] as string,
    author,
    path: 'photo.jpg',
    vv,
    ts,
    kind,
    size: kind === 'file' ? 3 : 0,
    mtime: ts,
    mode: kind === 'file' ? 0o644 : kind === 'dir' ? 0o755 : 0,
    hash: kind === 'file' ? HASH1 : null,
    target: kind === 'symlink' ? 'target' : null,
    blob: null,
    at: 0,
    was: null,
    replaced: [],
    withdrawn: false,
    copy: false,
    ...over
  }
}

const deleted = { kind: 'deleted' } as const
const dir = { kind: 'dir' } as const

/** The decision in a comparable form: winner's author, and each loser's author with its keepCopy. */
function summary(decision: Decision): { winner: string | null; losers: Array<[string, boolean]> } {
  return {
    winner: decision.winner ? `${decision.winner.author}:${decision.winner.kind}` : null,
    losers: decision.losers.map((l): [string, boolean] => [`${l.version.author}:${l.version.kind}`, l.keepCopy]).sort()
  }
}

interface Case {
  name: string
  versions: Version[]
  winner: string | null
  losers: Array<[string, boolean]>
}

const cases: Case[] = [
  { name: 'no versions: nothing to show', versions: [], winner: null, losers: [] },
  { name: 'a single file wins', versions: [version(A, { [A]: 1 }, 10)], winner: `${A}:file`, losers: [] },
  { name: 'a single delete wins (the path is gone)', versions: [version(A, { [A]: 1 }, 10, deleted)], winner: `${A}:deleted`, losers: [] },
  {
    name: 'a dominated version is history, even when its ts is later',
    versions: [version(A, { [A]: 1 }, 99), version(B, { [A]: 1, [B]: 1 }, 10)],
    winner: `${B}:file`,
    losers: []
  },
  {
    name: 'a delete that saw the file wins over it',
    versions: [version(A, { [A]: 1 }, 10), version(B, { [A]: 1, [B]: 1 }, 20, deleted)],
    winner: `${B}:deleted`,
    losers: []
  },
  {
    name: 'concurrent files: the later ts wins, the loser is kept as a copy',
    versions: [version(A, { [A]: 1 }, 20, { hash: HASH2 }), version(B, { [B]: 1 }, 10)],
    winner: `${A}:file`,
    losers: [[`${B}:file`, true]]
  },
  {
    name: 'concurrent files with equal ts: the larger author wins',
    versions: [version(B, { [B]: 1 }, 10, { hash: HASH2 }), version(A, { [A]: 1 }, 10)],
    winner: `${B}:file`,
    losers: [[`${A}:file`, true]]
  },
  {
    name: 'modify beats delete, even when the delete is later',
    versions: [version(A, { [A]: 2 }, 10), version(B, { [A]: 1, [B]: 1 }, 99, deleted)],
    winner: `${A}:file`,
    losers: [[`${B}:deleted`, false]]
  },
  {
    name: 'two concurrent deletes: one wins, nothing to keep',
    versions: [version(A, { [A]: 1 }, 10, deleted), version(B, { [B]: 1 }, 20, deleted)],
    winner: `${B}:deleted`,
    losers: [[`${A}:deleted`, false]]
  },
  {
    name: 'equal vectors on two drives are one version, not a conflict',
    versions: [version(A, { [A]: 1 }, 10), version(B, { [A]: 1 }, 10)],
    winner: `${B}:file`,
    losers: []
  },
  {
    name: 'three-way concurrency: latest wins, both others lose',
    versions: [version(A, { [A]: 1 }, 30, { hash: HASH2 }), version(B, { [B]: 1 }, 20), version(C, { [C]: 1 }, 10, deleted)],
    winner: `${A}:file`,
    losers: [
      [`${B}:file`, true],
      [`${C}:deleted`, false]
    ]
  },
  {
    name: 'three versions, one dominated: only the concurrent pair is in conflict',
    versions: [version(A, { [A]: 1 }, 5), version(B, { [A]: 1, [B]: 1 }, 20, { hash: HASH2 }), version(C, { [A]: 1, [C]: 1 }, 10)],
    winner: `${B}:file`,
    losers: [[`${C}:file`, true]]
  },
  {
    name: 'a losing dir is not copied',
    versions: [version(A, { [A]: 1 }, 20), version(B, { [B]: 1 }, 10, dir)],
    winner: `${A}:file`,
    losers: [[`${B}:dir`, false]]
  },
  {
    name: 'a file losing to a dir is copied',
    versions: [version(A, { [A]: 1 }, 20, dir), version(B, { [B]: 1 }, 10)],
    winner: `${A}:dir`,
    losers: [[`${B}:file`, true]]
  },
  {
    name: 'same hash and exec bit: no copy, even if other mode bits differ',
    versions: [version(A, { [A]: 1 }, 20, { mode: 0o600 }), version(B, { [B]: 1 }, 10, { mode: 0o644 })],
    winner: `${A}:file`,
    losers: [[`${B}:file`, false]]
  },
  {
    name: 'same hash, different exec bit: copy',
    versions: [version(A, { [A]: 1 }, 20, { mode: 0o755 }), version(B, { [B]: 1 }, 10, { mode: 0o644 })],
    winner: `${A}:file`,
    losers: [[`${B}:file`, true]]
  },
  {
    name: 'symlinks to the same target: no copy',
    versions: [version(A, { [A]: 1 }, 20, { kind: 'symlink' }), version(B, { [B]: 1 }, 10, { kind: 'symlink' })],
    winner: `${A}:symlink`,
    losers: [[`${B}:symlink`, false]]
  },
  // fault suite seed 10513: a write that failed on a full disk set the mtime of a file another
  // node deleted meanwhile; the touch was published and, as a modify, undid the delete
  {
    name: 'a touch (same content as it replaced) loses to a concurrent delete of that content, and is not kept',
    versions: [version(A, { [A]: 2 }, 99, { was: HASH1 }), version(B, { [A]: 1, [B]: 1 }, 10, { kind: 'deleted', was: HASH1 })],
    winner: `${B}:deleted`,
    losers: [[`${A}:file`, false]]
  },
  {
    name: 'but a real edit still beats that delete (modify beats delete)',
    versions: [version(A, { [A]: 2 }, 10, { hash: HASH2, was: HASH1 }), version(B, { [A]: 1, [B]: 1 }, 99, { kind: 'deleted', was: HASH1 })],
    winner: `${A}:file`,
    losers: [[`${B}:deleted`, false]]
  },
  {
    name: 'and a touch still beats a delete of other content',
    versions: [version(A, { [A]: 2 }, 10, { was: HASH1 }), version(B, { [A]: 1, [B]: 1 }, 99, { kind: 'deleted', was: HASH2 })],
    winner: `${A}:file`,
    losers: [[`${B}:deleted`, false]]
  },
  // fault suite seed 10509: a touch of a version B had already replaced on purpose (B's entry
  // since replaced again, naming it in its history)
  {
    name: 'a touch loses to a concurrent version whose author replaced that content earlier (replaced history)',
    versions: [version(A, { [A]: 2 }, 99, { was: HASH1 }), version(B, { [A]: 1, [B]: 3 }, 10, { hash: HASH2, was: '3'.repeat(64), replaced: [HASH1] })],
    winner: `${B}:file`,
    losers: [[`${A}:file`, false]]
  },
  {
    name: 'a withdrawn tombstone names no deleted content: the touch wins over it',
    versions: [version(A, { [A]: 2 }, 10, { was: HASH1 }), version(B, { [A]: 1, [B]: 1 }, 99, { kind: 'deleted', was: HASH1, withdrawn: true })],
    winner: `${A}:file`,
    losers: [[`${B}:deleted`, false]]
  },
  {
    name: 'two touches of the same content: the plain order decides, nothing kept twice',
    versions: [version(A, { [A]: 2 }, 10, { was: HASH1 }), version(B, { [A]: 1, [B]: 1 }, 20, { was: HASH1 })],
    winner: `${B}:file`,
    losers: [[`${A}:file`, false]]
  },
  {
    name: 'symlinks to different targets: copy',
    versions: [version(A, { [A]: 1 }, 20, { kind: 'symlink' }), version(B, { [B]: 1 }, 10, { kind: 'symlink', target: 'other' })],
    winner: `${A}:symlink`,
    losers: [[`${B}:symlink`, true]]
  }
]

describe('decide', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(summary(decide(c.versions))).toEqual({ winner: c.winner, losers: [...c.losers].sort() })
  })

  it('returns the winning Version object itself', () => {
    const win = version(A, { [A]: 1 }, 20)
    expect(decide([version(B, { [B]: 1 }, 10), win]).winner).toBe(win)
  })

  it('with equal ts and author, the larger drive key wins', () => {
    const low = version(A, { [A]: 1 }, 10, { drive: '1'.repeat(64), hash: HASH2 })
    const high = version(A, { [B]: 1 }, 10, { drive: '2'.repeat(64) })
    expect(decide([high, low]).winner).toBe(high)
    expect(decide([low, high]).winner).toBe(high)
  })

  it.each(cases.filter((c) => c.versions.length > 1).map((c) => [c.name, c] as const))('is order independent: %s', (_name, c) => {
    const expected = summary(decide(c.versions))
    for (const order of permutations(c.versions)) expect(summary(decide(order))).toEqual(expected)
  })
})

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]]
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]))
}

describe('conflictName', () => {
  const ts = Date.UTC(2024, 4, 7, 3, 4, 5, 999) // 2024-05-07 03:04:05.999 UTC
  const id = 'ABCDEFGHIJKLMNOP'

  it.each([
    ['a/b/photo.jpg', 'a/b/photo.sync-conflict-20240507-030405-ABCDEFG.jpg'],
    ['photo.jpg', 'photo.sync-conflict-20240507-030405-ABCDEFG.jpg'],
    ['README', 'README.sync-conflict-20240507-030405-ABCDEFG'],
    ['a.b/README', 'a.b/README.sync-conflict-20240507-030405-ABCDEFG'],
    ['.htaccess', '.sync-conflict-20240507-030405-ABCDEFG.htaccess'],
    ['x/.htaccess', 'x/.sync-conflict-20240507-030405-ABCDEFG.htaccess'],
    ['archive.tar.gz', 'archive.tar.sync-conflict-20240507-030405-ABCDEFG.gz']
  ])('%s → %s', (path, name) => {
    expect(conflictName(path, ts, id)).toBe(name)
  })

  it.each([
    [Date.UTC(2024, 11, 31, 23, 59, 59), '20241231-235959'],
    [Date.UTC(2000, 0, 1, 0, 0, 0), '20000101-000000'],
    [0, '19700101-000000']
  ])('ts %i is stamped %s', (stampTs, stamp) => {
    expect(conflictName('f.txt', stampTs, id)).toBe(`f.sync-conflict-${stamp}-ABCDEFG.txt`)
  })

  describe('in a far-off local time zone', () => {
    const saved = process.env.TZ
    afterEach(() => {
      if (saved === undefined) delete process.env.TZ
      else process.env.TZ = saved
    })

    it('still uses UTC, so every peer computes the same name', () => {
      process.env.TZ = 'Pacific/Kiritimati' // UTC+14
      expect(new Date(ts).getHours()).not.toBe(3) // the zone took effect
      expect(conflictName('f.txt', ts, id)).toBe('f.sync-conflict-20240507-030405-ABCDEFG.txt')
    })
  })

  it.each(['a/b/photo.jpg', 'README', '.htaccess', 'archive.tar.gz'])('the name of %s is a safe path in the same directory', (path) => {
    const name = conflictName(path, ts, id)
    expect(name).not.toBe(path)
    expect(findPathProblem(name)).toBeNull()
    expect(name.slice(0, name.lastIndexOf('/') + 1)).toBe(path.slice(0, path.lastIndexOf('/') + 1))
  })
})

describe('pickConflictName', () => {
  const ts = Date.UTC(2026, 10, 28, 22, 40, 43, 120)
  // fault suite seed 101: one device lost twice on one path within a second; both copies got
  // the same name and the second replaced the first, whose content was lost
  it('a name taken by another version moves the stamp on by a second', async () => {
    const taken = new Set([conflictName('t/single.php', ts, 'LRA3MLL')])
    const name = await pickConflictName('t/single.php', ts, 'LRA3MLL', async (n): Promise<NameUse> => (taken.has(n) ? 'taken' : 'free'))
    expect(name).toBe('t/single.sync-conflict-20261128-224044-LRA3MLL.php')
  })

  it('a name that already holds this content is reused (a retried withdrawal makes no second copy)', async () => {
    const name = await pickConflictName('t/single.php', ts, 'LRA3MLL', async (): Promise<NameUse> => 'same')
    expect(name).toBe('t/single.sync-conflict-20261128-224043-LRA3MLL.php')
  })

  it('a free name is the plain Syncthing name', async () => {
    expect(await pickConflictName('a.txt', ts, 'LRA3MLLX', async (): Promise<NameUse> => 'free')).toBe(conflictName('a.txt', ts, 'LRA3MLL'))
  })
})

describe('parseConflictName', () => {
  it('reads back the family path and the short id of every name conflictName makes', () => {
    for (const path of ['uploads/a.jpg', 'notes', 'a.b.c', 'themes/t0/style.min.css', '.htaccess', 'dir/.env.local']) {
      const name = conflictName(path, Date.UTC(2026, 0, 2, 3, 4, 5), 'ABCDEFGHIJ')
      expect(parseConflictName(name), name).toEqual({ family: path, shortId: 'ABCDEFG' })
    }
  })

  // fault suite seed 843: a copy of a copy of a file with no extension was read as a copy of the
  // original by the first copy's device, so its maker took its own fresh copy for a local delete
  it('reads a copy of a copy as a copy of the first copy, by the device that made it', () => {
    for (const path of ['uploads/notes', 'uploads/a.jpg', 'a.b.c', '.htaccess']) {
      const first = conflictName(path, Date.UTC(2026, 0, 2, 3, 4, 5), 'FIRSTID')
      const second = conflictName(first, Date.UTC(2026, 0, 2, 3, 4, 9), 'SECONDX')
      expect(parseConflictName(second), second).toEqual({ family: first, shortId: 'SECONDX' })
      expect(parseConflictName(first), first).toEqual({ family: path, shortId: 'FIRSTID' })
    }
  })

  it('is null for names that are not conflict copies', () => {
    for (const path of ['a.txt', 'a.sync-conflict-2026-ABCDEFG.txt', 'a.sync-conflict-20260102-030405-ABC.txt', 'dir/.sync-conflict-20260102-030405-ABCDEFG']) {
      expect(parseConflictName(path), path).toBeNull()
    }
  })
})
