import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import { TEMP_PREFIX } from '@sync-agent/shared'
import { describe, expect, it } from 'vitest'
import { scanFolder, type ScanHandlers } from '../src/folder-scanner.js'
import { buildIgnoreRules } from '../src/ignore-rules.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('sa-scan-')

function files(root: string, paths: Record<string, string>): void {
  for (const [p, body] of Object.entries(paths)) {
    mkdirSync(join(root, p, '..'), { recursive: true })
    writeFileSync(join(root, p), body)
  }
}

/** what a scan reported, each list sorted */
async function scan(root: string, opts: { start?: string; sliceMs?: number; ignore?: string[]; onEntry?: (path: string) => void } = {}) {
  const entries = new Map<string, Stats>()
  const temps: string[] = []
  const unsyncable: Array<[string, string]> = []
  const handlers: ScanHandlers = {
    onEntry: (p, st) => {
      entries.set(p, st)
      opts.onEntry?.(p)
    },
    onTempFile: (p) => temps.push(p),
    onUnsyncable: (p, problem) => unsyncable.push([p, problem])
  }
  await scanFolder(root, buildIgnoreRules([], opts.ignore ?? [], null), handlers, opts.start, opts.sliceMs)
  return { entries, paths: [...entries.keys()].sort(), temps: temps.sort(), unsyncable: unsyncable.sort() }
}

describe('scanFolder', () => {
  it('reports every entry with its lstat, temp files and unsyncable names apart, and skips ignored subtrees', async () => {
    const root = tempDir()
    files(root, {
      'wp-config.php': 'x',
      'themes/t/style.css': 'css',
      'themes/t/a b/ü.php': 'unicode',
      'cache/page.html': 'ignored, and so is what it holds',
      'uploads/2026/11/a.jpg': 'jpg',
      [`uploads/${TEMP_PREFIX}123`]: 'half-written',
      'uploads/back\\slash.jpg': 'a name other systems cannot hold'
    })
    mkdirSync(join(root, 'empty'))
    symlinkSync('themes/t', join(root, 'link-to-theme'))

    const r = await scan(root, { ignore: ['cache/'] })
    expect(r.paths).toEqual([
      'empty',
      'link-to-theme',
      'themes',
      'themes/t',
      'themes/t/a b',
      'themes/t/a b/ü.php',
      'themes/t/style.css',
      'uploads',
      'uploads/2026',
      'uploads/2026/11',
      'uploads/2026/11/a.jpg',
      'wp-config.php'
    ])
    // a symlink is reported as itself, never followed
    expect(r.entries.get('link-to-theme')?.isSymbolicLink()).toBe(true)
    expect(r.entries.get('themes/t/style.css')?.size).toBe(3)
    expect(r.temps).toEqual([`uploads/${TEMP_PREFIX}123`])
    expect(r.unsyncable).toEqual([['uploads/back\\slash.jpg', 'backslash']])
  })

  it('walks only the subtree it is started at, and a start directory that is gone is no error', async () => {
    const root = tempDir()
    files(root, { 'themes/t/style.css': 'css', 'plugins/p/p.php': 'php' })
    expect((await scan(root, { start: 'themes' })).paths).toEqual(['themes/t', 'themes/t/style.css'])
    expect((await scan(root, { start: 'gone' })).paths).toEqual([])
  })

  it('skips what vanishes while it walks: a file and a whole directory removed behind its back', async () => {
    const root = tempDir()
    // one directory with enough entries that its listing is read before most are looked at
    const many: Record<string, string> = {}
    for (let i = 0; i < 50; i++) many[`a/f${String(i).padStart(2, '0')}`] = 'x'
    files(root, { ...many, 'a/sub/deep.txt': 'x', 'b/kept.txt': 'x' })
    let removed = false
    const r = await scan(root, {
      onEntry: (p) => {
        // at the first entry of a/, remove a/sub (listed already, not walked yet) and the
        // files of a/ that have not been looked at; the walk goes on without an error
        if (!removed && p.startsWith('a/')) {
          removed = true
          rmSync(join(root, 'a/sub'), { recursive: true })
          for (let i = 0; i < 50; i++) if (`a/f${String(i).padStart(2, '0')}` !== p) rmSync(join(root, `a/f${String(i).padStart(2, '0')}`), { force: true })
        }
      }
    })
    expect(removed).toBe(true)
    expect(r.paths).toContain('b/kept.txt')
    expect(r.paths.filter((p) => p.startsWith('a/'))).toHaveLength(1)
    expect(r.paths).not.toContain('a/sub/deep.txt')
  })

  it('gives the event loop back while it walks (a slice of 0 ms: every few dozen entries)', async () => {
    const root = tempDir()
    const many: Record<string, string> = {}
    for (let i = 0; i < 400; i++) many[`d${i % 4}/f${i}`] = 'x'
    files(root, many)
    let turns = 0
    let walking = true
    const tick = (): void => {
      turns++
      if (walking) setImmediate(tick)
    }
    setImmediate(tick)
    const r = await scan(root, { sliceMs: 0 })
    walking = false
    expect(r.paths).toHaveLength(404)
    // 404 entries, one look at the clock every 8: the walk let other callbacks run between slices
    expect(turns).toBeGreaterThanOrEqual(40)
  })
})
