import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readPausedSince, writePausedSince } from '../src/pause-flag.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('sa-pause-')

describe('the pause flag', () => {
  it('is kept in the data dir until cleared', async () => {
    const dir = tempDir()
    expect(await readPausedSince(dir)).toBeNull()
    await writePausedSince(dir, 1_700_000_000_000)
    expect(await readPausedSince(dir)).toBe(1_700_000_000_000)
    await writePausedSince(dir, null)
    expect(await readPausedSince(dir)).toBeNull()
    await writePausedSince(dir, null)
  })

  it('reads a flag it cannot parse as paused (the safe reading), from now', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'paused.json'), 'garbage')
    const before = Date.now()
    expect(await readPausedSince(dir)).toBeGreaterThanOrEqual(before)
  })
})
