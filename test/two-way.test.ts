import fs from 'node:fs/promises'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { sha256, type Tree } from './helpers/tree.ts'

/** Links pointing outside the folder exist on A only, by design. */
const OUTSIDE_LINKS = ['links/outside', 'links/escape']

/**
 * One pair of running agents for the whole file; each test makes a change on one or both
 * sides and waits until both folders are equal again. Tests run in order and build on the
 * state left by the previous ones.
 */
describe('two-way sync between running agents', () => {
  const harness = useHarness()
  let a: Agent
  let b: Agent

  /** `alsoIgnore`: paths another test owns, so one failure does not fail every later test. */
  const converge = async (alsoIgnore: (p: string) => boolean = () => false): Promise<[Tree, Tree]> => {
    const { trees } = await waitConverged([a, b], { timeoutMs: 30_000, ignore: (p) => OUTSIDE_LINKS.includes(p) || alsoIgnore(p) })
    return [trees[0]!, trees[1]!]
  }
  const fileOf = (agent: Agent, rel: string): string => path.join(agent.folder, rel)

  beforeAll(async () => {
    ;[a, b] = await harness.startPair({
      seedA: (folder) => writeFiles(folder, { 'seed.txt': 'seed\n', 'docs/readme.md': '# docs\n' })
    })
    await converge()
  })

  it('files created on A and on B at the same time end up on both', async () => {
    await Promise.all([
      writeFiles(a.folder, { 'from-a.txt': 'made on A\n', 'nested/from-a/deep/x.txt': 'deep A\n' }),
      writeFiles(b.folder, { 'from-b.txt': 'made on B\n', 'nested/from-b/deep/y.txt': 'deep B\n' })
    ])
    const [treeA] = await converge()
    for (const p of ['from-a.txt', 'from-b.txt', 'nested/from-a/deep/x.txt', 'nested/from-b/deep/y.txt']) {
      expect(treeA.get(p)?.type, p).toBe('file')
    }
    expect(await fs.readFile(fileOf(b, 'from-a.txt'), 'utf8')).toBe('made on A\n')
    expect(await fs.readFile(fileOf(a, 'from-b.txt'), 'utf8')).toBe('made on B\n')
  })

  it('a modification on A reaches B, then one on B reaches A', async () => {
    await fs.appendFile(fileOf(a, 'from-b.txt'), 'edited on A\n')
    await converge()
    expect(await fs.readFile(fileOf(b, 'from-b.txt'), 'utf8')).toBe('made on B\nedited on A\n')

    await fs.writeFile(fileOf(b, 'from-a.txt'), 'rewritten on B, longer than before\n')
    await converge()
    expect(await fs.readFile(fileOf(a, 'from-a.txt'), 'utf8')).toBe('rewritten on B, longer than before\n')
  })

  it('a delete on B removes the file on A, and a delete on A removes it on B', async () => {
    await fs.rm(fileOf(b, 'from-a.txt'))
    let [treeA] = await converge()
    expect(treeA.has('from-a.txt')).toBe(false)

    await fs.rm(fileOf(a, 'nested/from-b'), { recursive: true })
    ;[treeA] = await converge()
    expect([...treeA.keys()].filter((p) => p.startsWith('nested/from-b'))).toEqual([])
  })

  it('renaming a file on A renames it on B', async () => {
    const before = await fs.readFile(fileOf(a, 'seed.txt'))
    await fs.rename(fileOf(a, 'seed.txt'), fileOf(a, 'seed-renamed.txt'))
    const [, treeB] = await converge()
    expect(treeB.has('seed.txt')).toBe(false)
    expect(treeB.get('seed-renamed.txt')).toMatchObject({ type: 'file', sha256: sha256(before) })
  })

  it('renaming a directory with files on B renames it on A', async () => {
    await writeFiles(b.folder, { 'olddir/one.txt': '1\n', 'olddir/sub/two.txt': '2\n' })
    await converge()
    await fs.rename(fileOf(b, 'olddir'), fileOf(b, 'newdir'))
    const [treeA] = await converge()
    expect([...treeA.keys()].filter((p) => p.startsWith('olddir'))).toEqual([])
    expect(treeA.get('newdir/one.txt')).toMatchObject({ type: 'file', sha256: sha256('1\n') })
    expect(treeA.get('newdir/sub/two.txt')).toMatchObject({ type: 'file', sha256: sha256('2\n') })
  })

  it('empty files are synced, and a file truncated to empty syncs as empty', async () => {
    await writeFiles(a.folder, { 'empty.txt': '' })
    await fs.truncate(fileOf(b, 'docs/readme.md'), 0)
    const [treeA, treeB] = await converge()
    expect(treeB.get('empty.txt')).toMatchObject({ type: 'file', sizeBytes: 0 })
    expect(treeA.get('docs/readme.md')).toMatchObject({ type: 'file', sizeBytes: 0 })
  })

  it('names with spaces and Unicode are synced both ways', async () => {
    await writeFiles(a.folder, { 'ünïcødé ✓/файл 1.txt': 'юникод\n', 'with space/a b  c.txt': 'spaces\n' })
    await writeFiles(b.folder, { '日本語 フォルダ/ファイル.md': 'にほんご\n', 'emoji 🎉.txt': 'party\n' })
    const [treeA, treeB] = await converge()
    expect(treeB.get('ünïcødé ✓/файл 1.txt')).toMatchObject({ type: 'file', sha256: sha256('юникод\n') })
    expect(treeB.get('with space/a b  c.txt')).toMatchObject({ type: 'file' })
    expect(treeA.get('日本語 フォルダ/ファイル.md')).toMatchObject({ type: 'file', sha256: sha256('にほんご\n') })
    expect(treeA.get('emoji 🎉.txt')).toMatchObject({ type: 'file' })
  })

  it('mtime is preserved (to the second)', async () => {
    const mtimeS = Date.UTC(2001, 8, 9, 1, 46, 40) / 1000
    await writeFiles(a.folder, { 'old/photo.jpg': { content: 'not really a photo\n', mtimeS } })
    const [, treeB] = await converge()
    expect(treeB.get('old/photo.jpg')).toMatchObject({ type: 'file', mtimeS })
  })

  it('symlinks inside the folder are synced as links; ones pointing outside (absolute or ../..) are not', async () => {
    await writeFiles(a.folder, { 'links/target.txt': 'target\n' })
    await fs.symlink('target.txt', fileOf(a, 'links/to-target'))
    await fs.symlink('../docs', fileOf(a, 'links/to-docs'))
    await fs.symlink('/etc/passwd', fileOf(a, 'links/outside'))
    await fs.symlink('../../escaped.txt', fileOf(a, 'links/escape'))
    const [, treeB] = await converge()
    expect(treeB.get('links/to-target')).toEqual({ type: 'symlink', target: 'target.txt' })
    expect(treeB.get('links/to-docs')).toEqual({ type: 'symlink', target: '../docs' })
    expect(treeB.has('links/outside')).toBe(false)
    expect(treeB.has('links/escape')).toBe(false)
    const statuses = await Promise.all([a.status(), b.status()])
    expect(statuses.map((s) => s.inSync)).toEqual([true, true])
  })

  it('a synced symlink changed or deleted on B is changed or deleted on A', async () => {
    // the links of the previous test arrived on B from A; B's records of them are the ones a
    // peer's change is compared with (a link's size once made every recorded link look edited
    // locally, so A's delete was undone by B re-publishing the link)
    await fs.symlink('../docs', fileOf(b, 'links/to-docs.new'))
    await fs.rename(fileOf(b, 'links/to-docs.new'), fileOf(b, 'links/to-docs'))
    await fs.unlink(fileOf(b, 'links/to-target'))
    await fs.writeFile(fileOf(b, 'links/marker.txt'), 'after the link changes\n')
    const [treeA] = await converge()
    expect(treeA.has('links/marker.txt')).toBe(true)
    expect(treeA.has('links/to-target')).toBe(false)
    expect(treeA.get('links/to-docs')).toEqual({ type: 'symlink', target: '../docs' })
  })

  it('a synced symlink deleted on the side that made it is deleted on the other', async () => {
    await fs.unlink(fileOf(a, 'links/to-docs'))
    await fs.writeFile(fileOf(a, 'links/marker2.txt'), 'after the delete\n')
    const [, treeB] = await converge()
    expect(treeB.has('links/marker2.txt')).toBe(true)
    expect(treeB.has('links/to-docs')).toBe(false)
  })

  it('a file created with the exec bit has it on the other side', async () => {
    await writeFiles(a.folder, { 'bin/run.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755 } })
    const [, treeB] = await converge()
    expect(treeB.get('bin/run.sh')).toMatchObject({ type: 'file', execBits: 0o111 })
  })

  // The last two tests change things a scanner that looks only at size and mtime can miss;
  // each ignores the other's paths so that one failing does not fail the other.
  const isModeTestPath = (p: string): boolean => p.startsWith('modes')
  const isEmptyDirTestPath = (p: string): boolean => p.startsWith('empty')

  it('a mode-only change (chmod +x, then chmod -x, content untouched) is synced both ways', async () => {
    await writeFiles(a.folder, { 'modes/tool.sh': { content: '#!/bin/sh\n', mode: 0o644 } })
    let [treeA, treeB] = await converge(isEmptyDirTestPath)
    expect(treeB.get('modes/tool.sh')).toMatchObject({ type: 'file', execBits: 0 })

    await fs.chmod(fileOf(a, 'modes/tool.sh'), 0o755)
    ;[treeA, treeB] = await converge(isEmptyDirTestPath)
    expect(treeB.get('modes/tool.sh')).toMatchObject({ type: 'file', execBits: 0o111 })

    await fs.chmod(fileOf(b, 'modes/tool.sh'), 0o644)
    ;[treeA, treeB] = await converge(isEmptyDirTestPath)
    expect(treeA.get('modes/tool.sh')).toMatchObject({ type: 'file', execBits: 0 })
  })

  it('a nested empty directory is synced', async () => {
    await fs.mkdir(fileOf(a, 'empty/nested/deep'), { recursive: true })
    const [, treeB] = await converge(isModeTestPath)
    expect(treeB.get('empty/nested/deep')).toEqual({ type: 'dir' })
  })
})
