import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { StatusReport } from '@sync-agent/shared'

/**
 * The agent's Prometheus metrics (`GET /metrics`, text format, prom-client). Counters are fed
 * by the parts as things happen: files and bytes in (written into the folder from a peer's
 * version) and out (a local change published to our drive, where peers fetch it), conflicts,
 * errors by code. Gauges are read from one status snapshot per scrape: ready, in sync, peers,
 * pending files and bytes per priority class, last successful exchange per peer. Plus Node's
 * process metrics (memory, CPU, event loop). One registry per agent, never the global one.
 */
export type Direction = 'in' | 'out'

const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,39}$/

export class AgentMetrics {
  readonly registry = new Registry()
  private snapshot: StatusReport | null = null
  private readonly files: Counter<'direction'>
  private readonly bytes: Counter<'direction'>
  private readonly bytesBySource: Counter<'source'>
  private readonly conflicts: Counter
  private readonly errors: Counter<'code'>

  constructor(private readonly status: () => StatusReport) {
    const registers = [this.registry]
    const current = () => this.snapshot
    this.files = new Counter({
      name: 'sync_agent_files_total',
      help: 'Files written into the folder from peers (direction="in") and local changes published for peers (direction="out")',
      labelNames: ['direction'],
      registers
    })
    this.bytes = new Counter({
      name: 'sync_agent_bytes_total',
      help: 'Bytes of those files, in and out',
      labelNames: ['direction'],
      registers
    })
    this.bytesBySource = new Counter({
      name: 'sync_agent_bytes_in_by_source_total',
      help: 'Bytes of files written from peers, by where they were read: a peer\'s folder (source="peer-folder") or Hypercore blocks (source="hypercore")',
      labelNames: ['source'],
      registers
    })
    for (const source of ['peer-folder', 'hypercore']) this.bytesBySource.inc({ source }, 0)
    this.conflicts = new Counter({ name: 'sync_agent_conflicts_total', help: 'Conflicts resolved here (concurrent versions of one path)', registers })
    this.errors = new Counter({ name: 'sync_agent_errors_total', help: 'Problems by error code (E_IO, E_AUTH, E_PEER_PROTOCOL, ...)', labelNames: ['code'], registers })
    for (const direction of ['in', 'out'] as const) {
      this.files.inc({ direction }, 0)
      this.bytes.inc({ direction }, 0)
    }

    const gauge = (name: string, help: string, value: (s: StatusReport) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = current()
          if (s) this.set(value(s))
        }
      })
    gauge('sync_agent_ready', '1 when the node is ready to serve (the classes needed for ready are complete)', (s) => Number(s.ready))
    gauge('sync_agent_in_sync', '1 when nothing is pending here and every connected peer is caught up', (s) => Number(s.inSync))
    gauge('sync_agent_paused', '1 while `sync-agent pause` holds the sync (alert on one left on)', (s) => Number(s.pausedSince != null))
    gauge('sync_agent_peers_connected', 'Peers connected now', (s) => s.peers.filter((p) => p.connected).length)
    gauge('sync_agent_members', 'Writer devices of the folder (member drives)', (s) => s.members)
    gauge('sync_agent_folder_files', 'Files in the synced folder (as indexed)', (s) => s.files)
    gauge('sync_agent_folder_bytes', 'Bytes of the files in the synced folder (as indexed)', (s) => s.bytes)
    // measured at the start, before the metrics are served (0 only if that failed)
    gauge('sync_agent_data_dir_bytes', 'Bytes the data dir takes on disk (measured at the start, then at most every 10 s)', (s) => s.dataDirBytes ?? 0)
    gauge('sync_agent_pending', 'Paths waiting to be applied here or published', (s) => s.pending)
    gauge('sync_agent_start_time_seconds', 'When the agent started (unix seconds)', (s) => s.startedAt / 1000)

    const labelled = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>, s: StatusReport) => void) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const s = current()
          if (!s) return
          this.reset() // a class or peer that went away leaves no stale series
          fill(this, s)
        }
      })
    labelled('sync_agent_pending_files', 'Files this node still lacks, per priority class', ['class'], (g, s) => {
      for (const c of s.classes) g.set({ class: c.name }, c.pendingFiles)
    })
    labelled('sync_agent_pending_bytes', 'Bytes this node still lacks, per priority class', ['class'], (g, s) => {
      for (const c of s.classes) g.set({ class: c.name }, c.pendingBytes)
    })
    labelled('sync_agent_class_complete', '1 when nothing of the priority class is known to be missing', ['class'], (g, s) => {
      for (const c of s.classes) g.set({ class: c.name }, Number(c.complete))
    })
    labelled('sync_agent_peer_connected', '1 while the peer is connected', ['peer', 'device'], (g, s) => {
      for (const p of s.peers) g.set({ peer: p.address, device: p.deviceId ?? '' }, Number(p.connected))
    })
    labelled('sync_agent_peer_last_exchange_timestamp_seconds', 'Last completed exchange with the peer (all its drives applied here), unix seconds', ['peer', 'device'], (g, s) => {
      for (const p of s.peers) if (p.lastExchangeAt !== null) g.set({ peer: p.address, device: p.deviceId ?? '' }, p.lastExchangeAt / 1000)
    })
    // a counter read from the snapshot: the peer manager counts, this only reports
    new Counter<'direction'>({
      name: 'sync_agent_network_bytes_total',
      help: 'Bytes received (direction="in") and sent (direction="out") on peer connections, Noise framing included',
      labelNames: ['direction'],
      registers,
      collect() {
        const s = current()
        if (!s) return
        this.reset()
        this.inc({ direction: 'in' }, s.transfer.receivedBytes)
        this.inc({ direction: 'out' }, s.transfer.sentBytes)
      }
    })
    new Counter({
      name: 'sync_agent_reused_bytes_total',
      help: 'Bytes of changed files copied from their older versions here instead of received (a file changed in part is fetched as the blocks that differ)',
      registers,
      collect() {
        const s = current()
        if (!s) return
        this.reset()
        this.inc(s.transfer.reusedBytes)
      }
    })
    labelled('sync_agent_info', 'Constant 1, labelled with the version, device and folder id', ['version', 'device', 'folder_id'], (g, s) => {
      g.set({ version: s.version, device: s.deviceId, folder_id: s.folderId }, 1)
    })
  }

  /**
   * Node's default metrics (process, heap, event loop, GC) start with the first scrape: their
   * GC observer runs JS on every collection, which a node busy with a bulk sync does thousands
   * of times, for an endpoint nobody may ever read.
   */
  private defaultsStarted = false

  /** A file from a peer's version was written into the folder. */
  fileIn(sizeBytes: number, source: 'peer-folder' | 'hypercore' = 'hypercore'): void {
    this.count('in', sizeBytes)
    if (sizeBytes > 0) this.bytesBySource.inc({ source }, sizeBytes)
  }

  /** A local file change was published to our drive. */
  fileOut(sizeBytes: number): void {
    this.count('out', sizeBytes)
  }

  conflict(): void {
    this.conflicts.inc()
  }

  error(code: string): void {
    this.errors.inc({ code: ERROR_CODE.test(code) ? code : 'OTHER' })
  }

  private count(direction: Direction, sizeBytes: number): void {
    this.files.inc({ direction })
    if (sizeBytes > 0) this.bytes.inc({ direction }, sizeBytes)
  }

  /** The Prometheus text exposition of everything above, from a fresh status snapshot. */
  async render(): Promise<{ contentType: string; body: string }> {
    if (!this.defaultsStarted) {
      this.defaultsStarted = true
      collectDefaultMetrics({ register: this.registry })
    }
    this.snapshot = this.status()
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
