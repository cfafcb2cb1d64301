import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { formatSecret, deriveReadOnly, SyncError, type ParsedSecret } from '@sync-agent/shared'
import { loadConfig, type AgentConfig } from '../src/config/load-config.js'

const RW: ParsedSecret = { kind: 'rw', payload: Buffer.alloc(32, 3) }
const SECRET = formatSecret(RW)
const RO_SECRET = formatSecret(deriveReadOnly(RW))

let root: string
let folder: string
let data: string

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'sa-cfg-')))
  folder = join(root, 'site')
  data = join(root, 'state')
  mkdirSync(folder)
})

afterEach(() => {
  rmSync(root, { recursive: true, force: true })
})

function write(name: string, text: string): string {
  const path = join(root, name)
  writeFileSync(path, text)
  return path
}

function load(env: Record<string, string>, configFile?: string, cwd = root): AgentConfig {
  return loadConfig({ configFile, env, cwd })
}

function configError(fn: () => unknown): SyncError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SyncError)
    expect((err as SyncError).code).toBe('E_CONFIG')
    return err as SyncError
  }
  throw new Error('expected an E_CONFIG error, got a config')
}

const baseEnv = () => ({ SYNC_AGENT_FOLDER: folder, SYNC_AGENT_DATA: data, SYNC_AGENT_SECRET: SECRET })

describe('loadConfig from env only', () => {
  it('returns a frozen config with defaults', () => {
    const config = load(baseEnv())
    expect(Object.isFrozen(config)).toBe(true)
    expect(config).toMatchObject({
      folder,
      dataDir: data,
      listen: { host: '0.0.0.0', port: 7657 },
      peers: [],
      controlPath: join(data, 'control.sock'),
      logLevel: 'info',
      settleMs: 50,
      ignore: { presets: ['wordpress'], patterns: [] },
      versionsDir: null,
      versionsKeepDays: 30
    })
    expect(config.secret.kind).toBe('rw')
    expect(config.secret.payload.equals(RW.payload)).toBe(true)
  })

  it('splits list settings on commas and drops blanks', () => {
    const config = load({
      ...baseEnv(),
      SYNC_AGENT_PEERS: 'a.example:1, b.example:2,,',
      SYNC_AGENT_IGNORE_PRESETS: '',
      SYNC_AGENT_IGNORE: '*.bak, tmp/'
    })
    expect(config.peers).toEqual([
      { host: 'a.example', port: 1 },
      { host: 'b.example', port: 2 }
    ])
    expect(config.ignore.patterns).toEqual(['*.bak', 'tmp/'])
    expect(config.ignore.presets).toEqual(['wordpress']) // an empty env var is unset
  })

  it('never creates the data dir', () => {
    load(baseEnv())
    expect(existsSync(data)).toBe(false)
  })

  it('returns the requested data dir when none of its ancestors below the root exist', () => {
    const missing = `/sync-agent-test-missing-${process.pid}-${Date.now()}/state`
    expect(existsSync(missing)).toBe(false)
    const config = load({ ...baseEnv(), SYNC_AGENT_DATA: missing })
    expect(config.dataDir).toBe(missing)
  })

  it('accepts a data dir next to the folder whose name starts with the folder name', () => {
    const config = load({ ...baseEnv(), SYNC_AGENT_DATA: folder + '-state' })
    expect(config.dataDir).toBe(folder + '-state')
  })

  it('accepts a read-only secret', () => {
    expect(load({ ...baseEnv(), SYNC_AGENT_SECRET: RO_SECRET }).secret.kind).toBe('ro')
  })
})

