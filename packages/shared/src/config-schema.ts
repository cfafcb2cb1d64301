import { z } from 'zod'

/**
 * The one schema every setting passes through, whatever its source (config file, env var,
 * secret file). Pure: checks that need the file system (does the folder exist, is the data
 * dir outside it) live in the agent's config loader.
 */
export const DEFAULT_PEER_PORT = 7657
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export const IGNORE_PRESETS = ['wordpress'] as const
export const PRIORITY_PRESETS = ['wordpress', 'none'] as const
export const CLASS_ORDERS = ['newest-first', 'path'] as const
/** the HTTP port binds here when only a port is given */
export const LOOPBACK = '127.0.0.1'

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

/** `host:port`, or a bare port that binds to loopback only. */
const listenAddress = z.union([z.number(), z.string()]).transform((value, ctx): HostPort => {
  const text = String(value).trim()
  const parsed = /^\d{1,5}$/.test(text) ? parseHostPort(`${LOOPBACK}:${text}`) : parseHostPort(text)
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed })
    return z.NEVER
  }
  return parsed
})

/** A path glob relative to the folder (picomatch syntax); never absolute, never `..`. */
const folderGlob = z
  .string()
  .min(1, 'a path pattern must not be empty')
  .refine((g) => !g.startsWith('/') && !/^[A-Za-z]:/.test(g), 'a path pattern is relative to the folder (no leading /)')
  .refine((g) => !g.split('/').includes('..'), 'a path pattern must not contain ".."')
  .refine((g) => !g.includes('\\'), 'a path pattern uses / between directories, not \\')

export const PriorityClassSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/i, 'a class name is 1-32 letters, digits, - or _'),
  paths: z.array(folderGlob).min(1, 'a class needs at least one path pattern'),
  /** newest-first: by the year/month folders in the path, then by mtime (for uploads) */
  order: z.enum(CLASS_ORDERS).default('path')
})
export type PriorityClass = z.output<typeof PriorityClassSchema>

const priorityClasses = z
  .array(PriorityClassSchema)
  .min(1, 'give at least one class (or the preset "none")')
  .max(16, 'at most 16 classes')
  .refine((classes) => new Set(classes.map((c) => c.name)).size === classes.length, 'class names must be unique')

