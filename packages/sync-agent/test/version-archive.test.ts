import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createLogger } from '../src/log.js'
import { VersionArchive } from '../src/version-archive.js'

const log = createLogger('silent')
const T0 = Date.UTC(2026, 10, 30, 23, 15, 0)
const DAY = 24 * 3600_000

let base: string
beforeEach(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'sa-versions-')))
  mkdirSync(join(base, 'folder/uploads/2026/11'), { recursive: true })
})
afterEach(() => {
  rmSync(base, { recursive: true, force: true })
})

/** every file under `dir`, relative, sorted */
function files(dir: string): string[] {
  if (!existsSync(dir)) return []
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{ name: string; parentPath: string; isFile(): boolean }>)
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort()
}

describe('VersionArchive names', () => {
  it.each([
    ['uploads/2026/11/photo.jpg', 0, 'uploads/2026/11/photo~20261130-231500.jpg'],
    ['uploads/2026/11/photo.jpg', 2, 'uploads/2026/11/photo~20261130-231500-2.jpg'],
    ['backup.tar.gz', 0, 'backup.tar~20261130-231500.gz'],
    ['.htaccess', 0, '.htaccess~20261130-231500'],
    ['themes/x/README', 0, 'themes/x/README~20261130-231500']
  ])('%s (attempt %i) → %s, and back to its time', (path, attempt, name) => {
    expect(VersionArchive.nameFor(path, T0 + 999, attempt)).toBe(name)
    expect(VersionArchive.madeAt(name.slice(name.lastIndexOf('/') + 1))).toBe(T0)
  })

  it('a name that is not a version has no time', () => {
    expect(VersionArchive.madeAt('photo.jpg')).toBeNull()
    expect(VersionArchive.madeAt('photo~2026-11-30.jpg')).toBeNull()
  })

  it.each([
    ['photo~20261130-231500.jpg', 'photo.jpg', 0, '20261130-231500'],
    ['photo~20261130-231500-12.jpg', 'photo.jpg', 12, '20261130-231500-12'],
    ['backup.tar~20261130-231500.gz', 'backup.tar.gz', 0, '20261130-231500'],
    ['.htaccess~20261130-231500', '.htaccess', 0, '20261130-231500'],
    // a file whose own name looks like a version: only the last stamp is the version's
    ['a~20200101-000000~20261130-231500.txt', 'a~20200101-000000.txt', 0, '20261130-231500']
  ])('%s is a version of %s (-%i, stamp %s)', (name, original, attempt, stamp) => {
    expect(VersionArchive.parse(`uploads/${name}`)).toEqual({ original, madeAt: T0, attempt, stamp })
  })
})

describe('VersionArchive.list', () => {
  const write = (rel: string, content: string) => {
    const abs = join(base, 'versions', rel)
    mkdirSync(join(abs, '..'), { recursive: true })
    writeFileSync(abs, content)
  }
  beforeEach(() => {
    write('uploads/2026/11/cat~20261130-231500.jpg', 'v1')
    write('uploads/2026/11/cat~20261130-231500-1.jpg', 'v2')
    write('uploads/2026/11/cat~20261201-080000.jpg', 'v3')
    write('uploads/2026/11/dog~20261130-231500.jpg', 'dog')
    write('uploads/2026/11/not-a-version.jpg', 'x')
    write('themes/t~20261130-231500', 'a file once named like the directory')
    write('themes/t/style~20261130-231500.css', 'css')
  })
  const listed = async (path: string, limit = 100) => {
    const archive = new VersionArchive(join(base, 'versions'), 30, log)
    const { versions, truncated } = await archive.list(path, limit)
    return { names: versions.map((v) => v.name), truncated, versions }
  }

  it("a file's versions: newest first, a later one in the same second before the first, with size, mtime and the time in its name", async () => {
    const { names, versions } = await listed('uploads/2026/11/cat.jpg')
    expect(names).toEqual(['uploads/2026/11/cat~20261201-080000.jpg', 'uploads/2026/11/cat~20261130-231500-1.jpg', 'uploads/2026/11/cat~20261130-231500.jpg'])
    expect(versions[1]).toEqual({
      path: 'uploads/2026/11/cat.jpg',
      name: 'uploads/2026/11/cat~20261130-231500-1.jpg',
      stamp: '20261130-231500-1',
      madeAt: '2026-11-30T23:15:00Z',
      size: 2,
      mtimeMs: lstatSync(join(base, 'versions/uploads/2026/11/cat~20261130-231500-1.jpg')).mtimeMs
    })
  })

  it("a directory's: everything under it by path, and a file of its name; the whole archive for ''", async () => {
    expect((await listed('uploads')).names).toEqual([
      'uploads/2026/11/cat~20261201-080000.jpg',
      'uploads/2026/11/cat~20261130-231500-1.jpg',
      'uploads/2026/11/cat~20261130-231500.jpg',
      'uploads/2026/11/dog~20261130-231500.jpg'
    ])
    expect((await listed('themes/t')).names).toEqual(['themes/t~20261130-231500', 'themes/t/style~20261130-231500.css'])
    expect((await listed('')).names).toHaveLength(6)
    expect(await listed('plugins')).toMatchObject({ names: [], truncated: false })
  })

  it('stops at the limit and says so', async () => {
    expect(await listed('', 2)).toMatchObject({ names: expect.any(Array), truncated: true })
    expect((await listed('', 2)).names).toHaveLength(2)
    expect((await listed('', 6)).truncated).toBe(false)
  })
})