describe('loadConfig errors name the setting', () => {
  it.each<[string, Record<string, string | undefined>, RegExp]>([
    ['a bad listen address', { SYNC_AGENT_LISTEN: 'nowhere' }, /^SYNC_AGENT_LISTEN: .*no port/],
    ['a bad second peer', { SYNC_AGENT_PEERS: 'a.example:1,b.example:0' }, /^SYNC_AGENT_PEERS \(item 1\): .*1-65535/],
    ['a bad settle time', { SYNC_AGENT_SETTLE_MS: '-5' }, /^SYNC_AGENT_SETTLE_MS: must be at least 0/],
    ['a bad log level', { SYNC_AGENT_LOG_LEVEL: 'loud' }, /^SYNC_AGENT_LOG_LEVEL: /],
    ['an unknown preset', { SYNC_AGENT_IGNORE_PRESETS: 'drupal' }, /^SYNC_AGENT_IGNORE_PRESETS \(item 0\): /],
    ['a missing folder setting', { SYNC_AGENT_FOLDER: undefined }, /^folder: is required/],
    ['no secret at all', { SYNC_AGENT_SECRET: undefined }, /^secret or secretFile: is required/],
    ['a secret with a typo', { SYNC_AGENT_SECRET: SECRET.slice(0, 10) + (SECRET[10] === 'a' ? 'b' : 'a') + SECRET.slice(11) }, /^SYNC_AGENT_SECRET: .*checksum/],
    ['both secret and secret file', { SYNC_AGENT_SECRET_FILE: '/x' }, /^SYNC_AGENT_SECRET and SYNC_AGENT_SECRET_FILE: set only one/],
    ['a missing secret file', { SYNC_AGENT_SECRET: undefined, SYNC_AGENT_SECRET_FILE: '/nonexistent/secret' }, /^SYNC_AGENT_SECRET_FILE: .*not found/]
  ])('%s', (_name, overrides, message) => {
    const env = { ...baseEnv(), ...overrides }
    for (const key of Object.keys(env)) if (env[key as keyof typeof env] === undefined) delete env[key as keyof typeof env]
    expect(configError(() => load(env as Record<string, string>)).message).toMatch(message)
  })

  it('a bad secret is reported without echoing the secret', () => {
    const typo = SECRET.slice(0, -3) + 'zzz'
    const error = configError(() => load({ ...baseEnv(), SYNC_AGENT_SECRET: typo }))
    expect(error.message).not.toContain(typo.slice(6, 40))
  })

  it('a folder that does not exist', () => {
    const error = configError(() => load({ ...baseEnv(), SYNC_AGENT_FOLDER: join(root, 'nope') }))
    expect(error.message).toMatch(/^SYNC_AGENT_FOLDER: .*nope does not exist/)
  })

  it('a folder that is a file', () => {
    const file = write('file', 'x')
    expect(configError(() => load({ ...baseEnv(), SYNC_AGENT_FOLDER: file })).message).toMatch(/^SYNC_AGENT_FOLDER: .*not a directory/)
  })

  it.each([
    ['inside the folder', () => join(folder, 'state')],
    ['the folder itself', () => folder],
    ['inside the folder through a symlink', () => {
      symlinkSync(folder, join(root, 'link'))
      return join(root, 'link', 'state')
    }]
  ])('a data dir %s', (_name, dataDir) => {
    const error = configError(() => load({ ...baseEnv(), SYNC_AGENT_DATA: dataDir() }))
    expect(error.message).toMatch(/^SYNC_AGENT_DATA: .*inside the synced folder/)
  })

  it('a data dir that contains the folder', () => {
    expect(configError(() => load({ ...baseEnv(), SYNC_AGENT_DATA: root })).message).toMatch(/^SYNC_AGENT_DATA: .*inside the data dir/)
  })

  it.each([
    ['inside the folder', () => join(folder, '.versions'), /outside the folder/],
    ['the folder itself', () => folder, /outside the folder/],
    ['holding the folder', () => root, /outside the folder/],
    ['inside the data dir', () => join(data, 'versions'), /data dir .* overlap/],
    ['that is the data dir', () => data, /data dir .* overlap/]
  ])('a versions dir %s', (_name, dir, problem) => {
    const error = configError(() => load({ ...baseEnv(), SYNC_AGENT_VERSIONS_DIR: dir() }))
    expect(error.message).toMatch(/^SYNC_AGENT_VERSIONS_DIR: /)
    expect(error.message).toMatch(problem)
  })

  it('a data dir that is a file', () => {
    const file = write('state-file', 'x')
    expect(configError(() => load({ ...baseEnv(), SYNC_AGENT_DATA: file })).message).toMatch(/^SYNC_AGENT_DATA: .*not a directory/)
  })

  it('a control path longer than 107 bytes', () => {
    const control = join(root, 'c'.repeat(120) + '.sock')
    expect(configError(() => load({ ...baseEnv(), SYNC_AGENT_CONTROL: control })).message).toMatch(/^SYNC_AGENT_CONTROL: .*107 bytes/)
  })

  it('a data dir so long that the default control path exceeds 107 bytes', () => {
    const longData = join(root, 'd'.repeat(100))
    expect(configError(() => load({ ...baseEnv(), SYNC_AGENT_DATA: longData })).message).toMatch(/^SYNC_AGENT_DATA: .*107 bytes/)
  })
})

