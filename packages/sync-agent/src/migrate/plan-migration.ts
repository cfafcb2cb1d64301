import { basename, dirname, isAbsolute, join, resolve } from 'node:path'
import { DEFAULT_PEER_PORT, formatHostPort, MIN_RATE_KIBPS, parseHostPort, SyncError, validateConfig, type IGNORE_PRESETS } from '@sync-agent/shared'
import { DISCOVERY_KEYS, type BtsyncConf, type BtsyncFolder, type DiscoveryKey } from './btsync-conf.js'
import { convertIgnoreList, RESILIO_DIR_PATTERN } from './ignore-list.js'

/**
 * Pure: a parsed sync.conf → one sync-agent config per shared folder (our agent syncs one
 * folder per process), with what was mapped, what was dropped and why. The only input from
 * the disk is each folder's `.sync/IgnoreList`, handed in by the caller.
 */
export const DEFAULT_DATA_BASE = '/var/lib/sync-agent'
export const IGNORE_LIST_PATH = '.sync/IgnoreList'

/** The settings we write, in the shape of our config file (keys as in the README's table). */
export interface MigratedConfig {
  folder: string
  data: string
  secretFile: string
  listen: string
  peers: string[]
  rescanIntervalS?: number
  maxSendKiBps?: number
  maxRecvKiBps?: number
  limitLan?: boolean
  versionsDir?: string
  versionsKeepDays?: number
  ignore: { presets: Array<(typeof IGNORE_PRESETS)[number]>; patterns: string[] }
}

export interface FolderPlan {
  /** short name from the folder's directory, unique in this plan (file names, data dirs) */
  name: string
  index: number
  config: MigratedConfig
  mapped: Array<{ from: string; to: string }>
  dropped: Array<{ from: string; why: string }>
  warnings: string[]
}

export interface MigrationPlan {
  folders: FolderPlan[]
  /** top-level sync.conf settings with no equivalent */
  dropped: Array<{ from: string; why: string }>
}

export type IgnoreListRead = { text: string } | { missing: true } | { error: string }

export interface PlanOptions {
  /** absolute path of the sync.conf (relative `dir`s are resolved from its directory) */
  confFile: string
  /** the directory the configs go to: secret files are placed beside them */
  configDir: string
  /** data dir (base when there are several folders); default beside Resilio's storage_path */
  dataDir?: string
  readIgnoreList(folderDir: string): IgnoreListRead
}

/** what Resilio does when a folder does not set a discovery switch */
const DISCOVERY_DEFAULTS: Record<DiscoveryKey, boolean> = { use_tracker: true, use_relay_server: true, search_lan: true, use_dht: false }

const WHY_TOP: Record<string, string> = {
  device_name: 'peers are named by their device id',
  webui: 'no web UI: use `sync-agent status` and /metrics',
  use_upnp: 'no port mapping: peers dial known addresses',
  pid_file: 'runs in the foreground under systemd or Docker',
  check_for_updates: 'updates come with the package or image',
  display_new_version: 'updates come with the package or image',
  lan_encrypt_data: 'always encrypted (Noise)',
  lan_use_tcp: 'always TCP',
  disk_low_priority: 'no I/O priority setting'
}

function safeName(dir: string): string {
  const base = basename(dir.replace(/[\\/]+$/, '')).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '')
  return base === '' ? 'folder' : base
}

function uniqueNames(folders: BtsyncFolder[]): string[] {
  const seen = new Map<string, number>()
  return folders.map((f) => {
    const name = safeName(f.dir)
    const n = (seen.get(name) ?? 0) + 1
    seen.set(name, n)
    return n === 1 ? name : `${name}-${n}`
  })
}

function defaultDataBase(conf: BtsyncConf, confDir: string): string {
  if (!conf.storagePath) return DEFAULT_DATA_BASE
  return join(dirname(resolve(confDir, conf.storagePath)), 'sync-agent')
}

