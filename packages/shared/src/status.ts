/** What `GET /status` on the control socket returns and `sync-agent status --json` prints. */
export type AgentState = 'starting' | 'scanning' | 'syncing' | 'idle' | 'stopping'

/** Bytes on the peer connections (Noise framing included) since the agent started. */
export interface TransferStatus {
  receivedBytes: number
  sentBytes: number
  /** maxSendKiBps / maxRecvKiBps (0: no limit) */
  maxSendKiBps: number
  maxRecvKiBps: number
  /** the limits apply to peers at LAN addresses too (setting limitLan) */
  limitLan: boolean
  /**
   * bytes of changed files copied from the older version here instead of received: a file
   * changed in part is fetched as the blocks that differ
   */
  reusedBytes: number
}

export interface PeerStatus {
  /** host:port we dial, or the remote address of an inbound connection */
  address: string
  connected: boolean
  /** device id once known (after the handshake) */
  deviceId: string | null
  /** how we found this peer: dialled from the config, it dialled us, or found on the DHT topic */
  source: 'configured' | 'inbound' | 'dht'
  /**
   * what the peer proved on this connection: rw (signed by the folder's writer key, or a signed
   * member), ro (holds the read key), en (only the folder secret: encrypted, blind); null
   * while not connected
   */
  role: 'rw' | 'ro' | 'en' | null
  /** false when this agent cannot check the proof: an encrypted agent hearing a read-only proof */
  roleVerified: boolean
  /** last error seen on this peer, e.g. E_AUTH */
  lastError: string | null
  /**
   * set when the peer is not serving: it claims drive lengths that stayed out of reach for
   * `notServingAfterS` while there was nothing else to fetch (ms since epoch since when); those
   * claims no longer hold back inSync and ready
   */
  notServingSince: number | null
  /** ms since epoch of the last completed exchange (all its drives caught up) */
  lastExchangeAt: number | null
  /** bytes received from and sent to the peer on the current connection (null while not connected) */
  /** under the bandwidth limits on the current connection (false: no limits set, or a LAN peer with limitLan off) */
  rateLimited?: boolean | null
  receivedBytes?: number | null
  sentBytes?: number | null
}

/** DHT discovery on the folder's topic (null in the status when discovery is off). */
export interface DiscoveryStatus {
  /** where lookups go: the public DHT, or the configured bootstrap nodes (host:port) */
  dht: 'public' | string[]
  /** the DHT bootstrap node this agent runs (host:port), null when none */
  node: string | null
  /** the DHT client's view of the network (from the share of its requests that time out) */
  network: 'online' | 'degraded' | 'offline'
  /** topic lookups (each one also announces this agent) started and finished */
  lookupsStarted: number
  lookupsDone: number
  /** ms since epoch of the last finished lookup */
  lastLookupAt: number | null
  /** distinct devices seen on the topic, this one excluded */
  devicesFound: number
  /** connections this agent opened to found devices: attempted, opened; and those it accepted */
  connectsAttempted: number
  connectsOpened: number
  connectsAccepted: number
  /** the last error of a connection attempt (a Hyperswarm/HyperDHT code, e.g. HOLEPUNCH_ABORTED) */
  lastError: string | null
}

export interface LocalChanges {
  /** paths changed here on a read-only peer: not shared, until `sync-agent revert` */
  count: number
  sample: string[]
}

export interface HeldDeletes {
  /** paths whose deletion waits for `sync-agent accept-deletes` */
  count: number
  /** the first few, for the human */
  sample: string[]
  /** the folder's size (paths) when the hold began, and the share that triggered it */
  folderPaths: number
  share: number
  since: number
}

export interface PendingByDir {
  [topLevelDir: string]: { files: number; bytes: number }
}

/** Progress of one priority class (themes and plugins first, then uploads, then the rest). */
export interface ClassStatus {
  name: string
  /** this class must be complete before the node is ready */
  requiredForReady: boolean
  /** nothing of this class is known to be missing here */
  complete: boolean
  pendingFiles: number
  pendingBytes: number
  /** applied from peers since the agent started */
  doneFiles: number
  doneBytes: number
  filesPerSecond: number
  bytesPerSecond: number
  /** null while nothing moves */
  etaSeconds: number | null
}

export interface StatusReport {
  version: string
  deviceId: string
  shortId: string
  folder: string
  folderId: string
  state: AgentState
  /** safe to serve visitors: the classes required for ready are complete (see readyReason) */
  ready: boolean
  /** why the node is (not yet) ready, in words */
  readyReason: string
  /** ms since epoch when the node became ready, null before */
  readyAt: number | null
  inSync: boolean
  files: number
  bytes: number
  /** paths waiting to be applied locally or published */
  pending: number
  pendingBytes: number
  pendingByDir: PendingByDir
  /** per priority class, in fetch order */
  classes: ClassStatus[]
  peers: PeerStatus[]
  /** DHT discovery, when it is on */
  discovery: DiscoveryStatus | null
  /** traffic on all peer connections since the start, and the bandwidth limits */
  transfer: TransferStatus
  /**
   * set while `sync-agent pause` holds the sync (ms since the epoch since when): nothing is
   * applied or published, but files a page asks for now; null otherwise (and on a relay)
   */
  pausedSince?: number | null
  /** where what peers replace or delete is kept (`versionsDir`), null when off */
  versions: { dir: string; keepDays: number; keptSinceStart: number } | null
  /** member drives (one per writer device) */
  members: number
  /** the data dir's size on disk (measured at most every 10 s; null before the first measurement) */
  dataDirBytes: number | null
  conflicts: number
  /** what this agent may do with the folder: rw writes, ro receives only */
  role: 'rw' | 'ro' | 'en'
  /** local edits a read-only peer keeps to itself (null when none, or read-write) */
  localChanges: LocalChanges | null
  /** remote deletes held because they would remove more than `massDeleteShare` of the folder */
  heldDeletes: HeldDeletes | null
  /** how far the peers' clocks are ahead of ours (median); publish times are corrected by it */
  clockOffsetMs: number
  /** recent problems (code + message), newest last, at most 20 */
  errors: Array<{ code: string; message: string; at: number }>
  startedAt: number
}

/** What `sync-agent rescan` (the control socket's `POST /rescan`) answers once the folder was walked. */
export interface RescanResult {
  /** files, links and directories seen */
  entries: number
  /** of those, the ones that differ from what the index recorded (now being published) */
  changed: number
  /** paths the index holds that are no longer there (their deletes being published) */
  gone: number
  durationMs: number
}