describe('loadConfig: owner and modes of written files', () => {
  const asUser = { uid: 1000, gid: 1000, groups: [1000, 33] }

  it('maps SYNC_AGENT_FILE_OWNER / _FILE_MODE / _DIR_MODE; unset means null', () => {
    expect(load(baseEnv())).toMatchObject({ fileOwner: null, fileMode: null, dirMode: null })
    const config = load({ ...baseEnv(), SYNC_AGENT_FILE_OWNER: '33:33', SYNC_AGENT_FILE_MODE: '0664', SYNC_AGENT_DIR_MODE: '2775' })
    expect(config).toMatchObject({ fileOwner: { uid: 33, gid: 33 }, fileMode: 0o664, dirMode: 0o2775 })
  })

  it('as root any owner is fine', () => {
    const config = loadConfig({ env: { ...baseEnv(), SYNC_AGENT_FILE_OWNER: '33:33' }, cwd: root, identity: { uid: 0, gid: 0, groups: [0] } })
    expect(config.fileOwner).toEqual({ uid: 33, gid: 33 })
  })

  it('not root: its own uid and one of its groups are fine (chown to oneself needs no privilege)', () => {
    const config = loadConfig({ env: { ...baseEnv(), SYNC_AGENT_FILE_OWNER: '1000:33' }, cwd: root, identity: asUser })
    expect(config.fileOwner).toEqual({ uid: 1000, gid: 33 })
  })

  it.each([
    ['another uid', '33:33'],
    ['a group it is not in', '1000:0']
  ])('not root, %s: a config error naming the setting and what to do', (_name, owner) => {
    const err = configError(() => loadConfig({ env: { ...baseEnv(), SYNC_AGENT_FILE_OWNER: owner }, cwd: root, identity: asUser }))
    expect(err.message).toBe(`SYNC_AGENT_FILE_OWNER: ${owner} needs root to apply (the agent runs as uid 1000, gid 1000); run the agent as root, or as ${owner} itself`)
  })

  it('a bad mode names the env var', () => {
    expect(configError(() => load({ ...baseEnv(), SYNC_AGENT_DIR_MODE: 'rwxr-xr-x' })).message).toMatch(/^SYNC_AGENT_DIR_MODE: expected an octal mode/)
  })
})

