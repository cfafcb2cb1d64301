import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FolderWriter } from '../src/folder-writer.js'
import { createLogger } from '../src/log.js'
import { VersionArchive } from '../src/version-archive.js'
import { folderPathOf, VersionRestore } from '../src/version-restore.js'

const log = createLogger('silent')
const T0 = Date.UTC(2026, 10, 30, 23, 15, 0)

let base: string
let root: string
beforeEach(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'sa-restore-')))
  root = join(base, 'folder')
  mkdirSync(join(root, 'uploads'), { recursive: true })
})
afterEach(() => {
  rmSync(base, { recursive: true, force: true })
})

describe('folderPathOf', () => {
  it.each([
    ['uploads/cat.jpg', 'uploads/cat.jpg'],
    ['./uploads/', 'uploads'],
    ['', ''],
    ['.', ''],
    ['/f/uploads/cat.jpg', 'uploads/cat.jpg'],
    ['/f', '']
  ])('%j → %j', (input, path) => {
    expect(folderPathOf('/f', input)).toBe(path)
  })

  it.each([
    ['../etc/passwd', /"\.\." segment/],
    ['/etc/passwd', /^\/etc\/passwd is not inside the folder \/f$/],
    ['/fx/a', /is not inside the folder/],
    ['uploads//cat.jpg', /empty segment/],
    ['.syncagent-tmp-staging/x', /reserved/]
  ])('%j is refused: %s', (input, message) => {
    expect(() => folderPathOf('/f', input)).toThrow(expect.objectContaining({ code: 'E_PATH_UNSAFE', message: expect.stringMatching(message) }))
  })
})

describe('VersionRestore', () => {
  let now = T0
  let restored: string[]
  const setUp = async (keep = true) => {
    const writer = new FolderWriter(root)
    await writer.prepareStaging()
    const archive = keep ? new VersionArchive(join(base, 'versions'), 0, log, () => now) : null
    await archive?.ready()
    if (archive) writer.archive = archive
    restored = []
    return { writer, archive, restore: new VersionRestore(archive, writer, (p) => restored.push(p), log) }
  }
  /** a version as the archive keeps it: a file named with its stamp */
  const keep = (path: string, content: string, at: number, mode = 0o644) => {
    const abs = join(base, 'versions', VersionArchive.nameFor(path, at))
    mkdirSync(join(abs, '..'), { recursive: true })
    writeFileSync(abs, content)
    chmodSync(abs, mode)
    return abs
  }
  beforeEach(() => {
    now = T0 + 3600_000
  })

  it('puts the newest version back (bytes, mode, mtime), keeps the file it replaces, and hands the path to the engine', async () => {
    const { restore } = await setUp()
    keep('uploads/cat.jpg', 'v1', T0)
    const v2 = keep('uploads/cat.jpg', 'v2', T0 + 60_000, 0o755)
    writeFileSync(join(root, 'uploads/cat.jpg'), 'v3')
    const result = await restore.restore({ path: 'uploads/cat.jpg' })
    expect(result).toMatchObject({ path: 'uploads/cat.jpg', restored: { stamp: '20261130-231600' }, replacedKeptAs: 'uploads/cat~20261201-001500.jpg' })
    const st = lstatSync(join(root, 'uploads/cat.jpg'))
    expect(readFileSync(join(root, 'uploads/cat.jpg'), 'utf8')).toBe('v2')
    expect(st.mode & 0o777).toBe(0o755)
    expect(Math.abs(st.mtimeMs - lstatSync(v2).mtimeMs)).toBeLessThan(1)
    // a copy: the version stays as it was, whatever the site does to the file now
    expect(st.ino).not.toBe(lstatSync(v2).ino)
    expect(readFileSync(join(base, 'versions/uploads/cat~20261201-001500.jpg'), 'utf8')).toBe('v3')
    expect(restored).toEqual(['uploads/cat.jpg'])
  })

  it('by stamp or name; a deleted file comes back where nothing is', async () => {
    const { restore } = await setUp()
    const v1 = keep('uploads/cat.jpg', 'v1', T0)
    keep('uploads/cat.jpg', 'v2', T0 + 60_000)
    expect((await restore.restore({ path: 'uploads/cat.jpg', version: '20261130-231500' })).replacedKeptAs).toBeNull()
    expect(readFileSync(join(root, 'uploads/cat.jpg'), 'utf8')).toBe('v1')
    expect(existsSync(v1)).toBe(true)
    await restore.restore({ path: join(root, 'uploads/cat.jpg'), version: 'uploads/cat~20261130-231600.jpg' })
    expect(readFileSync(join(root, 'uploads/cat.jpg'), 'utf8')).toBe('v2')
  })

  it('refuses, changing nothing: no such version, a directory in the way, a file that changed meanwhile, no archive', async () => {
    const { restore, writer } = await setUp()
    keep('uploads/cat.jpg', 'v1', T0)
    keep('uploads/dir', 'a file once', T0)
    await expect(restore.restore({ path: 'uploads/dog.jpg' })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringMatching(/^no version of uploads\/dog\.jpg is kept in /) })
    await expect(restore.restore({ path: 'uploads/cat.jpg', version: '20200101-000000' })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: 'no version "20200101-000000" of uploads/cat.jpg; kept: 20261130-231500' })
    await expect(restore.restore({ path: '' })).rejects.toMatchObject({ code: 'E_USAGE' })
    mkdirSync(join(root, 'uploads/dir'))
    await expect(restore.restore({ path: 'uploads/dir' })).rejects.toMatchObject({ code: 'E_REFUSED', message: 'uploads/dir is a directory here: move it away first' })
    symlinkSync('dir', join(root, 'uploads/cat.jpg'))
    await expect(restore.restore({ path: 'uploads/cat.jpg' })).rejects.toMatchObject({ code: 'E_REFUSED', message: 'uploads/cat.jpg is not a regular file here: move it away first' })
    rmSync(join(root, 'uploads/cat.jpg'))
    // the site writes the file between the restore's look and the writer's rename: its write stays
    writeFileSync(join(root, 'uploads/cat.jpg'), 'before')
    const seen = lstatSync(join(root, 'uploads/cat.jpg'))
    writeFileSync(join(root, 'uploads/cat.jpg'), 'the site wrote this')
    writer.lstatOrNull = async () => seen
    await expect(restore.restore({ path: 'uploads/cat.jpg' })).rejects.toMatchObject({ code: 'E_REFUSED', message: 'uploads/cat.jpg changed while it was being restored: nothing was replaced; try again' })
    expect(readFileSync(join(root, 'uploads/cat.jpg'), 'utf8')).toBe('the site wrote this')
    expect(restored).toEqual([])
    const none = (await setUp(false)).restore
    await expect(none.restore({ path: 'uploads/cat.jpg' })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: 'this agent keeps no versions (versionsDir is not set)' })
    expect(await none.list('')).toEqual({ dir: null, versions: [], truncated: false })
  })
})
