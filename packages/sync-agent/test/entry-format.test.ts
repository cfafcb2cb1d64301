import { describe, expect, it } from 'vitest'
import type { DriveEntry } from 'hyperdrive'
import { SyncError } from '@sync-agent/shared'
import { isRequestedDelete, metaOf, readVersion, sameContent, type EntryMeta, type Version } from '../src/entry-format.js'

const AUTHOR = 'AAAAAAAAAAAAAAAA'
const OTHER = 'BBBBBBBBBBBBBBBB'
const DRIVE = 'd'.repeat(64)
const HASH = 'ab'.repeat(32)

function blobOf(byteLength: number) {
  return { blockOffset: 0, blockLength: 1, byteOffset: 0, byteLength }
}

/** A valid 5-byte file entry at `/uploads/a.jpg`, with overrides. */
function entry(meta: Partial<EntryMeta> | null | Record<string, unknown> = {}, value: Record<string, unknown> = {}, key = '/uploads/a.jpg'): DriveEntry<unknown> {
  const fullMeta =
    meta === null ? null : { v: 1, vv: { [AUTHOR]: 3 }, ts: 1_700_000_000_000, kind: 'file', size: 5, mtime: 1_699_999_999_000, mode: 0o644, hash: HASH, ...meta }
  return { seq: 1, key, value: { executable: false, linkname: null, blob: blobOf(5), metadata: fullMeta, ...value } }
}

function rejection(e: DriveEntry<unknown>): SyncError {
  try {
    readVersion(DRIVE, AUTHOR, e)
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError)
    return err as SyncError
  }
  throw new Error('readVersion accepted the entry')
}

describe('readVersion accepts', () => {
  it('a file', () => {
    expect(readVersion(DRIVE, AUTHOR, entry())).toEqual({
      drive: DRIVE,
      author: AUTHOR,
      path: 'uploads/a.jpg',
      vv: { [AUTHOR]: 3 },
      ts: 1_700_000_000_000,
      kind: 'file',
      size: 5,
      mtime: 1_699_999_999_000,
      mode: 0o644,
      hash: HASH,
      target: null,
      blob: blobOf(5),
      at: 0,
      was: null,
      replaced: [],
      withdrawn: false,
      copy: false
    })
  })

  it('a small file packed into a shared block, with its offset', () => {
    const v = readVersion(DRIVE, AUTHOR, entry({ at: 4096 }))
    expect(v.at).toBe(4096)
  })

  it('an empty file without a blob', () => {
    const v = readVersion(DRIVE, AUTHOR, entry({ size: 0 }, { blob: null }))
    expect(v.size).toBe(0)
    expect(v.blob).toBeNull()
  })

  it('a file whose vector also names other devices', () => {
    expect(readVersion(DRIVE, AUTHOR, entry({ vv: { [AUTHOR]: 1, [OTHER]: 7 } })).vv).toEqual({ [AUTHOR]: 1, [OTHER]: 7 })
  })

  it('a dir (hash and blob ignored)', () => {
    const v = readVersion(DRIVE, AUTHOR, entry({ kind: 'dir', size: 0, mode: 0o755, hash: null }, { blob: null }, '/uploads'))
    expect(v).toMatchObject({ kind: 'dir', path: 'uploads', hash: null, target: null, blob: null })
  })

  it('a symlink', () => {
    const v = readVersion(DRIVE, AUTHOR, entry({ kind: 'symlink', size: 0, mode: 0o777, hash: null }, { blob: null, linkname: '../b.jpg' }))
    expect(v).toMatchObject({ kind: 'symlink', target: '../b.jpg', hash: null, blob: null })
  })

  it('a delete (tombstone)', () => {
    const v = readVersion(DRIVE, AUTHOR, entry({ kind: 'deleted', size: 0, mode: 0, hash: null }, { blob: null }))
    expect(v).toMatchObject({ kind: 'deleted', hash: null, target: null, blob: null, was: null })
  })

  it('a withdrawn loser (a tombstone with the mark), which is not a requested delete', () => {
    const e = entry({ kind: 'deleted', size: 0, mode: 0, hash: null, withdrawn: true } as Record<string, unknown>, { blob: null })
    expect(readVersion(DRIVE, AUTHOR, e).kind).toBe('deleted')
    expect(isRequestedDelete(e.value.metadata as EntryMeta)).toBe(false)
    expect(isRequestedDelete({ ...(e.value.metadata as EntryMeta), withdrawn: undefined })).toBe(true)
    expect(isRequestedDelete(entry().value.metadata as EntryMeta)).toBe(false)
  })

  it('a delete or an edit that names the content it replaced', () => {
    expect(readVersion(DRIVE, AUTHOR, entry({ kind: 'deleted', size: 0, mode: 0, hash: null, was: HASH }, { blob: null })).was).toBe(HASH)
    expect(readVersion(DRIVE, AUTHOR, entry({ was: 'cd'.repeat(32) })).was).toBe('cd'.repeat(32))
  })

  it('a conflict copy its author made carries the mark', () => {
    expect(readVersion(DRIVE, AUTHOR, entry({ copy: true })).copy).toBe(true)
    expect(readVersion(DRIVE, AUTHOR, entry()).copy).toBe(false)
  })

  it('an entry that carries the older contents its author replaced there (up to 8)', () => {
    const eight = Array.from({ length: 8 }, (_, i) => String(i).repeat(64))
    expect(readVersion(DRIVE, AUTHOR, entry({ was: HASH, replaced: eight })).replaced).toEqual(eight)
  })

  it('a file of exactly 2^44 bytes', () => {
    expect(readVersion(DRIVE, AUTHOR, entry({ size: 2 ** 44 }, { blob: blobOf(2 ** 44) })).size).toBe(2 ** 44)
  })

  it('round-trips its metadata through metaOf', () => {
    const e = entry()
    expect(metaOf(readVersion(DRIVE, AUTHOR, e))).toEqual(e.value.metadata)
  })
})

