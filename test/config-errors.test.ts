import fs from 'node:fs/promises'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
import { exists } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { freePort } from './helpers/ports.ts'

/** What a case can use: a valid setup in which exactly one thing is then broken. */
interface Setup {
  dir: string
  /** An existing, empty folder. */
  folder: string
  /** A data dir path that does not exist yet; it must still not exist after the failed start. */
  data: string
  secret: string
  listen: string
  /** Writes a config file into `dir` and returns its path. */
  writeConfig(name: string, text: string): Promise<string>
}

interface BadConfigCase {
  name: string
  /** env and CLI args for `start`; `validEnv(s)` is the baseline. */
  run(s: Setup): Promise<{ env: Record<string, string | undefined>; args?: string[]; dataDir?: string }>
  /** Every pattern must match the one stderr line. */
  stderr: RegExp[]
}

function validEnv(s: Setup): Record<string, string | undefined> {
  return { SYNC_AGENT_FOLDER: s.folder, SYNC_AGENT_DATA: s.data, SYNC_AGENT_SECRET: s.secret, SYNC_AGENT_LISTEN: s.listen }
}

/** The secret with one character in the middle replaced by another character of the same secret. */
function withTypo(secret: string): string {
  const i = Math.floor((secret.length + 3) / 2)
  const original = secret[i]!
  const replacement = [...secret.slice(3)].find((ch) => ch !== original && /[a-z0-9]/i.test(ch)) ?? (original === 'a' ? 'b' : 'a')
  return secret.slice(0, i) + replacement + secret.slice(i + 1)
}

