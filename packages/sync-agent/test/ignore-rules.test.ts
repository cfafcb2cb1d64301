import { describe, expect, it } from 'vitest'
import { buildIgnoreRules, isInternalName, MATCHER_RESET_CALLS } from '../src/ignore-rules.js'

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
