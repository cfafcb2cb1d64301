import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cleanEnv, newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { binPath } from './helpers/paths.ts'
import { waitConverged } from './helpers/sync.ts'

const isRoot = process.geteuid?.() === 0

/** uid:gid, mode (octal) of a path, for one readable assertion per path. */
async function ownerMode(p: string): Promise<string> {
  const st = await fs.lstat(p)
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`
}

describe.runIf(isRoot)('fileOwner / fileMode / dirMode (agent running as root)', () => {
  const harness = useHarness()

  it('what B writes into its folder belongs to 33:33 with the configured modes; what A wrote stays as it was', async () => {
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret })
    const b = await harness.agent({
      name: 'b',
      secret,
      peers: [a.address],
      env: { SYNC_AGENT_FILE_OWNER: '33:33', SYNC_AGENT_FILE_MODE: '0664', SYNC_AGENT_DIR_MODE: '2775' }
    })
    await fs.mkdir(path.join(a.folder, 'uploads', '2024'), { recursive: true })
    await fs.writeFile(path.join(a.folder, 'uploads', '2024', 'cat.jpg'), 'meow', { mode: 0o600 })
    await fs.writeFile(path.join(a.folder, 'run.sh'), '#!/bin/sh\n')
    await fs.chmod(path.join(a.folder, 'run.sh'), 0o755)
    await a.start()
    await b.start()
    await waitConverged([a, b])
    expect(await ownerMode(path.join(b.folder, 'uploads'))).toBe('33:33 2775')
    expect(await ownerMode(path.join(b.folder, 'uploads', '2024'))).toBe('33:33 2775')
    expect(await ownerMode(path.join(b.folder, 'uploads', '2024', 'cat.jpg'))).toBe('33:33 664')
    // the exec bit is content: it follows the synced file
    expect(await ownerMode(path.join(b.folder, 'run.sh'))).toBe('33:33 775')
    expect(await ownerMode(path.join(a.folder, 'uploads', '2024', 'cat.jpg'))).toBe('0:0 600')

    // a file edited on A later arrives with the same owner, and B does not publish it back
    await fs.writeFile(path.join(a.folder, 'uploads', '2024', 'cat.jpg'), 'purr')
    await waitConverged([a, b])
    expect(await ownerMode(path.join(b.folder, 'uploads', '2024', 'cat.jpg'))).toBe('33:33 664')
    expect((await b.status()).conflicts).toBe(0)
  })

  it('an agent not running as root with a fileOwner it cannot apply refuses to start (exit 2, one line)', async () => {
    const dir = await harness.tmpDir()
    const child = spawn(process.execPath, [binPath, 'start'], {
      uid: 1000,
      gid: 1000,
      env: cleanEnv({
        SYNC_AGENT_FOLDER: dir,
        SYNC_AGENT_DATA: path.join(dir, '..', 'never-created'),
        SYNC_AGENT_SECRET: await newSecret(),
        SYNC_AGENT_FILE_OWNER: '33:33'
      }),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
    expect(code).toBe(2)
    expect(stderr.trim().split('\n')).toEqual(['sync-agent: SYNC_AGENT_FILE_OWNER: 33:33 needs root to apply (the agent runs as uid 1000, gid 1000); run the agent as root, or as 33:33 itself'])
  })
})