const cases: BadConfigCase[] = [
  {
    name: 'no folder setting at all',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_FOLDER: undefined } }),
    stderr: [/SYNC_AGENT_FOLDER|\bfolder\b/]
  },
  {
    name: 'folder does not exist',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_FOLDER: path.join(s.dir, 'no-such-folder') } }),
    stderr: [/SYNC_AGENT_FOLDER/]
  },
  {
    name: 'data dir inside the folder',
    run: async (s) => {
      const data = path.join(s.folder, 'state')
      return { env: { ...validEnv(s), SYNC_AGENT_DATA: data }, dataDir: data }
    },
    stderr: [/SYNC_AGENT_DATA/]
  },
  {
    name: 'versions dir inside the folder (it would be synced)',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_VERSIONS_DIR: path.join(s.folder, '.versions') } }),
    stderr: [/SYNC_AGENT_VERSIONS_DIR/, /outside the folder/]
  },
  {
    name: 'versions dir inside the data dir (encrypted at rest; versions are plain files)',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_VERSIONS_DIR: path.join(s.data, 'versions') } }),
    stderr: [/SYNC_AGENT_VERSIONS_DIR/, /data dir/]
  },
  {
    name: 'versions kept a negative number of days',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_VERSIONS_KEEP_DAYS: '-1' } }),
    stderr: [/SYNC_AGENT_VERSIONS_KEEP_DAYS/]
  },
  {
    name: 'no secret',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_SECRET: undefined } }),
    // set nowhere, so either the env var or the config key may be named
    stderr: [/SYNC_AGENT_SECRET|\bsecret\b/]
  },
  {
    name: 'both SYNC_AGENT_SECRET and SYNC_AGENT_SECRET_FILE',
    run: async (s) => {
      const secretFile = path.join(s.dir, 'secret.txt')
      await fs.writeFile(secretFile, `${s.secret}\n`)
      return { env: { ...validEnv(s), SYNC_AGENT_SECRET_FILE: secretFile } }
    },
    stderr: [/SYNC_AGENT_SECRET_FILE/, /SYNC_AGENT_SECRET(?!_FILE)/]
  },
  {
    name: 'secret with a one-character typo (checksum)',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_SECRET: withTypo(s.secret) } }),
    stderr: [/SYNC_AGENT_SECRET/, /checksum/i]
  },
  {
    name: 'secret with the wrong prefix',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_SECRET: `zz9${s.secret.slice(3)}` } }),
    stderr: [/SYNC_AGENT_SECRET/]
  },
  {
    name: 'secret file does not exist',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_SECRET: undefined, SYNC_AGENT_SECRET_FILE: path.join(s.dir, 'no-secret.txt') } }),
    stderr: [/SYNC_AGENT_SECRET_FILE/]
  },
  {
    name: 'a send limit too low to keep a connection alive',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_MAX_SEND_KIBPS: '2' } }),
    stderr: [/SYNC_AGENT_MAX_SEND_KIBPS/, /at least 8 KiB\/s/]
  },
  {
    name: 'LISTEN without a port',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_LISTEN: '127.0.0.1' } }),
    stderr: [/SYNC_AGENT_LISTEN/]
  },
  {
    name: 'LISTEN with port 70000',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_LISTEN: '127.0.0.1:70000' } }),
    stderr: [/SYNC_AGENT_LISTEN/]
  },
  {
    name: 'LISTEN with a non-numeric port',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_LISTEN: '127.0.0.1:http' } }),
    stderr: [/SYNC_AGENT_LISTEN/]
  },
  {
    name: 'PEERS with one bad entry',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_PEERS: '127.0.0.1:4000,not-a-peer' } }),
    stderr: [/SYNC_AGENT_PEERS/]
  },
  {
    name: 'SETTLE_MS negative',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_SETTLE_MS: '-5' } }),
    stderr: [/SYNC_AGENT_SETTLE_MS/]
  },
  {
    name: 'SETTLE_MS not a number',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_SETTLE_MS: 'soon' } }),
    stderr: [/SYNC_AGENT_SETTLE_MS/]
  },
  {
    name: 'control socket path longer than 100 bytes',
    run: async (s) => ({ env: { ...validEnv(s), SYNC_AGENT_CONTROL: path.join(s.dir, `${'c'.repeat(110)}.sock`) } }),
    stderr: [/SYNC_AGENT_CONTROL/]
  },
  {
    name: 'unknown key in the config file',
    run: async (s) => {
      const file = await s.writeConfig('unknown.json', JSON.stringify({ folder: s.folder, data: s.data, secret: s.secret, listen: s.listen, bogusSetting: true }))
      return { env: {}, args: ['--config', file] }
    },
    stderr: [/bogusSetting/]
  },
  {
    name: 'bad peer in the config file names peers.1',
    run: async (s) => {
      const file = await s.writeConfig('peers.json', JSON.stringify({ folder: s.folder, data: s.data, secret: s.secret, listen: s.listen, peers: ['127.0.0.1:4000', 'not-a-peer'] }))
      return { env: {}, args: ['--config', file] }
    },
    stderr: [/peers\.1/]
  },
  {
    name: 'bad listen in a YAML config file names the key',
    run: async (s) => {
      const file = await s.writeConfig('listen.yaml', `folder: ${JSON.stringify(s.folder)}\ndata: ${JSON.stringify(s.data)}\nsecret: ${s.secret}\nlisten: "127.0.0.1:99999"\n`)
      return { env: {}, args: ['--config', file] }
    },
    stderr: [/\blisten\b/]
  },
  {
    name: 'bad LISTEN in env overriding a good config file names the env var',
    run: async (s) => {
      const file = await s.writeConfig('good.json', JSON.stringify({ folder: s.folder, data: s.data, secret: s.secret, listen: s.listen }))
      return { env: { SYNC_AGENT_LISTEN: '127.0.0.1:' }, args: ['--config', file] }
    },
    stderr: [/SYNC_AGENT_LISTEN/]
  },
  {
    name: 'malformed JSON config file',
    run: async (s) => {
      const file = await s.writeConfig('broken.json', `{ "folder": ${JSON.stringify(s.folder)}, `)
      return { env: {}, args: ['--config', file] }
    },
    stderr: [/broken\.json|--config/]
  },
  {
    name: 'malformed YAML config file',
    run: async (s) => {
      const file = await s.writeConfig('broken.yaml', `folder: [${JSON.stringify(s.folder)}\n  data: : :\n`)
      return { env: {}, args: ['--config', file] }
    },
    stderr: [/broken\.yaml|--config/]
  },
  {
    name: 'config file not found',
    run: async (s) => ({ env: validEnv(s), args: ['--config', path.join(s.dir, 'missing.yaml')] }),
    stderr: [/missing\.yaml|--config/]
  }
]

describe('start with a bad setting exits 2 with one stderr line naming it, and writes nothing', () => {
  const harness = useHarness()
  let secret: string

  beforeAll(async () => {
    secret = await newSecret()
  })

  it.each(cases)('$name', async (testCase) => {
    const dir = await harness.tmpDir()
    const folder = path.join(dir, 'folder')
    await fs.mkdir(folder)
    const setup: Setup = {
      dir,
      folder,
      data: path.join(dir, 'data'),
      secret,
      listen: `127.0.0.1:${await freePort()}`,
      async writeConfig(name, text) {
        const file = path.join(dir, name)
        await fs.writeFile(file, text)
        return file
      }
    }
    const { env, args = [], dataDir = setup.data } = await testCase.run(setup)
    const result = await runCli(['start', ...args], { env: { SYNC_AGENT_LOG_LEVEL: 'info', ...env }, timeoutMs: 15_000 })
    const explain = `stdout: ${result.stdout}\nstderr: ${result.stderr}`
    expect(result.code, explain).toBe(2)
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '')
    expect(lines, explain).toHaveLength(1)
    for (const pattern of testCase.stderr) expect(lines[0], explain).toMatch(pattern)
    expect(await exists(dataDir), `data dir ${dataDir} was created`).toBe(false)
    expect(await exists(setup.data), `data dir ${setup.data} was created`).toBe(false)
    expect(await fs.readdir(folder), 'the folder was written to').toEqual([])
  })
})
