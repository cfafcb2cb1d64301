import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { deriveEncrypted, deriveFolderKeys, deriveReadOnly, formatSecret, parseSecret } from '../packages/shared/dist/index.js'
import { newSecret, runCli } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'

/**
 * Secrets never appear in logs or status (at debug level, through a sync, a restart and a
 * refused peer), the data dir is 0700 and the control socket 0600.
 */
describe('secrets and file modes', () => {
  const harness = useHarness()

  it('no form of the secret or its derived keys is ever logged; data dir 0700, control socket 0600', async () => {
    const secret = await newSecret()
    const env = { SYNC_AGENT_LOG_LEVEL: 'debug' }
    const a = await harness.agent({ name: 'a', secret, env })
    const b = await harness.agent({ name: 'b', secret, env, peers: [a.address] })
    const stranger = await harness.agent({ name: 'stranger', secret: await newSecret(), env, peers: [a.address] })
    await writeFiles(a.folder, { 'x.txt': 'x\n' })
    await a.start()
    await b.start()
    await stranger.start()
    await waitConverged([a, b])
    await b.restart()
    await waitConverged([a, b])

    for (const agent of [a, b]) {
      expect((await fs.stat(agent.data)).mode & 0o777, `${agent.name} data dir`).toBe(0o700)
      expect((await fs.stat(agent.control)).mode & 0o777, `${agent.name} control socket`).toBe(0o600)
    }

    const parsed = parseSecret(secret)
    const keys = deriveFolderKeys(parsed)
    const forbidden = new Map<string, string>([
      ['the rw secret', secret],
      ['its body', secret.slice('sa1rw-'.length)],
      ['the ro secret', formatSecret(deriveReadOnly(parsed))],
      ['the en secret', formatSecret(deriveEncrypted(parsed))]
    ])
    for (const [name, key] of [['authKey', keys.authKey], ['contentKey', keys.contentKey as Buffer], ['readAuthKey', keys.readAuthKey as Buffer], ['writer secret key', keys.writerKeyPair!.secretKey], ['seed', parsed.payload]] as const) {
      forbidden.set(`${name} (hex)`, Buffer.from(key).toString('hex'))
      forbidden.set(`${name} (base64)`, Buffer.from(key).toString('base64'))
    }
    const statusJson = (await runCli(['status', '--json', '--control', a.control])).stdout
    const human = (await runCli(['status', '--control', a.control])).stdout
    const texts = { 'a log': a.logs, 'b log': b.logs, 'stranger log': stranger.logs, 'status --json': statusJson, status: human }
    expect(a.logs.length).toBeGreaterThan(1000) // debug logs were written
    for (const [where, text] of Object.entries(texts)) {
      for (const [what, value] of forbidden) {
        expect(text.toLowerCase().includes(value.toLowerCase()), `${what} appears in ${where}`).toBe(false)
      }
    }
    // nor in plain text in the data dir's own files (the store is encrypted; see encryption-at-rest)
    for (const name of await fs.readdir(a.data)) {
      const p = path.join(a.data, name)
      if (!(await fs.stat(p)).isFile()) continue
      const bytes = await fs.readFile(p, 'latin1')
      expect(bytes.includes(secret), `${name} holds the secret`).toBe(false)
    }
  })
})