describe('loadConfig with a config file', () => {
  it('reads YAML', () => {
    const file = write('agent.yaml', `folder: ${folder}\ndata: ${data}\nsecret: ${SECRET}\npeers:\n  - a.example:7657\nsettleMs: 10\n`)
    const config = load({}, file)
    expect(config.peers).toEqual([{ host: 'a.example', port: 7657 }])
    expect(config.settleMs).toBe(10)
  })

  it('reads JSON', () => {
    const file = write('agent.json', JSON.stringify({ folder, data, secret: SECRET, logLevel: 'warn' }))
    expect(load({}, file).logLevel).toBe('warn')
  })

  it('env overrides the file', () => {
    const file = write('agent.yaml', `folder: ${folder}\ndata: ${data}\nsecret: ${SECRET}\nlisten: 127.0.0.1:1000\nlogLevel: warn\n`)
    const config = load({ SYNC_AGENT_LISTEN: '127.0.0.1:2000' }, file)
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 2000 })
    expect(config.logLevel).toBe('warn')
  })

  it('a file error names the file key', () => {
    const file = write('agent.yaml', `folder: ${folder}\ndata: ${data}\nsecret: ${SECRET}\nlisten: nowhere\npeers: [a.example:1, bad]\n`)
    expect(configError(() => load({}, file)).message).toMatch(/^listen: /)
  })

  it('a bad peer in the file names its item path', () => {
    const file = write('agent.yaml', `folder: ${folder}\ndata: ${data}\nsecret: ${SECRET}\npeers: [a.example:1, bad]\n`)
    expect(configError(() => load({}, file)).message).toMatch(/^peers\.1: /)
  })

  it('an unknown key in the file is named', () => {
    const file = write('agent.yaml', `folder: ${folder}\ndata: ${data}\nsecret: ${SECRET}\nfolders: x\n`)
    expect(configError(() => load({}, file)).message).toMatch(/unknown setting "folders"/)
  })

  it('resolves relative paths against the config file directory, not cwd', () => {
    mkdirSync(join(root, 'etc'))
    writeFileSync(join(root, 'etc', 'secret.txt'), `\n  ${SECRET}  \n\n`)
    const file = write('etc/agent.yaml', 'folder: ../site\ndata: ../state\nsecretFile: secret.txt\ncontrol: ../c.sock\n')
    const config = load({}, 'etc/agent.yaml', root)
    expect(file).toBe(join(root, 'etc', 'agent.yaml'))
    expect(config.folder).toBe(folder)
    expect(config.dataDir).toBe(data)
    expect(config.controlPath).toBe(join(root, 'c.sock'))
    expect(config.secret.payload.equals(RW.payload)).toBe(true)
    const withVersions = write('etc/versions.yaml', 'folder: ../site\ndata: ../state\nsecretFile: secret.txt\nversionsDir: ../versions\nversionsKeepDays: 7\n')
    expect(load({}, withVersions, root)).toMatchObject({ versionsDir: join(root, 'versions'), versionsKeepDays: 7 })
  })

  it('resolves env paths against cwd when there is no config file', () => {
    const config = load({ SYNC_AGENT_FOLDER: 'site', SYNC_AGENT_DATA: 'state', SYNC_AGENT_SECRET: SECRET })
    expect(config.folder).toBe(folder)
    expect(config.dataDir).toBe(data)
  })

  it('reads and trims the secret file', () => {
    const secretFile = write('secret', `${SECRET}\n`)
    const config = load({ SYNC_AGENT_FOLDER: folder, SYNC_AGENT_DATA: data, SYNC_AGENT_SECRET_FILE: secretFile })
    expect(config.secret.payload.equals(RW.payload)).toBe(true)
  })

  it('rejects secret and secretFile both in the file', () => {
    const file = write('agent.yaml', `folder: ${folder}\ndata: ${data}\nsecret: ${SECRET}\nsecretFile: s.txt\n`)
    expect(configError(() => load({}, file)).message).toMatch(/^secret and secretFile: set only one/)
  })

  it.each([
    ['malformed YAML', 'agent.yaml', 'folder: [unclosed\n', /not valid YAML/],
    ['malformed JSON', 'agent.json', '{"folder": ', /not valid JSON/],
    ['a list instead of a mapping', 'agent.yaml', '- a\n- b\n', /mapping/],
    ['a scalar instead of a mapping', 'agent.yaml', 'hello\n', /mapping/]
  ])('%s is reported against --config', (_name, fileName, text, message) => {
    const file = write(fileName, text)
    const error = configError(() => load(baseEnv(), file))
    expect(error.message).toMatch(/^--config: /)
    expect(error.message).toMatch(message)
  })

  it('a missing config file is reported against --config', () => {
    expect(configError(() => load(baseEnv(), join(root, 'none.yaml'))).message).toMatch(/^--config: .*not found/)
  })

  it('an empty config file is an empty mapping', () => {
    const file = write('agent.yaml', '')
    expect(load(baseEnv(), file).folder).toBe(folder)
  })
})