describe('readVersion rejects', () => {
  it.each<[string, DriveEntry<unknown>, RegExp]>([
    ['missing metadata', entry(null), /no sync-agent metadata/],
    ['metadata that is not an object', entry(null, { metadata: 'file' }), /no sync-agent metadata/],
    ['metadata version 2', entry({ v: 2 } as Record<string, unknown>), /no sync-agent metadata/],
    ['an unknown kind', entry({ kind: 'socket' } as Record<string, unknown>), /unknown kind/],
    ['a vector that is not a vector', entry({ vv: [1] } as Record<string, unknown>), /version vector/],
    ['an empty vector', entry({ vv: {} }), /version vector/],
    ['a vector with a bad key', entry({ vv: { author: 1 } }), /version vector/],
    ['a vector that does not name the author', entry({ vv: { [OTHER]: 1 } }), /does not name its author/],
    ['a negative content offset', entry({ at: -1 }), /content offset/],
    ['a fractional content offset', entry({ at: 0.5 }), /content offset/],
    ['a content offset beyond any block', entry({ at: 2 ** 40 }), /content offset/],
    ['a content offset in a multi-block blob', entry({ at: 10 }, { blob: { ...blobOf(5), blockLength: 2 } }), /multi-block/],
    ['a file blob with no blocks', entry({}, { blob: { ...blobOf(5), blockLength: 0 } }), /without blocks/],
    ['a negative timestamp', entry({ ts: -1 }), /timestamp/],
    ['a fractional timestamp', entry({ ts: 1.5 }), /timestamp/],
    ['a negative size', entry({ size: -1 }), /size/],
    ['a fractional size', entry({ size: 1.5 }), /size/],
    ['a size over 2^44', entry({ size: 2 ** 44 + 1 }, { blob: blobOf(2 ** 44 + 1) }), /size/],
    ['a string size', entry({ size: '5' } as Record<string, unknown>), /size/],
    ['a negative mtime', entry({ mtime: -1 }), /mtime/],
    ['an infinite mtime', entry({ mtime: Infinity }), /mtime/],
    ['a negative mode', entry({ mode: -1 }), /mode/],
    ['a mode with setuid', entry({ mode: 0o4755 }), /mode/],
    ['a fractional mode', entry({ mode: 0.5 }), /mode/],
    ['a blob of a different size', entry({ size: 5 }, { blob: blobOf(6) }), /blob size 6 differs from metadata size 5/],
    ['a file without a blob', entry({}, { blob: null }), /without a blob/],
    ['a file with a malformed blob', entry({}, { blob: { byteLength: 5 } }), /without a blob/],
    ['an empty file with a malformed blob', entry({ size: 0 }, { blob: { byteLength: -1 } }), /blob/],
    ['a file without a hash', entry({ hash: null }), /hash/],
    ['a short hash', entry({ hash: 'ab'.repeat(31) }), /hash/],
    ['an upper-case hash', entry({ hash: 'AB'.repeat(32) }), /hash/],
    ['a non-hex hash', entry({ hash: 'zz'.repeat(32) }), /hash/],
    ['a symlink without a target', entry({ kind: 'symlink', size: 0, hash: null }, { blob: null, linkname: null }), /symlink target/],
    ['a symlink with an empty target', entry({ kind: 'symlink', size: 0, hash: null }, { blob: null, linkname: '' }), /symlink target/],
    ['a symlink target with NUL', entry({ kind: 'symlink', size: 0, hash: null }, { blob: null, linkname: 'a\0b' }), /symlink target/],
    ['a malformed replaced-content hash', entry({ kind: 'deleted', size: 0, mode: 0, hash: null, was: 'ab' }, { blob: null }), /replaced-content hash/],
    ['a withdrawal mark on a file', entry({ withdrawn: true } as Record<string, unknown>), /withdrawal mark/],
    ['a withdrawal mark that is not true', entry({ kind: 'deleted', size: 0, mode: 0, hash: null, withdrawn: 1 } as Record<string, unknown>, { blob: null }), /withdrawal mark/],
    ['a replaced-content hash that is not a string', entry({ was: 5 } as Record<string, unknown>), /replaced-content hash/],
    ['a conflict-copy mark that is not true', entry({ copy: 1 } as Record<string, unknown>), /conflict-copy mark/],
    ['a conflict-copy mark on a delete', entry({ kind: 'deleted', size: 0, mode: 0, hash: null, copy: true } as Record<string, unknown>, { blob: null }), /conflict-copy mark/],
    ['a replaced-content history that is not a list', entry({ replaced: HASH } as Record<string, unknown>), /replaced-content history/],
    ['a replaced-content history over 8 hashes', entry({ replaced: Array.from({ length: 9 }, () => HASH) }), /replaced-content history/],
    ['a malformed hash in the replaced-content history', entry({ replaced: [HASH, 'AB'.repeat(32)] }), /replaced-content history/],
    ['a symlink target over 4096 bytes', entry({ kind: 'symlink', size: 0, hash: null }, { blob: null, linkname: 'a'.repeat(4097) }), /symlink target/]
  ])('%s as E_PEER_PROTOCOL', (_name, e, message) => {
    const err = rejection(e)
    expect(err.code).toBe('E_PEER_PROTOCOL')
    expect(err.message).toMatch(message)
  })

  it.each([
    ['a traversal', '/../x'],
    ['a nested traversal', '/a/../../x'],
    ['an empty segment', '/a//b'],
    ['a key without the leading slash', 'a/b'],
    ['a backslash', '/a\\b'],
    ['a temp name', '/a/.syncagent-tmp-1'],
    ['the root .syncignore', '/.syncignore'],
    ['an empty key', '']
  ])('%s in the key as E_PATH_UNSAFE', (_name, key) => {
    expect(rejection(entry({}, {}, key)).code).toBe('E_PATH_UNSAFE')
  })
})

