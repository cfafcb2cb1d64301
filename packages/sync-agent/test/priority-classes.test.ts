import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { compareRanks, PriorityClasses } from '../src/priority/priority-classes.js'
import { PathQueue } from '../src/priority/path-queue.js'

describe('PriorityClasses (wordpress preset)', () => {
  const classes = new PriorityClasses('wordpress')

  it('names the classes in order, with "other" last', () => {
    expect(classes.names).toEqual(['critical', 'uploads', 'other'])
  })

  it.each([
    ['themes/twentyone/style.css', 'critical'],
    ['themes', 'critical'],
    ['plugins/akismet/akismet.php', 'critical'],
    ['mu-plugins/loader.php', 'critical'],
    ['languages/de_DE.mo', 'critical'],
    ['object-cache.php', 'critical'],
    ['advanced-cache.php', 'critical'],
    ['themes/x/.htaccess', 'critical'],
    ['uploads/2024/05/a.jpg', 'uploads'],
    ['uploads/evil.php', 'uploads'],
    ['fonts/a.woff2', 'other'],
    ['blogs.dir/x/y.txt', 'other'],
    ['backup/db.php', 'other'], // only root-level PHP files are drop-ins
    ['index.html', 'other']
  ])('%s → %s', (path, name) => {
    expect(classes.names[classes.classOf(path)]).toBe(name)
  })

  it('ranks uploads by year/month folder, then by mtime; other classes are not ranked', () => {
    const u = classes.classOf('uploads/x')
    const newer = classes.rankOf(u, 'uploads/2025/01/a.jpg', 1)
    const older = classes.rankOf(u, 'uploads/2024/12/b.jpg', 9e12)
    expect(newer.month).toBe(202501)
    expect(compareRanks(newer, older)).toBeLessThan(0) // newer first despite the older mtime
    const sameMonth = classes.rankOf(u, 'uploads/2025/01/c.jpg', 2)
    expect(compareRanks(sameMonth, newer)).toBeLessThan(0)
    expect(classes.rankOf(u, 'uploads/misc/a.jpg', 5)).toEqual({ lane: 1, month: 0, mtime: 5 })
    expect(classes.rankOf(classes.classOf('themes/a'), 'themes/2025/01/a', 5)).toEqual({ lane: 1, month: 0, mtime: 0 })
  })

  it('puts fresh changes (local, a small diff) before a bulk transfer, whatever their month', () => {
    const u = classes.classOf('uploads/x')
    const bulkNewest = classes.rankOf(u, 'uploads/2026/11/a.jpg', 9e12, 0)
    const freshOld = classes.rankOf(u, 'uploads/2019/01/b.jpg', 1, 1)
    expect(compareRanks(freshOld, bulkNewest)).toBeLessThan(0)
  })

  it('says where in a file index a class lives', () => {
    expect(classes.indexRanges(0)).toEqual({ prefixes: ['themes/', 'plugins/', 'mu-plugins/', 'languages/'], rootFiles: true, complete: true })
    expect(classes.indexRanges(1)).toEqual({ prefixes: ['uploads/'], rootFiles: false, complete: true })
    expect(classes.indexRanges(2).complete).toBe(false)
  })
})

describe('PriorityClasses (custom)', () => {
  it('takes the first matching class and reports patterns it cannot read by ranges', () => {
    const classes = new PriorityClasses([
      { name: 'code', paths: ['**/*.php', 'themes/**'], order: 'path' },
      { name: 'media', paths: ['media/**'], order: 'newest-first' }
    ])
    expect(classes.names).toEqual(['code', 'media', 'other'])
    expect(classes.names[classes.classOf('media/x.php')]).toBe('code')
    expect(classes.names[classes.classOf('media/x.jpg')]).toBe('media')
    expect(classes.indexRanges(0).complete).toBe(false) // **/*.php can be anywhere
  })

  it('the preset "none" has only "other"', () => {
    const classes = new PriorityClasses('none')
    expect(classes.names).toEqual(['other'])
    expect(classes.classOf('themes/a.css')).toBe(0)
  })
})

