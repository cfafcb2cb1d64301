import { spawn } from 'node:child_process'
import fsSync from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { writeFiles } from './helpers/files.ts'
import { claimPort, freePorts, portLockDir } from './helpers/ports.ts'
import { diffTrees, readTree, sha256, tempFiles } from './helpers/tree.ts'
import { GiveUpError, stays, until } from './helpers/until.ts'

/** The helpers the integration tests lean on; these need no engine. */
describe('test helpers', () => {
  const dirs: string[] = []
  const tmp = async (): Promise<string> => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sa-helpers-'))
    dirs.push(dir)
    return dir
  }
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => fs.rm(dir, { recursive: true, force: true })))
  })

  it('readTree describes files, dirs and links; diffTrees names every difference', async () => {
    const [a, b] = [await tmp(), await tmp()]
    for (const root of [a, b]) {
      // fixed mtimes: two trees written a moment apart may straddle a second
      await writeFiles(root, { 'x/y.txt': { content: 'same', mtimeS: 1_100_000_000 }, 'run.sh': { content: '#!/bin/sh\n', mode: 0o755, mtimeS: 1_000_000_000 } })
      await fs.mkdir(path.join(root, 'empty'))
      await fs.symlink('x/y.txt', path.join(root, 'link'))
    }
    const treeA = await readTree(a)
    expect([...treeA.keys()]).toEqual(['empty', 'link', 'run.sh', 'x', 'x/y.txt'])
    expect(treeA.get('run.sh')).toEqual({ type: 'file', sizeBytes: 10, sha256: sha256('#!/bin/sh\n'), execBits: 0o111, mtimeS: 1_000_000_000 })
    expect(treeA.get('link')).toEqual({ type: 'symlink', target: 'x/y.txt' })
    expect(diffTrees(treeA, await readTree(b))).toEqual([])

    await fs.writeFile(path.join(b, 'x/y.txt'), 'diff')
    await fs.chmod(path.join(b, 'run.sh'), 0o644)
    await fs.writeFile(path.join(b, '.syncagent-tmp-123'), '')
    const treeB = await readTree(b)
    const diff = diffTrees(treeA, treeB)
    expect(diff).toHaveLength(3)
    expect(diff.join('\n')).toMatch(/^\.syncagent-tmp-123: A has missing, B has file/m)
    expect(diff.join('\n')).toMatch(/^run\.sh: .*exec=111.*exec=0/m)
    expect(diff.join('\n')).toMatch(/^x\/y\.txt: /m)
    expect(tempFiles(treeB)).toEqual(['.syncagent-tmp-123'])
    expect(diffTrees(treeA, treeB, { ignore: (p) => p !== 'run.sh' })).toHaveLength(1)
  })

  it('until returns the first truthy value and reports the last observation on timeout', async () => {
    let calls = 0
    expect(await until(() => ++calls >= 3 && 'done', { timeoutMs: 2_000, intervalMs: 1, message: 'three calls' })).toBe('done')
    await expect(
      until(
        () => {
          throw new Error('still 2 files missing')
        },
        { timeoutMs: 50, intervalMs: 10, message: 'B has the files' }
      )
    ).rejects.toThrow(/waiting until B has the files; last check threw: still 2 files missing/)
  })

  it('until stops at once on a GiveUpError', async () => {
    const startedAt = Date.now()
    await expect(
      until(
        () => {
          throw new GiveUpError('agent b is not running')
        },
        { timeoutMs: 10_000, message: 'never' }
      )
    ).rejects.toThrow(/agent b is not running/)
    expect(Date.now() - startedAt).toBeLessThan(1_000)
  })

  it('stays fails as soon as the condition breaks', async () => {
    let n = 0
    await expect(stays(() => ++n < 3, { durationMs: 5_000, intervalMs: 1, message: 'n stays small' })).rejects.toThrow(/n stays small/)
    await stays(() => true, { durationMs: 20, intervalMs: 5, message: 'true' })
  })

  it('freePorts returns distinct bindable ports', async () => {
    const ports = await freePorts(5)
    expect(new Set(ports).size).toBe(5)
    for (const port of ports) {
      expect(port).toBeGreaterThan(0)
      expect(fsSync.readFileSync(path.join(portLockDir, String(port)), 'utf8'), 'a lock names this process').toBe(String(process.pid))
    }
  })

  it('a port locked by a live process is not claimed; one locked by a dead process is taken over', async () => {
    const port = 31_990 + Math.floor(Math.random() * 10)
    const lock = path.join(portLockDir, String(port))
    const previous = fsSync.existsSync(lock) ? fsSync.readFileSync(lock, 'utf8') : null
    try {
      fsSync.mkdirSync(portLockDir, { recursive: true })
      fsSync.writeFileSync(lock, '1') // pid 1 is always alive
      expect(claimPort(port)).toBe(false)
      const child = spawn(process.execPath, ['-e', ''])
      const deadPid = child.pid!
      await new Promise((resolve) => child.once('exit', resolve))
      fsSync.writeFileSync(lock, String(deadPid))
      expect(claimPort(port)).toBe(true)
      expect(fsSync.readFileSync(lock, 'utf8')).toBe(String(process.pid))
    } finally {
      if (previous === null) fsSync.rmSync(lock, { force: true })
      else fsSync.writeFileSync(lock, previous)
    }
  })
})