describe('VersionArchive', () => {
  let now = T0
  const archiveAt = async (keepDays = 30) => {
    const archive = new VersionArchive(join(base, 'versions'), keepDays, log, () => now)
    await archive.ready()
    return archive
  }
  beforeEach(() => {
    now = T0
  })

  it('keeps a file about to be replaced by a hard link (same inode, no copy), a second one that second under -1', async () => {
    const archive = await archiveAt()
    const abs = join(base, 'folder/uploads/2026/11/photo.jpg')
    writeFileSync(abs, 'v1')
    const ino = lstatSync(abs).ino
    const kept = await archive.keepBeforeReplace(abs, 'uploads/2026/11/photo.jpg')
    expect(kept).toBe(join(base, 'versions/uploads/2026/11/photo~20261130-231500.jpg'))
    expect(lstatSync(kept as string).ino).toBe(ino)
    // the replacement: a rename over the name, as the folder writer does
    writeFileSync(abs + '.tmp', 'v2')
    renameSync(abs + '.tmp', abs)
    expect(await archive.keepBeforeReplace(abs, 'uploads/2026/11/photo.jpg')).toMatch(/photo~20261130-231500-1\.jpg$/)
    expect(readFileSync(kept as string, 'utf8')).toBe('v1')
    expect(readFileSync(join(base, 'versions/uploads/2026/11/photo~20261130-231500-1.jpg'), 'utf8')).toBe('v2')
    expect(archive.kept).toBe(2)
    await archive.close()
  })

  it('takes a version back when its replacement did not happen', async () => {
    const archive = await archiveAt()
    const abs = join(base, 'folder/index.php')
    writeFileSync(abs, '<?php')
    const kept = await archive.keepBeforeReplace(abs, 'index.php')
    await archive.unkeep(kept as string)
    expect(files(join(base, 'versions'))).toEqual([])
    expect(archive.kept).toBe(0)
    await archive.close()
  })

  it('moves a deleted file in, with its content and mtime', async () => {
    const archive = await archiveAt()
    const aside = join(base, 'folder/.aside')
    writeFileSync(aside, 'deleted on a peer')
    const mtimeMs = lstatSync(aside).mtimeMs
    expect(await archive.moveIn(aside, 'uploads/2026/11/gone.png')).toBe(true)
    expect(existsSync(aside)).toBe(false)
    const version = join(base, 'versions/uploads/2026/11/gone~20261130-231500.png')
    expect(readFileSync(version, 'utf8')).toBe('deleted on a peer')
    expect(lstatSync(version).mtimeMs).toBe(mtimeMs)
    await archive.close()
  })

  it('a file it cannot keep is reported, not thrown: the caller goes on', async () => {
    const archive = await archiveAt()
    expect(await archive.keepBeforeReplace(join(base, 'folder/missing.txt'), 'missing.txt')).toBeNull()
    expect(await archive.moveIn(join(base, 'folder/missing.txt'), 'missing.txt')).toBe(false)
    // and no directory is made for a file that is not there
    expect(await archive.keepBeforeReplace(join(base, 'folder/uploads/2026/11/missing.jpg'), 'uploads/2026/11/missing.jpg')).toBeNull()
    expect(existsSync(join(base, 'versions/uploads'))).toBe(false)
    await archive.close()
  })

  it('removes versions older than keepDays (by the time in their names), the directories that leaves empty, and nothing else', async () => {
    const archive = await archiveAt(30)
    const keep = async (path: string, content: string) => {
      const abs = join(base, 'folder', path)
      writeFileSync(abs, content)
      await archive.keepBeforeReplace(abs, path)
    }
    await keep('uploads/2026/11/old.jpg', 'old')
    now = T0 + 20 * DAY
    await keep('uploads/2026/11/newer.jpg', 'newer')
    await keep('index.php', 'php')
    writeFileSync(join(base, 'versions/notes.txt'), 'not a version')
    now = T0 + 31 * DAY
    expect(await archive.sweep()).toBe(1)
    expect(files(join(base, 'versions'))).toEqual(['index~20261220-231500.php', 'notes.txt', 'uploads/2026/11/newer~20261220-231500.jpg'])
    now = T0 + 51 * DAY
    expect(await archive.sweep()).toBe(2)
    expect(files(join(base, 'versions'))).toEqual(['notes.txt'])
    expect(existsSync(join(base, 'versions/uploads'))).toBe(false)
    await archive.close()
  })

  it('keepDays 0 keeps every version', async () => {
    const archive = await archiveAt(0)
    const abs = join(base, 'folder/a.txt')
    writeFileSync(abs, 'a')
    await archive.keepBeforeReplace(abs, 'a.txt')
    now = T0 + 10_000 * DAY
    expect(await archive.sweep()).toBe(0)
    expect(files(join(base, 'versions'))).toEqual(['a~20261130-231500.txt'])
    await archive.close()
  })

  it('a versions dir it cannot make is a config error naming the setting', async () => {
    writeFileSync(join(base, 'file'), 'x')
    const archive = new VersionArchive(join(base, 'file/versions'), 30, log)
    await expect(archive.ready()).rejects.toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(/^versionsDir: cannot keep versions in .*file\/versions \(ENOTDIR\)$/) })
  })
})
