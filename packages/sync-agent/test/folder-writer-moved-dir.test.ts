import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TEMP_PREFIX } from '@sync-agent/shared'
import { FolderWriter } from '../src/folder-writer.js'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

// fault suite seed 101: a directory moved while the agent wrote a file into it carried the
// temp file along; the writer's cleanup looked for it at the old path, and the
// `.syncagent-tmp-*` file stayed in the moved directory for good
describe('FolderWriter, a directory moved in the middle of a write', () => {
  it('reports the temp file it lost; a sweep removes it from where it landed, never a temp file in progress', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sa-writer-'))
    dirs.push(root)
    await mkdir(join(root, 'plugins/p1'), { recursive: true })
    let lost = 0
    const writer = new FolderWriter(root, undefined, () => lost++)
    const content = Buffer.from('the new version\n')
    async function* chunks(): AsyncIterable<Uint8Array> {
      yield content.subarray(0, 4)
      // the user moves the directory while the agent is writing into it
      await rename(join(root, 'plugins/p1'), join(root, 'plugins/m1'))
      expect(writer.isWriting(`plugins/m1/${(await readdir(join(root, 'plugins/m1')))[0]}`)).toBe(true)
      yield content.subarray(4)
    }
    const meta = { mtimeMs: 1_000_000, mode: 0o644, size: content.length, hash: createHash('sha256').update(content).digest('hex') }
    await expect(writer.writeFile('plugins/p1/e.json', chunks(), meta, undefined)).rejects.toThrow()
    expect(lost).toBe(1)
    const leftovers = (await readdir(join(root, 'plugins/m1'))).filter((n) => n.startsWith(TEMP_PREFIX))
    expect(leftovers).toHaveLength(1)
    expect(writer.isWriting(`plugins/m1/${leftovers[0]}`)).toBe(false)
    await writer.removeTemp(`plugins/m1/${leftovers[0]}`)
    expect(await readdir(join(root, 'plugins/m1'))).toEqual([])
  })
})
