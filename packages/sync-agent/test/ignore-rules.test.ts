import { describe, expect, it } from 'vitest'
import ignore from 'ignore'
import { buildIgnoreRules, isInternalName, MATCHER_RESET_CALLS, presetMatcher, PRESETS } from '../src/ignore-rules.js'
import { mulberry32 } from './helpers/prng.js'

describe('the wordpress preset', () => {
  const rules = buildIgnoreRules(['wordpress'], [], null)

  it.each<[string, boolean]>([
    ['cache/x', false],
    ['cache', true],
    ['et-cache/a.css', false],
    ['litespeed/x', false],
    ['wflogs/rules.php', false],
    ['upgrade/x', false],
    ['upgrade', true],
    ['upgrade-temp-backup/plugins/p.php', false],
    ['debug.log', false],
    ['plugins/p/logs/error.log', false],
    ['uploads/x.tmp', false],
    ['uploads/x.temp', false],
    ['.x.swp', false],
    ['uploads/2024/.DS_Store', false],
    ['.DS_Store', false],
    ['uploads/Thumbs.db', false],
    ['a~', false],
    ['uploads/big.zip.part', false],
    ['uploads/big.zip.crdownload', false]
  ])('ignores %s (isDir %s)', (path, isDir) => {
    expect(rules.isIgnored(path, isDir)).toBe(true)
  })

  it.each<[string, boolean]>([
    ['uploads/2024/a.jpg', false],
    ['uploads/2024', true],
    ['themes/t/style.css', false],
    ['plugins/akismet/akismet.php', false],
    ['index.php', false],
    ['.htaccess', false],
    ['sub/.syncignore', false],
    ['cache', false], // a *file* named cache is not the cache dir
    ['uploads/cache.jpg', false],
    ['uploads/logbook.txt', false],
    ['languages/de_DE.mo', false]
  ])('keeps %s (isDir %s)', (path, isDir) => {
    expect(rules.isIgnored(path, isDir)).toBe(false)
  })
})

// the preset alone is answered by presetMatcher, not by `ignore`: the same answers, or a
// fresh node's files would be ignored here and not there
describe('the preset without the `ignore` matcher', () => {
  const segments = ['cache', 'CACHE', 'Cache', 'et-cache', 'w3tc-config', 'litespeed', 'wflogs', 'upgrade', 'Upgrade', 'upgrade-temp-backup',
    'x.log', '.log', 'a.LOG', 'log', 'a.log.txt', 'x.tmp', 'x.TEMP', '.x.swp', 'y.swx', 'a~', '~', '~a', '.DS_Store', '.ds_store', 'DS_Store',
    'Thumbs.db', 'thumbs.DB', 'Thumbs.db.bak', 'big.zip.part', 'b.crdownload', 'partial', 'uploads', 'themes', '2026', 'a.jpg', 'style.css',
    'caché', 'Ḱ.log', 'a.loɡ', 'upgrade-temp-bacKup', 'İtem.tmp', 'sp ace.log', 'x.log ', '.', 'a.b.c']
  const lib = ignore({ allowRelativePaths: false }).add([...PRESETS.wordpress])
  const fast = presetMatcher(PRESETS.wordpress)

  it('answers as `ignore` does on 20,000 generated paths, files and directories', () => {
    expect(fast).not.toBeNull()
    // seeded: the same paths every run
    const random = mulberry32(19)
    const next = (n: number): number => random() % n
    const differ: string[] = []
    let ignored = 0
    for (let i = 0; i < 20_000; i++) {
      const depth = 1 + next(4)
      const path = Array.from({ length: depth }, () => segments[next(segments.length)]).join('/')
      if (path.split('/').includes('.')) continue // not a path the agent asks about (path safety refuses it)
      const isDir = next(2) === 1
      const want = lib.ignores(isDir ? path + '/' : path)
      if (want) ignored++
      if (fast!(path, isDir) !== want) differ.push(`${path}${isDir ? '/' : ''} → ${want}`)
    }
    expect(differ.slice(0, 10)).toEqual([])
    // both answers are common among them (a generator that made only one would prove nothing)
    expect(ignored).toBeGreaterThan(4_000)
    expect(ignored).toBeLessThan(16_000)
  })

  it('is used for the presets alone, and gives way to `ignore` with patterns of the user\'s', () => {
    expect(presetMatcher(['/cache/', '*.log', 'Thumbs.db'])).not.toBeNull()
    expect(presetMatcher(['*.log', 'uploads/**/*.psd'])).toBeNull()
    expect(presetMatcher(['!keep.log'])).toBeNull()
    // with one, a preset pattern can be negated (below: 'can un-ignore a preset pattern')
    expect(buildIgnoreRules(['wordpress'], ['!debug.log'], null).isIgnored('debug.log', false)).toBe(false)
    expect(buildIgnoreRules(['wordpress'], [], null).isIgnored('debug.log', false)).toBe(true)
  })

  it('still refuses what `ignore` refuses', () => {
    const rules = buildIgnoreRules(['wordpress'], [], null)
    expect(() => rules.isIgnored('../x.log', false)).toThrow()
    expect(() => rules.isIgnored('/x', false)).toThrow()
  })
})

