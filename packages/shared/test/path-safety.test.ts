import { describe, expect, it } from 'vitest'
import { SyncError } from '../src/errors.js'
import { findPathProblem, fromDriveKey, parentOf, toDriveKey, topLevelDir, type PathProblem } from '../src/path-safety.js'

const longSegment = (bytes: number) => 'a'.repeat(bytes)
/** 20 segments of 200 bytes, then one more segment to reach `bytes` in total. */
const pathOfBytes = (bytes: number) => Array.from({ length: 20 }, () => longSegment(200)).join('/') + '/' + longSegment(bytes - 4020)

describe('findPathProblem', () => {
  it.each<[string, string, PathProblem]>([
    ['parent traversal at the start', '../x', 'dot-segment'],
    ['parent traversal in the middle', 'a/../b', 'dot-segment'],
    ['parent traversal at the end', 'a/..', 'dot-segment'],
    ['just ..', '..', 'dot-segment'],
    ['just .', '.', 'dot-segment'],
    ['a . segment', 'a/./b', 'dot-segment'],
    ['absolute', '/abs', 'absolute'],
    ['absolute root', '/', 'absolute'],
    ['Windows drive with backslash', 'C:\\x', 'backslash'],
    ['Windows drive with slash', 'C:/x', 'drive-letter'],
    ['lower-case drive letter', 'd:x', 'drive-letter'],
    ['backslash', 'a\\b', 'backslash'],
    ['NUL', 'a\0b', 'nul'],
    ['double slash', 'a//b', 'empty-segment'],
    ['trailing slash', 'a/b/', 'empty-segment'],
    ['empty', '', 'empty'],
    ['segment of 256 ASCII bytes', `dir/${longSegment(256)}`, 'segment-too-long'],
    ['segment of 128 two-byte chars (256 bytes)', 'é'.repeat(128), 'segment-too-long'],
    ['segment of 86 three-byte chars (258 bytes)', '✓'.repeat(86), 'segment-too-long'],
    ['path of 4097 bytes', pathOfBytes(4097), 'too-long'],
    ['path of 4117 bytes but only 2067 chars (é is two bytes)', Array.from({ length: 17 }, () => 'é'.repeat(120)).join('/') + '/' + 'é'.repeat(10), 'too-long'],
    ['lone high surrogate', 'a\uD800b', 'invalid-utf8'],
    ['lone low surrogate', 'a/\uDC00', 'invalid-utf8'],
    ['replacement character', 'caf\uFFFD.txt', 'invalid-utf8'],
    ['tab', 'a\tb', 'control-character'],
    ['newline', 'a\nb', 'control-character'],
    ['escape', 'a\x1bb', 'control-character'],
    ['DEL', 'a\x7fb', 'control-character'],
    ['temp name at the root', '.syncagent-tmp-x', 'reserved-name'],
    ['temp name deep down', 'a/b/.syncagent-tmp-123', 'reserved-name'],
    ['temp name as a directory', 'a/.syncagent-tmp-x/b', 'reserved-name'],
    ['.syncignore at the root', '.syncignore', 'reserved-name']
  ])('%s: %j → %s', (_name, path, problem) => {
    expect(findPathProblem(path)).toBe(problem)
  })

  it.each([
    ['a nested upload', 'uploads/2024/05/cat.jpg'],
    ['unicode names', 'ünïcødé ✓/файл 1.txt'],
    ['spaces', 'my folder/my file.txt'],
    ['a dotfile', '.htaccess'],
    ['a nested dotfile', 'plugins/x/.htaccess'],
    ['.syncignore below the root', 'sub/.syncignore'],
    ['dots inside names', 'a..b/c...d'],
    ['a colon not at the start', 'a/C:x'],
    ['a 255-byte segment', longSegment(255)],
    ['a 255-byte segment of multi-byte chars', 'a' + 'é'.repeat(127)],
    ['a path of exactly 4096 bytes', pathOfBytes(4096)],
    ['a name that merely contains the temp prefix', 'x.syncagent-tmp-y']
  ])('%s is safe', (_name, path) => {
    expect(findPathProblem(path)).toBeNull()
  })
})

describe('drive keys', () => {
  it.each([
    ['uploads/a.jpg', '/uploads/a.jpg'],
    ['index.php', '/index.php']
  ])('%s ↔ %s', (relative, key) => {
    expect(toDriveKey(relative)).toBe(key)
    expect(fromDriveKey(key)).toBe(relative)
  })

  it.each([
    ['no leading slash', 'uploads/a.jpg'],
    ['traversal', '/../x'],
    ['double leading slash', '//etc/passwd'],
    ['empty segment', '/a//b'],
    ['root only', '/'],
    ['NUL', '/a\0b']
  ])('fromDriveKey rejects %s with E_PATH_UNSAFE', (_name, key) => {
    let error: unknown
    try {
      fromDriveKey(key)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(SyncError)
    expect((error as SyncError).code).toBe('E_PATH_UNSAFE')
  })
})

describe('topLevelDir', () => {
  it.each([
    ['uploads/2024/a.jpg', 'uploads'],
    ['plugins/x', 'plugins'],
    ['index.php', '.']
  ])('%s → %s', (path, dir) => {
    expect(topLevelDir(path)).toBe(dir)
  })
})

describe('parentOf', () => {
  it.each([
    ['uploads/2024/a.jpg', 'uploads/2024'],
    ['uploads/a.jpg', 'uploads'],
    ['index.php', '']
  ])('%s → %j', (path, parent) => {
    expect(parentOf(path)).toBe(parent)
  })
})
