import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { STALL_FILE, takePreviousStall } from '../src/previous-stall.ts'

describe('takePreviousStall', () => {
  const dirs: string[] = []
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })
  const dataDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'sa-stall-'))
    dirs.push(d)
    return d
  }

  it('nothing left: null (and a data dir that does not exist yet, a fresh node, too)', async () => {
    expect(await takePreviousStall(await dataDir())).toBeNull()
    expect(await takePreviousStall(join(await dataDir(), 'not-made-yet'))).toBeNull()
  })

  it('reads what the watchdog wrote, once: the file is removed', async () => {
    const d = await dataDir()
    const stall = { at: '2026-12-03T07:00:00.000Z', stalledS: 60, samples: ['spinForever main.cjs:1:2 < caller main.cjs:3:4'] }
    await writeFile(join(d, STALL_FILE), JSON.stringify(stall))
    expect(await takePreviousStall(d)).toEqual(stall)
    expect(await readdir(d)).toEqual([])
    expect(await takePreviousStall(d)).toBeNull()
  })

  it('keeps the note of a stall with fewer samples', async () => {
    const d = await dataDir()
    await writeFile(join(d, STALL_FILE), JSON.stringify({ at: 'x', stalledS: 61, samples: [], note: 'the main thread did not pause in time' }))
    expect(await takePreviousStall(d)).toEqual({ at: 'x', stalledS: 61, samples: [], note: 'the main thread did not pause in time' })
  })

  it.each([
    ['not JSON (cut short)', '{"at":"2026-12-03T07:00'],
    ['samples not strings', JSON.stringify({ at: 'x', stalledS: 1, samples: [1, 2] })],
    ['no time', JSON.stringify({ stalledS: 1, samples: [] })],
    ['an array', '[]']
  ])('a damaged file (%s) is still reported, as unreadable, and removed', async (_name, text) => {
    const d = await dataDir()
    await writeFile(join(d, STALL_FILE), text)
    expect(await takePreviousStall(d)).toMatchObject({ at: 'unknown', samples: [], note: expect.stringMatching(/could not be read/) })
    expect(await readdir(d)).toEqual([])
  })
})
