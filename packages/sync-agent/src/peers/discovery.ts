import Hyperswarm, { type PeerDiscovery } from 'hyperswarm'
import HyperDHT from 'hyperdht'
import type { KeyPair } from 'corestore'
import type NoiseSecretStream from '@hyperswarm/secret-stream'
import { formatHostPort, SyncError, type DiscoveryStatus, type HostPort } from '@sync-agent/shared'
import type { Logger } from '../log.js'

/**
 * Optional discovery beyond the configured peers: a Hyperswarm joined to the folder's topic
 * (derived from the secret one-way, so announcing it reveals nothing) on the configured
 * bootstrap nodes, or on the public DHT when the user opted in. An agent can also run a DHT
 * bootstrap node for a private cluster. Off unless configured. Connections it finds are
 * already Noise-encrypted with our device key; they go through the same secret proof as any.
 */
/** how often to look up the topic again while discovery has found no peer */
const LOOKUP_RETRY_MS = 5_000
/** while no discovery connection is open, say so (with what discovery has seen) after this, then at doubling intervals */
const NO_PEER_REPORT_FIRST_MS = 30_000
const NO_PEER_REPORT_MAX_MS = 10 * 60_000
/**
 * how long closing waits for the swarm to unannounce before it closes without: with the DHT
 * nodes gone the unannounce waits out its request timeouts (seen: > 10 s, past `docker stop`'s grace)
 */
const UNANNOUNCE_GRACE_MS = 2_000

/** A DHT client that remembers the last error of the connections it opens (Hyperswarm keeps them to itself). */
class ObservedDHT extends HyperDHT {
  lastConnectError: string | null = null

  override connect(remotePublicKey: Buffer, opts?: Record<string, unknown>) {
    const stream = super.connect(remotePublicKey, opts)
    stream.on('error', (err: Error & { code?: string }) => {
      this.lastConnectError = err.code ?? err.message
    })
    return stream
  }
}

export interface DiscoveryOptions {
  topic: Buffer
  keyPair: KeyPair
  bootstrap: readonly HostPort[]
  publicDht: boolean
  dhtNode: HostPort | null
  /** the address our DHT client binds to: the listen host when it is a specific IPv4 address */
  bindHost: string | null
  onConnection(stream: NoiseSecretStream): void
  log: Logger
}

export class Discovery {
  /** From the agent's settings; the DHT client binds to the listen host when it is a specific IPv4 address. */
  static fromConfig(
    config: { bootstrap: readonly HostPort[]; publicDht: boolean; dhtNode: HostPort | null; listen: HostPort },
    topic: Buffer,
    keyPair: KeyPair,
    onConnection: (stream: NoiseSecretStream) => void,
    log: Logger
  ): Discovery {
    const host = config.listen.host
    const bindHost = /^\d+\.\d+\.\d+\.\d+$/.test(host) && host !== '0.0.0.0' ? host : null
    return new Discovery({ topic, keyPair, bootstrap: config.bootstrap, publicDht: config.publicDht, dhtNode: config.dhtNode, bindHost, onConnection, log })
  }

  private node: HyperDHT | null = null
  private dht: ObservedDHT | null = null
  private swarm: Hyperswarm | null = null
  private joined: PeerDiscovery | null = null
  private lookupTimer: NodeJS.Timeout | null = null
  private reportTimer: NodeJS.Timeout | null = null
  private lookupRunning: Promise<void> | null = null
  private reportAfterMs = NO_PEER_REPORT_FIRST_MS
  private lookupsStarted = 0
  private lookupsDone = 0
  private lastLookupAt: number | null = null
  /** devices seen on the topic (public keys, hex) */
  private readonly found = new Set<string>()

  constructor(private readonly opts: DiscoveryOptions) {}

  /** Discovery is on: the agent looks for peers on the DHT (it expects peers, as with configured ones). */
  static isConfigured(config: { bootstrap: readonly HostPort[]; publicDht: boolean; dhtNode: HostPort | null }): boolean {
    return config.publicDht || config.bootstrap.length > 0 || config.dhtNode !== null
  }

  get isOn(): boolean {
    return Discovery.isConfigured(this.opts)
  }

  /** The DHT nodes the swarm's client bootstraps from: the configured ones, else our own node; null: the public DHT. */
  private get bootstrapNodes(): readonly HostPort[] | null {
    const { publicDht, bootstrap, dhtNode } = this.opts
    if (publicDht) return null
    return bootstrap.length > 0 ? bootstrap : dhtNode ? [dhtNode] : []
  }

