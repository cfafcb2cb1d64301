import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Oracle } from './oracle.ts'
import { Prng } from './prng.ts'
import { fillDisk, mountTmpfs, unmount } from './run-dirs.ts'
import { NodeWorkload } from './workload.ts'

const mounted: string[] = []
afterEach(async () => {
  for (const dir of mounted.splice(0)) {
    await unmount(dir)
    await fs.rm(dir, { recursive: true, force: true })
  }
})

// fault suite seed 11013: an append that failed on the full disk left the file's bytes as they
// were (Linux still sets its mtime); it was recorded as a new version written then, so a delete
// made on another node just before it no longer counted against those bytes: LOST
describe('NodeWorkload on a full disk', () => {
  it('records no version for a write that left the bytes as they were, and one for a write that changed them', async () => {
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'sa-workload-'))
    await mountTmpfs(folder, 1024 * 1024)
    mounted.push(folder)
    const oracle = new Oracle()
    const workload = new NodeWorkload(0, folder, new Prng(1), oracle, { maxLargeFiles: 0, largeMaxBytes: 0 })
    const modify = (kind: 'append' | 'truncate', p: string) => (workload as unknown as { modify(k: string, p: string): Promise<void> }).modify(kind, p)
    // a header line and a body (a truncate keeps the header), filling its last page: an append
    // needs a new one
    await fs.writeFile(path.join(folder, 'a.txt'), 'header\n' + 'x'.repeat(4096 - 7))
    await fillDisk(folder)

    await expect(modify('append', 'a.txt')).rejects.toMatchObject({ code: 'ENOSPC' })
    expect(oracle.writes).toEqual([])
    expect(oracle.log.join('\n')).toMatch(/bytes unchanged: no new version/)

    // a truncate frees space and changes the bytes: a version, and the old bytes overwritten
    await modify('truncate', 'a.txt')
    expect(oracle.writes).toMatchObject([{ path: 'a.txt', op: 'truncate' }])
  }, 30_000)
})
