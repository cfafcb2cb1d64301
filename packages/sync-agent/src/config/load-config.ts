import { readFileSync, realpathSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { insideOrEqual, realOrResolved } from '../path-inside.js'
import { parse as parseYaml } from 'yaml'
import {
  validateConfig,
  ENV_SETTINGS,
  LIST_SETTINGS,
  JSON_SETTINGS,
  parseSecret,
  SyncError,
  isSyncError,
  type FileOwner,
  type HostPort,
  type PriorityClass,
  type ParsedSecret
} from '@sync-agent/shared'

/**
 * Reads the config file, then env vars over it, then the secret file; validates everything
 * with the shared schema plus the checks that need the file system. Nothing is written.
 * Every error names the setting as the user wrote it: the env var, or the file key path.
 */
export interface AgentConfig {
  folder: string
  dataDir: string
  secret: ParsedSecret
  listen: HostPort
  peers: HostPort[]
  controlPath: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  settleMs: number
  rescanIntervalS: number
  massDeleteShare: number
  /** a peer whose claims stay out of reach this long is not serving (see unserved-claims.ts) */
  notServingAfterS: number
  /** a read from peers that nobody serves fails after this (see the schema) */
  requestTimeoutS: number
  /** an event loop stalled this long ends the agent (event-loop-watchdog.ts); 0: off */
  watchdogS: number
  /** DHT discovery: bootstrap nodes, public DHT opt-in, and a bootstrap node to run here */
  bootstrap: HostPort[]
  publicDht: boolean
  dhtNode: HostPort | null
  /** device ids allowed to connect; empty = anyone with the secret */
  allow: string[]
  /** bandwidth limits of the peer connections over TCP, KiB/s; 0: none */
  maxSendKiBps: number
  maxRecvKiBps: number
  /** the limits apply to LAN peers too (false: peers at LAN addresses are not limited) */
  limitLan: boolean
  /** where replaced and deleted files are kept (version-archive.ts); null: not kept */
  versionsDir: string | null
  versionsKeepDays: number
  ignore: { presets: Array<'wordpress'>; patterns: string[] }
  priority: 'wordpress' | 'none' | PriorityClass[]
  readyClasses: number
  offlineReadyAfterS: number
  http: HostPort | null
  agentCheck: HostPort | null
  serve: string[]
  /** what the folder writer applies to what it writes; null: leave as created */
  fileOwner: FileOwner | null
  fileMode: number | null
  dirMode: number | null
}

/** Who the agent runs as (injected in tests). */
export interface ProcessIdentity {
  uid: number
  gid: number
  groups: number[]
}

export function currentIdentity(): ProcessIdentity {
  return { uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1, groups: process.getgroups?.() ?? [] }
}

/**
 * chown needs root, except to give a file to oneself and one's own group. Rather than write
 * files WordPress then cannot edit, a fileOwner the process cannot apply is a config error.
 */
function ownerProblem(owner: FileOwner, who: ProcessIdentity): string | null {
  if (who.uid === 0) return null
  if (owner.uid === who.uid && (owner.gid === who.gid || who.groups.includes(owner.gid))) return null
  return `${owner.uid}:${owner.gid} needs root to apply (the agent runs as uid ${who.uid}, gid ${who.gid}); run the agent as root, or as ${owner.uid}:${owner.gid} itself`
}

const MAX_SOCKET_PATH_BYTES = 107

type Raw = Record<string, unknown>

function configError(setting: string, problem: string, cause?: unknown): SyncError {
  return new SyncError('E_CONFIG', `${setting}: ${problem}`, { cause, details: { setting } })
}

function readConfigFile(path: string): Raw {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw configError('--config', code === 'ENOENT' ? `file ${path} not found` : `cannot read ${path} (${code})`, err)
  }
  let value: unknown
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw configError('--config', `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, err)
  }
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw configError('--config', `${path} must hold a mapping of settings`)
  return value as Raw
}

function setPath(target: Raw, dotted: string, value: unknown): void {
  const parts = dotted.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    const next = node[part]
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {}
    node = node[part] as Raw
  }
  node[parts[parts.length - 1] as string] = value
}

function issueSetting(issuePath: readonly string[], fromEnv: Map<string, string>): string {
  const dotted = issuePath.join('.')
  for (const [key, envName] of fromEnv) {
    if (dotted === key || dotted.startsWith(key + '.')) return envName + (dotted === key ? '' : ` (item ${dotted.slice(key.length + 1)})`)
  }
  return dotted || 'config'
}

function envValue(envName: string, key: string, value: string): unknown {
  if (LIST_SETTINGS.has(key)) return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  if (JSON_SETTINGS.has(key) && /^\s*[[{]/.test(value)) {
    try {
      return JSON.parse(value) as unknown
    } catch (err) {
      throw configError(envName, `is not valid JSON: ${(err as Error).message}`, err)
    }
  }
  return value
}

export function loadConfig(opts: { configFile?: string; env: NodeJS.ProcessEnv; cwd: string; identity?: ProcessIdentity }): AgentConfig {
  const raw: Raw = opts.configFile ? readConfigFile(resolve(opts.cwd, opts.configFile)) : {}
  const baseDir = opts.configFile ? dirname(resolve(opts.cwd, opts.configFile)) : opts.cwd
  const fromEnv = new Map<string, string>()
  for (const [envName, key] of Object.entries(ENV_SETTINGS)) {
    const value = opts.env[envName]
    if (value === undefined || value === '') continue
    fromEnv.set(key, envName)
    setPath(raw, key, envValue(envName, key, value))
  }
  const settingName = (key: string) => fromEnv.get(key) ?? key
  const parsed = validateConfig(raw)
  if (!parsed.ok) throw configError(issueSetting(parsed.path, fromEnv), parsed.problem)
  const c = parsed.config
  if (c.fileOwner) {
    const problem = ownerProblem(c.fileOwner, opts.identity ?? currentIdentity())
    if (problem) throw configError(settingName('fileOwner'), problem)
  }
  // the secret: exactly one source
  const hasSecret = c.secret !== undefined && c.secret !== ''
  if (hasSecret && c.secretFile) throw configError(`${settingName('secret')} and ${settingName('secretFile')}`, 'set only one of them')
  if (!hasSecret && !c.secretFile) throw configError(`${settingName('secret')} or ${settingName('secretFile')}`, 'is required (make a secret with "sync-agent secret new")')
  let secretText: string
  let secretSetting: string
  if (c.secretFile) {
    secretSetting = settingName('secretFile')
    try {
      secretText = readFileSync(resolve(baseDir, c.secretFile), 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw configError(secretSetting, code === 'ENOENT' ? `file ${c.secretFile} not found` : `cannot read ${c.secretFile} (${code})`, err)
    }
  } else {
    secretSetting = settingName('secret')
    secretText = c.secret as string
  }
  let secret: ParsedSecret
  try {
    secret = parseSecret(secretText)
  } catch (err) {
    if (isSyncError(err)) throw configError(secretSetting, err.message, err)
    throw err
  }
  // the folder must exist and be a directory
  const folderSetting = settingName('folder')
  const folder = resolve(baseDir, c.folder)
  let folderReal: string
  try {
    if (!statSync(folder).isDirectory()) throw configError(folderSetting, `${folder} is not a directory`)
    folderReal = realpathSync(folder)
  } catch (err) {
    if (isSyncError(err)) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw configError(folderSetting, code === 'ENOENT' ? `${folder} does not exist` : `cannot use ${folder} (${code})`, err)
  }
  // the data dir must be outside the folder (and the folder outside it)
  const dataSetting = settingName('data')
  const dataDir = resolve(baseDir, c.data)
  const dataReal = realOrResolved(dataDir)
  if (insideOrEqual(folderReal, dataReal)) throw configError(dataSetting, `${dataDir} is inside the synced folder ${folder}; put it outside`)
  if (insideOrEqual(dataReal, folderReal)) throw configError(dataSetting, `the synced folder ${folder} is inside the data dir ${dataDir}`)
  try {
    const st = statSync(dataDir)
    if (!st.isDirectory()) throw configError(dataSetting, `${dataDir} exists and is not a directory`)
  } catch (err) {
    if (isSyncError(err)) throw err
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw configError(dataSetting, `cannot use ${dataDir} (${(err as NodeJS.ErrnoException).code})`, err)
  }
  // kept versions must not be synced (inside the folder) nor sit in the encrypted data dir
  let versionsDir: string | null = null
  if (c.versionsDir !== undefined) {
    const versionsSetting = settingName('versionsDir')
    versionsDir = resolve(baseDir, c.versionsDir)
    const versionsReal = realOrResolved(versionsDir)
    if (insideOrEqual(folderReal, versionsReal) || insideOrEqual(versionsReal, folderReal)) {
      throw configError(versionsSetting, `${versionsDir} and the synced folder ${folder} overlap; put the versions outside the folder`)
    }
    if (insideOrEqual(dataReal, versionsReal) || insideOrEqual(versionsReal, dataReal)) {
      throw configError(versionsSetting, `${versionsDir} and the data dir ${dataDir} overlap (the data dir is encrypted at rest; versions are plain files); put them apart`)
    }
    versionsDir = versionsReal
  }
  const controlPath = c.control ? resolve(baseDir, c.control) : join(dataDir, 'control.sock')
  if (Buffer.byteLength(controlPath) > MAX_SOCKET_PATH_BYTES) {
    throw configError(c.control ? settingName('control') : dataSetting, `the control socket path ${controlPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes (a Unix socket limit); choose a shorter path`)
  }
  return Object.freeze({
    folder: folderReal,
    dataDir: dataReal,
    secret,
    listen: c.listen,
    peers: c.peers,
    controlPath,
    logLevel: c.logLevel,
    settleMs: c.settleMs,
    rescanIntervalS: c.rescanIntervalS,
    ignore: { presets: [...c.ignore.presets], patterns: [...c.ignore.patterns] },
    priority: c.priority,
    readyClasses: c.readyClasses,
    offlineReadyAfterS: c.offlineReadyAfterS,
    http: c.http ?? null,
    agentCheck: c.agentCheck ?? null,
    serve: [...c.serve],
    fileOwner: c.fileOwner ?? null,
    fileMode: c.fileMode ?? null,
    dirMode: c.dirMode ?? null,
    massDeleteShare: c.massDeleteShare,
    notServingAfterS: c.notServingAfterS,
    requestTimeoutS: c.requestTimeoutS,
    watchdogS: c.watchdogS,
    bootstrap: c.bootstrap,
    publicDht: c.publicDht,
    dhtNode: c.dhtNode ?? null,
    allow: c.allow.map((id) => id.toUpperCase()),
    maxSendKiBps: c.maxSendKiBps,
    maxRecvKiBps: c.maxRecvKiBps,
    limitLan: c.limitLan,
    versionsDir,
    versionsKeepDays: c.versionsKeepDays
  })
}
