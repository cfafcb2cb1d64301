import { lstat, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DataDirUsage } from '../src/data-dir-usage.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('sa-data-dir-usage-')

describe('DataDirUsage', () => {
  it('sums the blocks of every file below the dir, as du does', async () => {
    const dir = tempDir()
    await mkdir(join(dir, 'store', 'sub'), { recursive: true })
    await writeFile(join(dir, 'store', 'a.sst'), Buffer.alloc(100_000, 1))
    await writeFile(join(dir, 'store', 'sub', 'b.blob'), Buffer.alloc(3_000_000, 2))
    await writeFile(join(dir, 'index.journal'), 'x')
    let expected = 0
    for (const f of ['store/a.sst', 'store/sub/b.blob', 'index.journal']) expected += (await lstat(join(dir, f))).blocks * 512
    const usage = new DataDirUsage(dir)
    expect(await usage.refresh()).toBe(expected)
    expect(expected).toBeGreaterThanOrEqual(3_100_001)
  })

  it('answers with the last measurement at once and measures again only after its TTL', async () => {
    const dir = tempDir()
    await writeFile(join(dir, 'f'), Buffer.alloc(8192, 1))
    let now = 0
    const usage = new DataDirUsage(dir, 10_000, () => now)
    // the first question starts a measurement: no answer yet
    expect(usage.bytes()).toBe(null)
    const first = await usage.refresh()
    expect(first).toBeGreaterThan(0)
    await writeFile(join(dir, 'g'), Buffer.alloc(64 * 1024, 1))
    now = 9_999
    expect(usage.bytes()).toBe(first)
    now = 10_000
    // stale: answered with the old figure, measured again behind it
    expect(usage.bytes()).toBe(first)
    expect(await usage.refresh()).toBeGreaterThan(first)
  })

  it('a dir that cannot be read is a failed measurement, not a crash; the last figure stays', async () => {
    const dir = tempDir()
    await writeFile(join(dir, 'f'), Buffer.alloc(8192, 1))
    let now = 0
    const usage = new DataDirUsage(dir, 1, () => now)
    const before = await usage.refresh()
    await rm(dir, { recursive: true })
    now = 10
    await expect(usage.refresh()).rejects.toMatchObject({ code: 'ENOENT' })
    now = 20
    expect(usage.bytes()).toBe(before)
  })
})
