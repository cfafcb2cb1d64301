import Hyperswarm, { type PeerDiscovery } from 'hyperswarm'
import HyperDHT from 'hyperdht'
import type { KeyPair } from 'corestore'
import type NoiseSecretStream from '@hyperswarm/secret-stream'
import { formatHostPort, SyncError, type HostPort } from '@sync-agent/shared'
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
  private swarm: Hyperswarm | null = null
  private joined: PeerDiscovery | null = null
  private lookupTimer: NodeJS.Timeout | null = null

  constructor(private readonly opts: DiscoveryOptions) {}

  get isOn(): boolean {
    return this.opts.publicDht || this.opts.bootstrap.length > 0 || this.opts.dhtNode !== null
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
    const bootstrap = opts.publicDht ? undefined : [...opts.bootstrap, ...(opts.dhtNode && opts.bootstrap.length === 0 ? [opts.dhtNode] : [])]
    const dht = new HyperDHT({ bootstrap: bootstrap?.map((b) => ({ host: b.host, port: b.port })), ...(opts.bindHost ? { host: opts.bindHost } : {}) })
    this.swarm = new Hyperswarm({ keyPair: opts.keyPair, dht })
    this.swarm.on('connection', (conn: NoiseSecretStream) => opts.onConnection(conn))
    this.joined = this.swarm.join(opts.topic, { server: true, client: true })
    opts.log.info({ dht: opts.publicDht ? 'public' : bootstrap?.map(formatHostPort) }, 'discovering peers on the folder topic')
    // announce in the background: start-up does not wait for the DHT
    this.joined
      .flushed()
      .then(() => this.joined?.refresh())
      .then(() => opts.log.debug('announced on the folder topic'))
      .catch((err: unknown) => opts.log.warn({ err }, 'DHT announce failed; will retry'))
    // a lookup made before the other peers announced finds nobody, and Hyperswarm would only
    // look again much later: while no peer was found this way, look again every few seconds
    this.lookupTimer = setInterval(() => {
      if (!this.swarm || this.swarm.connections.size > 0) return
      this.joined?.refresh({ client: true, server: true }).catch((err: unknown) => opts.log.debug({ err }, 'DHT lookup failed; will retry'))
    }, LOOKUP_RETRY_MS)
    this.lookupTimer.unref()
  }

  async close(): Promise<void> {
    if (this.lookupTimer) clearInterval(this.lookupTimer)
    const swarm = this.swarm
    this.swarm = null
    if (swarm) await swarm.destroy().catch(() => undefined)
    const node = this.node
    this.node = null
    if (node) await node.destroy().catch(() => undefined)
  }
}
