import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { removeFile, replaceFile } from '../src/state-file.js'
import { readPausedSince, writePausedSince } from '../src/pause-flag.js'
import { useTempDirs } from './helpers/temp-dirs.js'

const tempDir = useTempDirs('sa-state-file-')

describe('state files in the data dir', () => {
  it('writes and removals of one file run in the order asked: the last one stays, no temp file is left', async () => {
    const dir = tempDir()
    const file = join(dir, 'x.json')
    await Promise.all([replaceFile(file, '1'), replaceFile(file, '2'), replaceFile(file, '3')])
    expect(readFileSync(file, 'utf8')).toBe('3')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    await Promise.all([replaceFile(file, '4'), removeFile(file)])
    expect(existsSync(file)).toBe(false)
    await Promise.all([removeFile(file), replaceFile(file, '5')])
    expect(readFileSync(file, 'utf8')).toBe('5')
    expect(readdirSync(dir)).toEqual(['x.json'])
  })

  it('a pause and a resume asked together leave the flag as the last one says', async () => {
    const dir = tempDir()
    await Promise.all([writePausedSince(dir, 1_700_000_000_000), writePausedSince(dir, null)])
    expect(await readPausedSince(dir)).toBeNull()
    await Promise.all([writePausedSince(dir, null), writePausedSince(dir, 1_700_000_000_000)])
    expect(await readPausedSince(dir)).toBe(1_700_000_000_000)
  })
})
