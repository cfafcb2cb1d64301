/** What `GET /status` on the control socket returns and `sync-agent status --json` prints. */
export type AgentState = 'starting' | 'scanning' | 'syncing' | 'idle' | 'stopping'

export interface PeerStatus {
  /** host:port we dial, or the remote address of an inbound connection */
  address: string
  connected: boolean
  /** device id once known (after the handshake) */
  deviceId: string | null
  /** how we know this peer */
  source: 'configured' | 'inbound'
  /** last error seen on this peer, e.g. E_AUTH */
  lastError: string | null
  /** ms since epoch of the last completed exchange (all its drives caught up) */
  lastExchangeAt: number | null
}

export interface PendingByDir {
  [topLevelDir: string]: { files: number; bytes: number }
}

export interface StatusReport {
  version: string
  deviceId: string
  shortId: string
  folder: string
  folderId: string
  state: AgentState
  ready: boolean
  inSync: boolean
  files: number
  bytes: number
  /** paths waiting to be applied locally or published */
  pending: number
  pendingBytes: number
  pendingByDir: PendingByDir
  peers: PeerStatus[]
  /** member drives (one per writer device) */
  members: number
  conflicts: number
  /** how far the peers' clocks are ahead of ours (median); publish times are corrected by it */
  clockOffsetMs: number
  /** recent problems (code + message), newest last, at most 20 */
  errors: Array<{ code: string; message: string; at: number }>
  startedAt: number
}