  async ready(): Promise<void> {
    const { opts } = this
    if (opts.dhtNode) {
      try {
        this.node = HyperDHT.bootstrapper(opts.dhtNode.port, opts.dhtNode.host)
        await this.node.ready()
      } catch (err) {
        throw new SyncError('E_CONFIG', `dhtNode: cannot run a DHT node at ${formatHostPort(opts.dhtNode)}: ${(err as Error).message}`, { cause: err, details: { setting: 'dhtNode' } })
      }
      opts.log.info({ dhtNode: formatHostPort(opts.dhtNode) }, 'running a DHT bootstrap node')
    }
    if (!this.isOn) return
    // the swarm gets its own DHT client (a bootstrap node's own instance finds no peers)
    const bootstrap = this.bootstrapNodes
    const dht = (this.dht = new ObservedDHT({ bootstrap: bootstrap?.map((b) => ({ host: b.host, port: b.port })), ...(opts.bindHost ? { host: opts.bindHost } : {}) }))
    const swarm = (this.swarm = new Hyperswarm({ keyPair: opts.keyPair, dht }))
    swarm.on('connection', (conn: NoiseSecretStream) => opts.onConnection(conn))
    swarm.on('update', () => this.noteFound())
    this.joined = swarm.join(opts.topic, { server: true, client: true })
    this.lookupsStarted++
    opts.log.info({ dht: bootstrap?.map(formatHostPort) ?? 'public' }, 'discovering peers on the folder topic')
    // announce in the background: start-up does not wait for the DHT
    this.joined
      .flushed()
      .then(() => this.lookupDone())
      .then(() => this.lookup())
      .then(() => opts.log.debug('announced on the folder topic'))
      .catch((err: unknown) => opts.log.warn({ err }, 'DHT announce failed; will retry'))
    // a lookup made before the other peers announced finds nobody, and Hyperswarm would only
    // look again much later: while no peer was found this way, look again every few seconds
    this.lookupTimer = setInterval(() => {
      if (!this.swarm || this.swarm.connections.size > 0) return
      this.lookup().catch((err: unknown) => opts.log.debug({ err }, 'DHT lookup failed; will retry'))
    }, LOOKUP_RETRY_MS)
    this.lookupTimer.unref()
    this.scheduleNoPeerReport()
  }

  /** Looks the topic up (and announces) again; while a lookup runs, another is not started. */
  private lookup(): Promise<void> {
    const joined = this.joined
    if (!joined) return Promise.resolve()
    if (this.lookupRunning) return this.lookupRunning
    this.lookupsStarted++
    const running = joined.refresh({ client: true, server: true }).finally(() => {
      this.lookupRunning = null
      this.lookupDone()
    })
    this.lookupRunning = running
    return running
  }

  private lookupDone(): void {
    this.lookupsDone++
    this.lastLookupAt = Date.now()
    this.noteFound()
  }

  private noteFound(): void {
    for (const key of this.swarm?.peers.keys() ?? []) this.found.add(key)
  }

  /** Says, at doubling intervals, that discovery has connected nobody yet, and what it has seen. */
  private scheduleNoPeerReport(): void {
    this.reportTimer = setTimeout(() => {
      this.reportTimer = null
      if (!this.swarm) return
      if (this.swarm.connections.size === 0) {
        this.opts.log.info({ afterS: Math.round(this.reportAfterMs / 1000), ...this.status() }, 'discovery has no peer connected yet')
      }
      this.reportAfterMs = Math.min(NO_PEER_REPORT_MAX_MS, this.reportAfterMs * 2)
      this.scheduleNoPeerReport()
    }, this.reportAfterMs)
    this.reportTimer.unref()
  }

  /** What discovery has done so far, for `sync-agent status`; null when it is off. */
  status(): DiscoveryStatus | null {
    const { opts, swarm, dht } = this
    if (!this.isOn || !swarm || !dht) return null
    const { client, server } = swarm.stats.connects
    return {
      dht: this.bootstrapNodes?.map(formatHostPort) ?? 'public',
      node: opts.dhtNode ? formatHostPort(opts.dhtNode) : null,
      network: !dht.online ? 'offline' : dht.degraded ? 'degraded' : 'online',
      lookupsStarted: this.lookupsStarted,
      lookupsDone: this.lookupsDone,
      lastLookupAt: this.lastLookupAt,
      devicesFound: this.found.size,
      connectsAttempted: client.attempted,
      connectsOpened: client.opened,
      connectsAccepted: server.opened,
      lastError: dht.lastConnectError
    }
  }

  async close(): Promise<void> {
    if (this.lookupTimer) clearInterval(this.lookupTimer)
    if (this.reportTimer) clearTimeout(this.reportTimer)
    const swarm = this.swarm
    this.swarm = null
    // the swarm destroys this.dht (it owns it), after unannouncing
    if (swarm) {
      const graceful = swarm.destroy().catch(() => undefined)
      if (!(await settlesWithin(graceful, UNANNOUNCE_GRACE_MS))) {
        this.opts.log.info({ graceMs: UNANNOUNCE_GRACE_MS }, 'the DHT did not answer the unannounce in time; closing discovery without it')
        // closing the DHT's sockets ends the queries the swarm's destroy still waits for (seen
        // at once; bounded all the same: a stop must not hang on it)
        await this.dht?.destroy({ force: true }).catch(() => undefined)
        await settlesWithin(graceful, UNANNOUNCE_GRACE_MS)
      }
    }
    const node = this.node
    this.node = null
    if (node) await node.destroy().catch(() => undefined)
  }
}

/** Whether `promise` settles within `ms` (it is not cancelled either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true), expired])
  } finally {
    clearTimeout(timer)
  }
}