describe('without presets', () => {
  it('ignores nothing but internal names', () => {
    const rules = buildIgnoreRules([], [], null)
    expect(rules.isIgnored('cache/x', false)).toBe(false)
    expect(rules.isIgnored('debug.log', false)).toBe(false)
    expect(rules.isIgnored('.syncignore', false)).toBe(true)
    expect(rules.isIgnored('a/.syncagent-tmp-123', false)).toBe(true)
  })
})

describe('.syncignore text and configured patterns', () => {
  const fileText = ['# comments are fine', '', '*.bak', '!keep.bak', 'private/', '/root-only.txt', 'uploads/**/*.psd'].join('\n')
  const rules = buildIgnoreRules([], ['*.zip', '!release.zip'], fileText)

  it.each<[string, boolean, boolean]>([
    ['a.bak', false, true],
    ['sub/a.bak', false, true],
    ['keep.bak', false, false],
    ['sub/keep.bak', false, false],
    ['private', true, true],
    ['private', false, false],
    ['private/x.txt', false, true],
    ['sub/private/x.txt', false, true],
    ['root-only.txt', false, true],
    ['sub/root-only.txt', false, false],
    ['uploads/2024/05/art.psd', false, true],
    ['themes/art.psd', false, false],
    ['backup.zip', false, true],
    ['release.zip', false, false],
    ['# comments are fine', false, false],
    ['notes.txt', false, false]
  ])('%s (isDir %s) → ignored %s', (path, isDir, ignored) => {
    expect(rules.isIgnored(path, isDir)).toBe(ignored)
  })

  it('adds to the preset rather than replacing it', () => {
    const withPreset = buildIgnoreRules(['wordpress'], [], '*.bak')
    expect(withPreset.isIgnored('a.bak', false)).toBe(true)
    expect(withPreset.isIgnored('debug.log', false)).toBe(true)
  })

  it('can un-ignore a preset pattern', () => {
    const rules2 = buildIgnoreRules(['wordpress'], [], '!important.log')
    expect(rules2.isIgnored('important.log', false)).toBe(false)
    expect(rules2.isIgnored('debug.log', false)).toBe(true)
  })
})

describe('internal names are always ignored', () => {
  const rules = buildIgnoreRules([], [], '!.syncignore\n!.syncagent-tmp-*\n!**/.syncagent-tmp-*')

  it.each([
    ['.syncignore', true],
    ['.syncagent-tmp-abc', true],
    ['uploads/.syncagent-tmp-abc', true],
    ['sub/.syncignore', false],
    ['x.syncagent-tmp-abc', false]
  ])('%s → internal %s, even if negated in .syncignore', (path, internal) => {
    expect(isInternalName(path)).toBe(internal)
    expect(rules.isIgnored(path, false)).toBe(internal)
  })
})

describe('a long-lived matcher', () => {
  it('answers the same before and after its cache is reset (every MATCHER_RESET_CALLS questions)', () => {
    const rules = buildIgnoreRules(['wordpress'], ['/private/'], '!keep.log\n')
    const questions: Array<[string, boolean, boolean]> = [
      ['uploads/2026/11/a.jpg', false, false],
      ['debug.log', false, true],
      ['keep.log', false, false],
      ['cache', true, true],
      ['cache/page.html', false, true],
      ['private/x.txt', false, true],
      ['plugins/cache/x.php', false, false]
    ]
    // mismatches collected and asserted once: an expect() per question made this test slow
    const wrong: string[] = []
    for (let i = 0; i < MATCHER_RESET_CALLS * 2 + 10; i++) {
      const [path, isDir, expected] = questions[i % questions.length] as [string, boolean, boolean]
      if (i % 97 === 0) {
        if (rules.isIgnored(`uploads/many/${i}.jpg`, false)) wrong.push(`uploads/many/${i}.jpg at question ${i}`)
      } else if (rules.isIgnored(path, isDir) !== expected) wrong.push(`${path} at question ${i}`)
    }
    expect(wrong).toEqual([])
  })
})
