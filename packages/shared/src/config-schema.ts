import { z } from 'zod'

/**
 * The one schema every setting passes through, whatever its source (config file, env var,
 * secret file). Pure: checks that need the file system (does the folder exist, is the data
 * dir outside it) live in the agent's config loader.
 */
export const DEFAULT_PEER_PORT = 7657
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const IGNORE_PRESETS = ['wordpress'] as const

export interface HostPort {
  host: string
  port: number
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** Parses `host:port` / `[v6]:port`; returns a message on failure. */
export function parseHostPort(text: string): HostPort | string {
  const trimmed = text.trim()
  let host: string
  let portText: string
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(.*)$/.exec(trimmed)
  if (v6) {
    host = v6[1] as string
    portText = v6[2] as string
  } else {
    const colon = trimmed.lastIndexOf(':')
    if (colon === -1) return `expected host:port, got ${JSON.stringify(text)} (no port)`
    host = trimmed.slice(0, colon)
    portText = trimmed.slice(colon + 1)
    const isNumeric = /^[\d.]+$/.test(host)
    if (isNumeric ? !IPV4.test(host) : !HOSTNAME.test(host)) return `expected host:port, got ${JSON.stringify(text)} (bad host ${JSON.stringify(host)})`
  }
  if (!/^\d{1,5}$/.test(portText)) return `expected host:port, got ${JSON.stringify(text)} (port must be a number)`
  const port = Number(portText)
  if (port < 1 || port > 65535) return `expected host:port, got ${JSON.stringify(text)} (port must be 1-65535)`
  return { host, port }
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`
}

const hostPort = z.string().transform((text, ctx): HostPort => {
  const parsed = parseHostPort(text)
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed })
    return z.NEVER
  }
  return parsed
})

/** A whole number given as a number (file) or as digits (env). */
function wholeNumber(min: number, max: number) {
  return z
    .union([z.number(), z.string().regex(/^-?\d+$/, 'expected a whole number').transform(Number)], { error: 'expected a whole number' })
    .pipe(z.number().int('expected a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
}

export const ConfigSchema = z.strictObject({
  /** the synced folder (wp-content); must exist */
  folder: z.string().min(1, 'must not be empty'),
  /** state directory: drives, index, device key, control socket; never inside the folder */
  data: z.string().min(1, 'must not be empty'),
  /** the folder secret (exactly one of secret / secretFile) */
  secret: z.string().optional(),
  secretFile: z.string().min(1, 'must not be empty').optional(),
  /** where peers connect to us */
  listen: hostPort.prefault(`0.0.0.0:${DEFAULT_PEER_PORT}`),
  /** known peers we dial */
  peers: z.array(hostPort).default([]),
  /** control socket path; default <data>/control.sock */
  control: z.string().min(1, 'must not be empty').optional(),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** a local change is published once the file was quiet this long */
  settleMs: wholeNumber(0, 60_000).default(50),
  /** a full stat-only rescan catches what the watcher missed; 0 turns it off */
  rescanIntervalS: wholeNumber(0, 7 * 24 * 3600).default(3600),
  /** DHT bootstrap nodes (host:port, UDP): discovery on the folder's topic is on when set */
  bootstrap: z.array(hostPort).default([]),
  /** discover peers on the public Holepunch DHT (opt-in) */
  publicDht: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')], { error: 'expected true or false' })
    .default(false),
  /** run a DHT bootstrap node at this IPv4:port (UDP) for a private cluster */
  dhtNode: hostPort
    .refine((hp) => IPV4.test(hp.host) && hp.host !== '0.0.0.0', 'a DHT node needs the IPv4 address other agents reach it at (not 0.0.0.0)')
    .optional(),
  /** a remote change deleting more than this share of the folder is held until `accept-deletes`; 1 = never */
  massDeleteShare: z
    .union([z.number(), z.string().regex(/^\d*\.?\d+$/, 'expected a number between 0 and 1').transform(Number)], { error: 'expected a number between 0 and 1' })
    .pipe(z.number().min(0, 'must be at least 0').max(1, 'must be at most 1'))
    .default(0.5),
  /** device ids allowed to connect (on top of the secret); empty = any holder of the secret */
  allow: z.array(z.string().regex(/^[A-Za-z2-7]{52}$/, 'expected a device id (52 base32 characters, see `sync-agent status`)')).default([]),
  ignore: z
    .strictObject({
      presets: z.array(z.enum(IGNORE_PRESETS)).default(['wordpress']),
      patterns: z.array(z.string()).default([])
    })
    .default({ presets: ['wordpress'], patterns: [] })
})

export type ConfigInput = z.input<typeof ConfigSchema>
export type ParsedConfig = z.output<typeof ConfigSchema>

/** Environment variables and the config key each one sets. */
export const ENV_SETTINGS = {
  SYNC_AGENT_FOLDER: 'folder',
  SYNC_AGENT_DATA: 'data',
  SYNC_AGENT_SECRET: 'secret',
  SYNC_AGENT_SECRET_FILE: 'secretFile',
  SYNC_AGENT_LISTEN: 'listen',
  SYNC_AGENT_PEERS: 'peers',
  SYNC_AGENT_CONTROL: 'control',
  SYNC_AGENT_LOG_LEVEL: 'logLevel',
  SYNC_AGENT_SETTLE_MS: 'settleMs',
  SYNC_AGENT_RESCAN_INTERVAL_S: 'rescanIntervalS',
  SYNC_AGENT_MASS_DELETE_SHARE: 'massDeleteShare',
  SYNC_AGENT_ALLOW: 'allow',
  SYNC_AGENT_BOOTSTRAP: 'bootstrap',
  SYNC_AGENT_PUBLIC_DHT: 'publicDht',
  SYNC_AGENT_DHT_NODE: 'dhtNode',
  SYNC_AGENT_IGNORE_PRESETS: 'ignore.presets',
  SYNC_AGENT_IGNORE: 'ignore.patterns'
} as const satisfies Record<string, string>

export type EnvSettingName = keyof typeof ENV_SETTINGS

/** Settings whose env value is a comma-separated list. */
export const LIST_SETTINGS: ReadonlySet<string> = new Set(['peers', 'allow', 'bootstrap', 'ignore.presets', 'ignore.patterns'])

export type ConfigValidation = { ok: true; config: ParsedConfig } | { ok: false; path: string[]; problem: string }

/** Validates raw settings; on failure, the first problem and the key path it is at. */
export function validateConfig(raw: unknown): ConfigValidation {
  const result = ConfigSchema.safeParse(raw, { reportInput: true })
  if (result.success) return { ok: true, config: result.data }
  const issue = result.error.issues[0] as z.core.$ZodIssue
  let problem = issue.message
  if (issue.code === 'unrecognized_keys') problem = `unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k: string) => JSON.stringify(k)).join(', ')}`
  else if (issue.code === 'invalid_type' && issue.input === undefined) problem = 'is required'
  else if (issue.code === 'invalid_value') problem = issue.message.replace(/^Invalid option: /, '')
  return { ok: false, path: issue.path.map(String), problem }
}