export function planMigration(conf: BtsyncConf, opts: PlanOptions): MigrationPlan {
  const confDir = dirname(opts.confFile)
  const names = uniqueNames(conf.folders)
  const several = conf.folders.length > 1
  const dataBase = opts.dataDir ? resolve(opts.dataDir) : defaultDataBase(conf, confDir)

  const folders = conf.folders.map((f, i): FolderPlan => {
    const name = names[i] as string
    const at = `shared_folders[${f.index}]`
    const mapped: FolderPlan['mapped'] = []
    const dropped: FolderPlan['dropped'] = []
    const warnings: string[] = []

    const folder = resolve(confDir, f.dir)
    if (!isAbsolute(f.dir)) warnings.push(`${at}.dir ${JSON.stringify(f.dir)} is relative; resolved from the sync.conf's directory to ${folder}`)
    mapped.push({ from: `${at}.dir`, to: `folder ${folder}` })

    const data = several ? join(dataBase, name) : dataBase
    mapped.push({
      from: opts.dataDir ? '--data' : conf.storagePath ? `storage_path ${conf.storagePath}` : '(no storage_path)',
      to: `data ${data} (a new state dir; Resilio's own state is not reused)`
    })

    let listen: string
    if (conf.listeningPort === null || conf.listeningPort === 0) {
      listen = `0.0.0.0:${DEFAULT_PEER_PORT}`
      warnings.push(`listening_port is ${conf.listeningPort === null ? 'not set' : '0 (random)'}: listening on ${DEFAULT_PEER_PORT}; make the other servers' peers point at it`)
    } else {
      listen = `0.0.0.0:${conf.listeningPort}`
      mapped.push({ from: `listening_port ${conf.listeningPort}`, to: `listen ${listen}` })
    }
    if (several) warnings.push(`several folders share listening_port: give each config its own listen port before starting more than one agent`)

    const peers: string[] = []
    f.knownHosts.forEach((host, h) => {
      const parsed = parseHostPort(host)
      if (typeof parsed === 'string') {
        warnings.push(`${at}.known_hosts[${h}] skipped: ${parsed}`)
        return
      }
      const text = formatHostPort(parsed)
      if (!peers.includes(text)) peers.push(text)
    })
    if (peers.length > 0) mapped.push({ from: `${at}.known_hosts`, to: `peers ${peers.join(', ')}` })
    else warnings.push(`${at} has no usable known_hosts: sync-agent only dials the peers you list, so add the other servers to "peers"`)

    const wasOn = DISCOVERY_KEYS.filter((k) => f.discovery[k] ?? DISCOVERY_DEFAULTS[k])
    dropped.push({
      from: 'tracker, relay, DHT and LAN search',
      why: `off: sync-agent dials only its known peers (on in this sync.conf or by Resilio's default: ${wasOn.length > 0 ? wasOn.join(', ') : 'none'})`
    })
    if (f.hasSecret) dropped.push({ from: `${at}.secret`, why: 'BitTorrent Sync / Resilio secrets cannot be reused: make a new one (see below)' })
    if (f.overwriteChanges) dropped.push({ from: `${at}.overwrite_changes`, why: 'read-only folders are not supported yet; this agent writes' })
    if (f.selectiveSync) warnings.push(`${at}.selective_sync is on: sync-agent syncs the whole folder`)
    for (const key of f.otherKeys) dropped.push({ from: `${at}.${key}`, why: 'no equivalent' })

    const patterns = [RESILIO_DIR_PATTERN]
    const listPath = join(folder, IGNORE_LIST_PATH)
    const read = opts.readIgnoreList(folder)
    if ('text' in read) {
      const converted = convertIgnoreList(read.text)
      for (const p of converted.patterns) if (!patterns.includes(p)) patterns.push(p)
      mapped.push({ from: `${listPath} (${converted.patterns.length} pattern${converted.patterns.length === 1 ? '' : 's'})`, to: 'ignore.patterns' })
      for (const s of converted.skipped) warnings.push(`${listPath}:${s.line} ${JSON.stringify(s.text)} not carried over: ${s.why}`)
    } else if ('error' in read) {
      warnings.push(`cannot read ${listPath} (${read.error}): its rules are not migrated; copy them into ignore.patterns by hand`)
    }
    mapped.push({ from: 'the .sync/ directory (Resilio\'s own)', to: `ignore.patterns ${RESILIO_DIR_PATTERN} (delete it once Resilio is gone)` })

    const config: MigratedConfig = {
      folder,
      data,
      secretFile: join(opts.configDir, `${name}.secret`),
      listen,
      peers,
      ...(conf.rescanIntervalS !== null ? { rescanIntervalS: conf.rescanIntervalS } : {}),
      ignore: { presets: ['wordpress'], patterns }
    }
    // Resilio's Archive (on unless use_sync_trash is false): our versions dir, beside the data
    // dir (never inside the folder, where .sync/Archive was, nor in the encrypted data dir)
    if (f.useSyncTrash !== false) {
      config.versionsDir = `${data}-versions`
      mapped.push({ from: `${at}.use_sync_trash ${f.useSyncTrash === undefined ? '(not set: on by default)' : 'true'}`, to: `versionsDir ${config.versionsDir} (what peers replace or delete, as .sync/Archive held)` })
      if (conf.syncTrashTtlDays !== null) {
        config.versionsKeepDays = conf.syncTrashTtlDays
        mapped.push({ from: `sync_trash_ttl ${conf.syncTrashTtlDays}`, to: `versionsKeepDays ${conf.syncTrashTtlDays}` })
      }
    }
    if (conf.rescanIntervalS !== null) mapped.push({ from: `folder_rescan_interval ${conf.rescanIntervalS}`, to: `rescanIntervalS ${conf.rescanIntervalS}` })
    // Resilio's limits are in kB/s, for the whole client: ours are per agent (one per folder)
    for (const [key, limit, setting] of [['upload_limit', conf.uploadLimitKBps, 'maxSendKiBps'], ['download_limit', conf.downloadLimitKBps, 'maxRecvKiBps']] as const) {
      if (!limit) continue
      const kib = Math.max(MIN_RATE_KIBPS, limit)
      config[setting] = kib
      mapped.push({ from: `${key} ${limit} kB/s`, to: `${setting} ${kib}${kib !== limit ? ` (the lowest limit that keeps a connection alive)` : ''}` })
      if (conf.folders.length > 1) warnings.push(`${key}: Resilio applied it to all its folders together; each of the ${conf.folders.length} agents gets it`)
    }
    // Resilio leaves LAN peers out of its limits unless rate_limit_local_peers is set; ours
    // apply to every peer unless limitLan is off
    if (conf.uploadLimitKBps || conf.downloadLimitKBps) {
      config.limitLan = conf.rateLimitLocalPeers === true
      mapped.push({
        from: conf.rateLimitLocalPeers === null ? 'rate_limit_local_peers (not set: off by default)' : `rate_limit_local_peers ${conf.rateLimitLocalPeers}`,
        to: `limitLan ${config.limitLan}${config.limitLan ? '' : ' (peers at LAN addresses are not limited)'}`
      })
    }

    const check = validateConfig(config)
    if (!check.ok) throw new SyncError('E_CONFIG', `${opts.confFile}: ${at} gives an invalid sync-agent setting ${check.path.join('.')}: ${check.problem}`, { details: { file: opts.confFile } })
    return { name, index: f.index, config, mapped, dropped, warnings }
  })

  const dropped = conf.otherKeys.map((key) => ({ from: key, why: WHY_TOP[key] ?? 'no equivalent' }))
  return { folders, dropped }
}
