import { SyncError } from '@sync-agent/shared'

/**
 * The parts of a BitTorrent Sync / Resilio Sync `sync.conf` that matter for a migration,
 * checked field by field. A field of the wrong type is an error naming it; fields we have no
 * use for are kept by name so the report can list them as dropped.
 */
export interface BtsyncFolder {
  /** position in `shared_folders`, for messages */
  index: number
  dir: string
  hasSecret: boolean
  knownHosts: string[]
  /** the discovery switches as written (undefined: not set, Resilio's default is on) */
  discovery: Partial<Record<DiscoveryKey, boolean>>
  useSyncTrash: boolean | undefined
  overwriteChanges: boolean | undefined
  selectiveSync: boolean | undefined
  /** other keys of this folder entry, in file order */
  otherKeys: string[]
}

export interface BtsyncConf {
  storagePath: string | null
  /** 0 means "pick one at random" in Resilio */
  listeningPort: number | null
  /** `folder_rescan_interval` in seconds */
  rescanIntervalS: number | null
  /** `sync_trash_ttl`: days the Archive keeps a file */
  syncTrashTtlDays: number | null
  /** `download_limit` / `upload_limit` in kB/s, 0: none */
  downloadLimitKBps: number | null
  uploadLimitKBps: number | null
  /** `rate_limit_local_peers`: do the limits apply to LAN peers (Resilio: off unless set) */
  rateLimitLocalPeers: boolean | null
  folders: BtsyncFolder[]
  /** other top-level keys, in file order */
  otherKeys: string[]
}

export const DISCOVERY_KEYS = ['use_tracker', 'use_relay_server', 'use_dht', 'search_lan'] as const
export type DiscoveryKey = (typeof DISCOVERY_KEYS)[number]

const FOLDER_KEYS = new Set<string>(['dir', 'secret', 'known_hosts', 'use_sync_trash', 'overwrite_changes', 'selective_sync', ...DISCOVERY_KEYS])
const TOP_KEYS = new Set(['storage_path', 'listening_port', 'folder_rescan_interval', 'sync_trash_ttl', 'download_limit', 'upload_limit', 'rate_limit_local_peers', 'shared_folders'])

type Json = Record<string, unknown>

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${JSON.stringify(value)}`
}

export function readBtsyncConf(value: unknown, file: string): BtsyncConf {
  const fail = (key: string, problem: string) => new SyncError('E_CONFIG', `${file}: ${key}: ${problem}`, { details: { file, setting: key } })
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SyncError('E_CONFIG', `${file}: expected a JSON object with "shared_folders", got ${describe(value)}`, { details: { file } })
  }
  const top = value as Json
  const optionalString = (obj: Json, key: string, label: string): string | null => {
    const v = obj[key]
    if (v === undefined || v === null) return null
    if (typeof v !== 'string') throw fail(label, `expected a string, got ${describe(v)}`)
    return v
  }
  const optionalBool = (obj: Json, key: string, label: string): boolean | undefined => {
    const v = obj[key]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'boolean') throw fail(label, `expected true or false, got ${describe(v)}`)
    return v
  }
  const optionalInt = (obj: Json, key: string, min: number, max: number): number | null => {
    const v = obj[key]
    if (v === undefined || v === null) return null
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw fail(key, `expected a whole number from ${min} to ${max}, got ${describe(v)}`)
    return v
  }

  const storagePath = optionalString(top, 'storage_path', 'storage_path')
  const listeningPort = optionalInt(top, 'listening_port', 0, 65535)
  const rescanIntervalS = optionalInt(top, 'folder_rescan_interval', 0, 7 * 24 * 3600)
  const syncTrashTtlDays = optionalInt(top, 'sync_trash_ttl', 0, 36500)
  const downloadLimitKBps = optionalInt(top, 'download_limit', 0, 10_000_000)
  const uploadLimitKBps = optionalInt(top, 'upload_limit', 0, 10_000_000)
  const rateLimitLocalPeers = optionalBool(top, 'rate_limit_local_peers', 'rate_limit_local_peers') ?? null
  const shared = top.shared_folders
  if (shared === undefined || shared === null) {
    throw fail(
      'shared_folders',
      'missing: this sync.conf lists no folders (folders added in the web UI live in Resilio\'s own database, not in sync.conf; add them to "shared_folders" or write the sync-agent config by hand)'
    )
  }
  if (!Array.isArray(shared)) throw fail('shared_folders', `expected a list of folders, got ${describe(shared)}`)
  if (shared.length === 0) throw fail('shared_folders', 'the list is empty: nothing to migrate')

  const folders = shared.map((entry: unknown, index): BtsyncFolder => {
    const at = `shared_folders[${index}]`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw fail(at, `expected an object with "dir" and "secret", got ${describe(entry)}`)
    const f = entry as Json
    const dir = optionalString(f, 'dir', `${at}.dir`)
    if (dir === null || dir.trim() === '') throw fail(`${at}.dir`, 'missing: every shared folder needs its "dir"')
    const secret = optionalString(f, 'secret', `${at}.secret`)
    const hosts = f.known_hosts
    let knownHosts: string[] = []
    if (hosts !== undefined && hosts !== null) {
      if (!Array.isArray(hosts)) throw fail(`${at}.known_hosts`, `expected a list of "host:port" strings, got ${describe(hosts)}`)
      knownHosts = hosts.map((h: unknown, i) => {
        if (typeof h !== 'string') throw fail(`${at}.known_hosts[${i}]`, `expected a "host:port" string, got ${describe(h)}`)
        return h
      })
    }
    const discovery: BtsyncFolder['discovery'] = {}
    for (const key of DISCOVERY_KEYS) {
      const v = optionalBool(f, key, `${at}.${key}`)
      if (v !== undefined) discovery[key] = v
    }
    return {
      index,
      dir,
      hasSecret: secret !== null && secret !== '',
      knownHosts,
      discovery,
      useSyncTrash: optionalBool(f, 'use_sync_trash', `${at}.use_sync_trash`),
      overwriteChanges: optionalBool(f, 'overwrite_changes', `${at}.overwrite_changes`),
      selectiveSync: optionalBool(f, 'selective_sync', `${at}.selective_sync`),
      otherKeys: Object.keys(f).filter((k) => !FOLDER_KEYS.has(k))
    }
  })
  return { storagePath, listeningPort, rescanIntervalS, syncTrashTtlDays, downloadLimitKBps, uploadLimitKBps, rateLimitLocalPeers, folders, otherKeys: Object.keys(top).filter((k) => !TOP_KEYS.has(k)) }
}
