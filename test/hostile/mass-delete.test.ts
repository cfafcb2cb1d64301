import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { useHarness } from '../helpers/harness.ts'
import { parseRecords } from '../helpers/hostile-scene.ts'
import { waitConverged } from '../helpers/sync.ts'
import { STAGING_DIR } from '../helpers/tree.ts'
import { stays, until } from '../helpers/until.ts'

/**
 * A remote change that deletes more than `massDeleteShare` (default 50%) of the folder is
 * held: shown in status (JSON and human), kept across a restart, applied only after
 * `sync-agent accept-deletes`. Smaller deletes and other changes flow as usual.
 */
interface Held {
  count: number
  sample: string[]
  folderPaths: number
  share: number
}

const FILES = 30

describe('mass delete hold', () => {
  const harness = useHarness()

  it('holds a delete of most of the folder until accept-deletes, and lets small ones through', async () => {
    const [a, b] = await harness.startPair({
      seedA: async (folder) => {
        for (let i = 0; i < FILES; i++) await fs.writeFile(path.join(folder, `f${i}.txt`), `file ${i}\n`)
      }
    })
    await waitConverged([a, b])

    // a small delete (2 of 30) is applied at once
    await fs.rm(path.join(a.folder, 'f0.txt'))
    await fs.rm(path.join(a.folder, 'f1.txt'))
    await waitConverged([a, b])
    expect((await b.status()).heldDeletes).toBeNull()

    // A deletes 20 of the 28 left: B holds them
    for (let i = 2; i < 22; i++) await fs.rm(path.join(a.folder, `f${i}.txt`))
    const held = await until(async () => {
      const h = (await b.status()).heldDeletes as Held | null
      return h && h.count === 20 ? h : null
    }, { timeoutMs: 20_000, message: 'B holds the 20 deletes' })
    expect(held.share).toBe(0.5)
    expect(held.folderPaths).toBe(28)
    expect(held.sample.length).toBeGreaterThan(0)
    // the status can answer before the log line has come through B's stdout pipe
    const record = await until(() => parseRecords(b.stdout).find((r) => r.code === 'E_MASS_DELETE'), { timeoutMs: 5_000, message: 'B logs E_MASS_DELETE' })
    expect(record.level).toBe('warn')
    expect(record.msg).toMatch(/holding the deletes until `sync-agent accept-deletes`/)
    // the files stay, B says it is not in sync, and the human status says what to do
    await stays(async () => (await fs.readdir(b.folder)).filter((n) => n.startsWith('f')).length === 28, { durationMs: 1_500, message: "B keeps the files" })
    expect((await b.status()).inSync).toBe(false)
    const human = await runCli(['status', '--control', b.control])
    expect(human.stdout).toMatch(/HELD\s+20 remote deletes \(more than 50% of 28 paths\)/)
    expect(human.stdout).toMatch(/sync-agent accept-deletes/)

    // other changes still flow while the deletes are held
    await fs.writeFile(path.join(a.folder, 'new.txt'), 'new while held\n')
    await until(async () => (await fs.readFile(path.join(b.folder, 'new.txt'), 'utf8').catch(() => null)) === 'new while held\n', { timeoutMs: 20_000, message: 'new.txt reaches B' })

    // the hold survives a restart of B
    await b.restart()
    await until(async () => ((await b.status()).heldDeletes as Held | null)?.count === 20, { timeoutMs: 20_000, message: 'still held after a restart' })
    expect((await fs.readdir(b.folder)).filter((n) => n.startsWith('f')).length).toBe(28)

    // accept: the deletes are applied and both converge
    const accepted = await runCli(['accept-deletes', '--control', b.control])
    expect(accepted.code).toBe(0)
    expect(accepted.stdout).toMatch(/applying 20 held deletes/)
    await waitConverged([a, b])
    expect((await b.status()).heldDeletes).toBeNull()
    // the folder's files (besides the agent's staging directory, where it writes before renaming)
    expect((await fs.readdir(b.folder)).filter((n) => n !== STAGING_DIR).sort()).toEqual(['f22.txt', 'f23.txt', 'f24.txt', 'f25.txt', 'f26.txt', 'f27.txt', 'f28.txt', 'f29.txt', 'new.txt'])
    const again = await runCli(['accept-deletes', '--control', b.control])
    expect(again.stdout).toMatch(/no deletes were held/)
  })
})