describe('sameContent', () => {
  type C = Pick<Version, 'kind' | 'hash' | 'target' | 'mode'>
  const file = (hash: string, mode: number): C => ({ kind: 'file', hash, target: null, mode })
  const link = (target: string): C => ({ kind: 'symlink', hash: null, target, mode: 0o777 })
  const dir: C = { kind: 'dir', hash: null, target: null, mode: 0o755 }
  const gone: C = { kind: 'deleted', hash: null, target: null, mode: 0 }

  it.each<[string, C, C, boolean]>([
    ['same hash and mode', file(HASH, 0o644), file(HASH, 0o644), true],
    ['same hash, different non-exec bits', file(HASH, 0o644), file(HASH, 0o600), true],
    ['same hash, exec bit differs', file(HASH, 0o755), file(HASH, 0o644), false],
    ['same hash, only group exec differs', file(HASH, 0o654), file(HASH, 0o644), false],
    ['different hash', file(HASH, 0o644), file('cd'.repeat(32), 0o644), false],
    ['file vs dir', file(HASH, 0o755), dir, false],
    ['dir vs dir with other modes', dir, { ...dir, mode: 0o700 }, true],
    ['two deletes', gone, gone, true],
    ['dir vs delete', dir, gone, false],
    ['same symlink target', link('a'), link('a'), true],
    ['different symlink target', link('a'), link('b'), false]
  ])('%s → %s', (_name, a, b, same) => {
    expect(sameContent(a, b)).toBe(same)
    expect(sameContent(b, a)).toBe(same)
  })
})