describe('PathQueue', () => {
  const noRank = { lane: 1, month: 0, mtime: 0 }

  it('gives paths of a class in rank order, then first come first served', () => {
    const q = new PathQueue<number>(3)
    q.set('old', 1, 1, { lane: 1, month: 202401, mtime: 5 })
    q.set('new', 2, 1, { lane: 1, month: 202412, mtime: 1 })
    q.set('new-later', 3, 1, { lane: 1, month: 202412, mtime: 9 })
    q.set('a', 4, 2, noRank)
    q.set('b', 5, 2, noRank)
    expect(q.firstClass()).toBe(1)
    expect(q.countIn(1)).toBe(3)
    const order = []
    for (let c = 0; c < 3; c++) for (let next = q.shiftFrom(c); next; next = q.shiftFrom(c)) order.push(next.path)
    expect(order).toEqual(['new-later', 'new', 'old', 'a', 'b'])
    expect(q.size).toBe(0)
  })

  it('moves a path that is set again with another class, and skips deleted ones', () => {
    const q = new PathQueue<string>(2)
    q.set('x', 'first', 1, noRank)
    q.set('y', 'y', 1, noRank)
    q.set('x', 'urgent', 0, noRank)
    expect(q.countIn(0)).toBe(1)
    expect(q.countIn(1)).toBe(1)
    expect(q.peekFrom(0)?.value).toBe('urgent')
    q.delete('y')
    expect(q.shiftFrom(1)).toBeUndefined()
    expect(q.shiftFrom(0)?.value).toBe('urgent')
    expect(q.firstClass()).toBe(-1)
  })

  it('keeps a path\'s place when it is set again unchanged', () => {
    const q = new PathQueue<number>(1)
    q.set('a', 1, 0, noRank)
    q.set('b', 2, 0, noRank)
    q.set('a', 3, 0, noRank)
    expect(q.shiftFrom(0)).toMatchObject({ path: 'a', value: 3 })
  })

  it('stays bounded when paths move again and again', () => {
    const q = new PathQueue<number>(2)
    for (let i = 0; i < 50_000; i++) q.set('p', i, i % 2, { lane: 1, month: 0, mtime: i })
    expect(q.size).toBe(1)
    expect(q.peekOrdered(1, 10).length + q.peekOrdered(0, 10).length).toBe(1)
  })

  it('lets go of the paths it handed out, even while its order is not read again', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const q = new PathQueue<{ n: number }>(1)
    const refs: Array<WeakRef<{ n: number }>> = []
    for (let i = 0; i < 5_000; i++) {
      const value = { n: i }
      refs.push(new WeakRef(value))
      q.set(`p${i}`, value, 0, { lane: 1, month: 0, mtime: -i })
    }
    expect(q.peekOrdered(0, 10, 60_000)[0]?.path).toBe('p0')
    for (let i = 0; i < 3_000; i++) q.shiftFrom(0)
    // the order read 3,000 paths ago is still fresh enough (maxAgeMs): it is reused, not rebuilt
    expect(q.peekOrdered(0, 2, 60_000).map((x) => x.path)).toEqual(['p3000', 'p3001'])
    await new Promise((resolve) => setImmediate(resolve))
    gc()
    expect(refs.slice(0, 3_000).filter((r) => r.deref() !== undefined).length).toBe(0)
    expect(refs[3_000]?.deref()).toEqual({ n: 3_000 })
  })

  it('lists a class in the order it will run', () => {
    const q = new PathQueue<number>(1)
    for (let i = 0; i < 100; i++) q.set(`p${i}`, i, 0, { lane: i % 3 === 0 ? 0 : 1, month: 0, mtime: (i * 37) % 100 })
    const listed = q.peekOrdered(0, 100).map((x) => x.path)
    const run: string[] = []
    for (let next = q.shiftFrom(0); next; next = q.shiftFrom(0)) run.push(next.path)
    expect(listed).toEqual(run)
  })
})