/** A whole number given as a number (file) or as digits (env). */
function wholeNumber(min: number, max: number) {
  return z
    .union([z.number(), z.string().regex(/^-?\d+$/, 'expected a whole number').transform(Number)], { error: 'expected a whole number' })
    .pipe(z.number().int('expected a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
}

export interface FileOwner {
  uid: number
  gid: number
}

const MAX_ID = 2 ** 32 - 2 // (uid_t)-1 means "unchanged" to chown

/** `uid:gid` as numbers (names would need the host's passwd, which a container does not share). */
const fileOwner = z.string().transform((text, ctx): FileOwner => {
  const match = /^\s*(\d{1,10}):(\d{1,10})\s*$/.exec(text)
  const uid = Number(match?.[1])
  const gid = Number(match?.[2])
  if (!match || uid > MAX_ID || gid > MAX_ID) {
    ctx.addIssue({ code: 'custom', message: `expected uid:gid as numbers, e.g. "33:33", got ${JSON.stringify(text)}` })
    return z.NEVER
  }
  return { uid, gid }
})

/**
 * Permission bits written as an octal string ("0644", "644", "0o644"). A bare number is
 * refused: YAML reads `0644` as decimal 644, and nobody means 644 decimal.
 */
function octalMode(max: number, ownerNeeds: number, example: string) {
  return z
    .unknown()
    .transform((value, ctx): number => {
      if (typeof value !== 'string') {
        ctx.addIssue({ code: 'custom', message: `expected an octal mode in quotes, e.g. "${example}" (a bare number is ambiguous in YAML), got ${JSON.stringify(value)}` })
        return z.NEVER
      }
      const match = /^\s*(?:0o?)?([0-7]{1,4})\s*$/i.exec(value)
      const mode = match ? parseInt(match[1] as string, 8) : NaN
      if (!match || mode > max) {
        ctx.addIssue({ code: 'custom', message: `expected an octal mode up to ${max.toString(8).padStart(4, '0')}, e.g. "${example}", got ${JSON.stringify(value)}` })
        return z.NEVER
      }
      if ((mode & ownerNeeds) !== ownerNeeds) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} must give the owner at least ${ownerNeeds.toString(8).padStart(4, '0')} (the agent reads back what it writes)` })
        return z.NEVER
      }
      return mode
    })
}

/** A bandwidth limit in KiB/s: 0 (none) or at least MIN_RATE_KIBPS. */
export const MIN_RATE_KIBPS = 8
/** true / false, from a file or an env var (`"true"`, `"1"`, `"yes"`, and their opposites) */
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')], { error: 'expected true or false' })

const rateLimit = wholeNumber(0, 10_000_000)
  .refine((kib) => kib === 0 || kib >= MIN_RATE_KIBPS, `must be 0 (no limit) or at least ${MIN_RATE_KIBPS} KiB/s`)
  .default(0)

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
  rescanIntervalS: wholeNumber(0, 7 * 24 * 3600).default(600),
  /** owner (uid:gid) of every file and directory the agent writes into the folder; needs root */
  fileOwner: fileOwner.optional(),
  /** permission bits of files written into the folder; exec bits follow the synced file */
  fileMode: octalMode(0o777, 0o600, '0644').optional(),
  /** permission bits of directories the agent creates in the folder (setgid and sticky allowed) */
  dirMode: octalMode(0o3777, 0o700, '0755').optional(),
  /**
   * Order in which a node fetches what it lacks: a preset or a list of classes; paths no
   * class matches come last (class "other").
   */
  priority: z.union([z.enum(PRIORITY_PRESETS), priorityClasses], { error: 'expected a preset ("wordpress", "none") or a list of classes' }).default('wordpress'),
  /** how many leading priority classes must be complete for the node to be ready */
  readyClasses: wholeNumber(0, 16).default(1),
  /** a node that was ready before and finds no peer after a restart is ready after this long; 0: never */
  offlineReadyAfterS: wholeNumber(0, 24 * 3600).default(60),
  /** HTTP for /healthz, /readyz, /files (and /metrics); a bare port binds to loopback */
  http: listenAddress.optional(),
  /** HAProxy agent-check responder; a bare port binds to loopback */
  agentCheck: listenAddress.optional(),
  /** what GET /files/<path> may serve (never PHP sources, dotfiles or anything outside the folder) */
  serve: z.array(folderGlob).default(['uploads/**']),
  /** DHT bootstrap nodes (host:port, UDP): discovery on the folder's topic is on when set */
  bootstrap: z.array(hostPort).default([]),
  /** discover peers on the public Holepunch DHT (opt-in) */
  publicDht: flag.default(false),
  /** run a DHT bootstrap node at this IPv4:port (UDP) for a private cluster */
  dhtNode: hostPort
    .refine((hp) => IPV4.test(hp.host) && hp.host !== '0.0.0.0', 'a DHT node needs the IPv4 address other agents reach it at (not 0.0.0.0)')
    .optional(),
  /** a remote change deleting more than this share of the folder is held until `accept-deletes`; 1 = never */
  massDeleteShare: z
    .union([z.number(), z.string().regex(/^\d*\.?\d+$/, 'expected a number between 0 and 1').transform(Number)], { error: 'expected a number between 0 and 1' })
    .pipe(z.number().min(0, 'must be at least 0').max(1, 'must be at most 1'))
    .default(0.5),
  /**
   * a peer whose claimed drive lengths stay out of reach this long (nothing left to fetch, and
   * still behind what it says it has) is shown as not serving; its claims stop holding back
   * inSync and ready
   */
  notServingAfterS: wholeNumber(1, 24 * 3600).default(60),
  /**
   * how long a read from peers (a block of a file or of a member's index) waits when no
   * connected peer serves it, before it fails and is retried with a backoff; a peer that owes
   * an answer and sends nothing for half of this is taken as not answering
   */
  requestTimeoutS: wholeNumber(2, 3600).default(30),
  /**
   * an agent whose event loop has not turned for this long (a bug: it answers nothing and syncs
   * nothing) logs where its JavaScript is and ends itself, for systemd or Docker to start it
   * again (Syncthing's deadlock detector does the same); 0 = off
   */
  watchdogS: wholeNumber(0, 3600)
    .refine((s) => s === 0 || s >= 10, 'must be 0 (off) or at least 10 (a busy agent may not turn its loop for a few seconds)')
    .default(60),
  /**
   * keep what a peer's change replaces or deletes here (Syncthing's trash can, Resilio's
   * Archive): outside the folder and the data dir, best on the folder's file system
   */
  versionsDir: z.string().min(1, 'must not be empty').optional(),
  /** versions older than this are removed (hourly); 0 keeps them for ever */
  versionsKeepDays: wholeNumber(0, 36500).default(30),
  /**
   * bandwidth limits in KiB/s for all peer connections together (known peers over TCP; not
   * connections found through the DHT); 0 = none
   */
  maxSendKiBps: rateLimit,
  maxRecvKiBps: rateLimit,
  /**
   * do the limits apply to peers at LAN addresses (private, loopback, link-local) too; false
   * leaves them unlimited (Syncthing's `limitBandwidthInLan` and Resilio's
   * `rate_limit_local_peers` are off by default)
   */
  limitLan: flag.default(true),
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
  SYNC_AGENT_FILE_OWNER: 'fileOwner',
  SYNC_AGENT_FILE_MODE: 'fileMode',
  SYNC_AGENT_DIR_MODE: 'dirMode',
  SYNC_AGENT_MASS_DELETE_SHARE: 'massDeleteShare',
  SYNC_AGENT_ALLOW: 'allow',
  SYNC_AGENT_MAX_SEND_KIBPS: 'maxSendKiBps',
  SYNC_AGENT_MAX_RECV_KIBPS: 'maxRecvKiBps',
  SYNC_AGENT_LIMIT_LAN: 'limitLan',
  SYNC_AGENT_NOT_SERVING_AFTER_S: 'notServingAfterS',
  SYNC_AGENT_REQUEST_TIMEOUT_S: 'requestTimeoutS',
  SYNC_AGENT_WATCHDOG_S: 'watchdogS',
  SYNC_AGENT_BOOTSTRAP: 'bootstrap',
  SYNC_AGENT_PUBLIC_DHT: 'publicDht',
  SYNC_AGENT_DHT_NODE: 'dhtNode',
  SYNC_AGENT_IGNORE_PRESETS: 'ignore.presets',
  SYNC_AGENT_IGNORE: 'ignore.patterns',
  SYNC_AGENT_PRIORITY: 'priority',
  SYNC_AGENT_READY_CLASSES: 'readyClasses',
  SYNC_AGENT_OFFLINE_READY_AFTER_S: 'offlineReadyAfterS',
  SYNC_AGENT_HTTP: 'http',
  SYNC_AGENT_AGENT_CHECK: 'agentCheck',
  SYNC_AGENT_SERVE: 'serve',
  SYNC_AGENT_VERSIONS_DIR: 'versionsDir',
  SYNC_AGENT_VERSIONS_KEEP_DAYS: 'versionsKeepDays'
} as const satisfies Record<string, string>

export type EnvSettingName = keyof typeof ENV_SETTINGS

/** Settings whose env value is a comma-separated list. */
export const LIST_SETTINGS: ReadonlySet<string> = new Set(['peers', 'allow', 'bootstrap', 'ignore.presets', 'ignore.patterns', 'serve'])

/** Settings whose env value may be JSON (when it starts with `[` or `{`). */
export const JSON_SETTINGS: ReadonlySet<string> = new Set(['priority'])

export type ConfigValidation = { ok: true; config: ParsedConfig } | { ok: false; path: string[]; problem: string }

/**
 * A union (a preset name or a list of classes) that failed: report the problem of the branch
 * that got furthest into the input, not "no branch matched".
 */
function innermost(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue
  let best: z.core.$ZodIssue | null = null
  for (const branch of issue.errors) {
    const first = branch[0]
    // a branch that failed on the value itself says less than the union's own message
    if (!first || first.path.length === 0) continue
    if (!best || first.path.length > best.path.length) best = first
  }
  if (!best) return issue
  return innermost({ ...best, path: [...issue.path, ...best.path] } as z.core.$ZodIssue)
}

/** Validates raw settings; on failure, the first problem and the key path it is at. */
export function validateConfig(raw: unknown): ConfigValidation {
  const result = ConfigSchema.safeParse(raw, { reportInput: true })
  if (result.success) return { ok: true, config: result.data }
  const issue = innermost(result.error.issues[0] as z.core.$ZodIssue)
  let problem = issue.message
  if (issue.code === 'unrecognized_keys') problem = `unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k: string) => JSON.stringify(k)).join(', ')}`
  else if (issue.code === 'invalid_type' && issue.input === undefined) problem = 'is required'
  else if (issue.code === 'invalid_value') problem = issue.message.replace(/^Invalid option: /, '')
  return { ok: false, path: issue.path.map(String), problem }
}
