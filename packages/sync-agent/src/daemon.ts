import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type Corestore from 'corestore'
import { deriveFolderKeys, hashFor, IGNORE_FILE, STAGING_DIR, SyncError, type AgentState, type ClassStatus, type RescanResult, type StatusReport } from '@sync-agent/shared'
import type { AgentConfig } from './config/load-config.js'
import type { Logger } from './log.js'
import { openStore, storageCounters } from './open-store.js'
import { recoverPlacements } from './recover-placements.js'
import { Closers } from './closers.js'
import { IndexStore } from './index-store.js'
import { DriveSet } from './replication/drive-set.js'
import { buildIgnoreRules, type IgnoreRules } from './ignore-rules.js'
import { FolderWriter, differsFromRecord } from './folder-writer.js'
import type { Stats } from 'node:fs'
import { PathReconciler } from './reconcile-path.js'
import { SyncEngine, type PendingSummary } from './sync-engine.js'
import { OwnDriveWriter } from './own-drive-writer.js'
import { DataDirUsage } from './data-dir-usage.js'
import { FolderWatcher } from './folder-watcher.js'
import { LocalChanges } from './local-changes.js'
import { WatchRenewal } from './watch-renewal.js'
import { scanFolder } from './folder-scanner.js'
import { goneWhileRunning } from './gone-while-running.js'
import { PeerManager } from './peers/peer-manager.js'
import { Discovery } from './peers/discovery.js'
import type { PeerSession } from './peers/peer-session.js'
import { UnservedClaims } from './peers/unserved-claims.js'
import { FEATURE_CONTENT, FEATURE_INDEX, FEATURE_SUMS, FEATURE_URGENT, type Have } from './protocol.js'
import { IndexBlockFetcher } from './replication/index-block-fetcher.js'
import { IndexBlockServer } from './replication/index-block-server.js'
import { ContentFetcher } from './content/content-fetcher.js'
import { ContentServer } from './content/content-server.js'
import { ControlServer } from './control/control-server.js'
import { MassDeleteGuard } from './mass-delete-guard.js'
import { LocalDivergence } from './local-divergence.js'
import { deviceIdOf, shortIdOf } from './device-id.js'
import { PriorityClasses } from './priority/priority-classes.js'
import { etaSeconds } from './priority/class-progress.js'
import { Readiness } from './readiness.js'
import { HttpServer, sendJson } from './http/http-server.js'
import { AgentCheckServer } from './http/agent-check-server.js'
import { OnDemandFiles, URL_PREFIX } from './http/on-demand-files.js'
import { AgentMetrics } from './metrics/agent-metrics.js'
import { ClusterClock } from './cluster-clock.js'
import { BulkMode } from './bulk-mode.js'
import { VersionArchive } from './version-archive.js'
import { VersionRestore } from './version-restore.js'
import { readPausedSince, writePausedSince } from './pause-flag.js'
import { removeFile, replaceFile } from './state-file.js'
import type { PreviousStall } from './previous-stall.js'

export const VERSION = '0.1.0'
const HAVE_DEBOUNCE_MS = 30
const READINESS_CHECK_MS = 250
const STALL_REPORT_MS = 30_000
/** how often memory use is logged at debug level (to see what grows with a large backlog) */
const MEMORY_LOG_MS = 5_000
const TEMP_SWEEP_DELAY_MS = 500
/** a clock this far off the cluster's is worth a warning */
const CLOCK_WARN_MS = 60_000
/** the peers' clock offsets, kept across restarts */
const CLOCK_FILE = 'clock-offsets.json'
/** the list of blocks to sweep session 29's agents saved (block-sweeper.ts): removed at start */
const LEGACY_SWEEP_FILE = 'blocks-to-sweep.json'
/** without a working watcher (inotify limits), changes are found by a rescan this often */
export const FALLBACK_SCAN_MS = 10_000

/** why a walk of the folder runs (said in its log line) */
type ScanReason = 'start' | 'periodic' | 'asked' | 'watch renewed' | 'bulk sync' | 'no watcher' | 'temp files'

/** logged when a periodic rescan finds changes the watcher did not report (see Agent.unreported) */
export const UNREPORTED_BY_WATCHER = 'the periodic rescan found changes the watcher did not report'

/**
 * Wiring only: builds the parts, starts them in order, stops them in reverse.
 * Data flow: watcher/scan → engine → reconcile → own drive → peers → member drives → engine →
 * reconcile → folder writer → index.
 */
export class Agent {
  private store!: Corestore
  private index!: IndexStore
  private drives!: DriveSet
  private engine!: SyncEngine
  private watcher!: FolderWatcher
  private peers!: PeerManager
  private discovery: Discovery | null = null
  private archive: VersionArchive | null = null
  private control!: ControlServer
  private readiness!: Readiness
  private classes!: PriorityClasses
  private http: HttpServer | null = null
  private agentCheck: AgentCheckServer | null = null
  private metrics!: AgentMetrics
  private rules!: IgnoreRules
  private deleteGuard!: MassDeleteGuard
  /** read-only peers keep local changes here instead of publishing them */
  private localOnly: LocalDivergence | null = null
  private deviceKey!: Buffer
  private folderId = ''
  private state: AgentState = 'starting'
  private scanDone = false
  private exchanged = false
  private readonly haveBySession = new Map<PeerSession, Have[]>()
  private bulkMode: BulkMode | null = null
  private claims!: UnservedClaims<PeerSession>
  private haveTimer: NodeJS.Timeout | null = null
  private readonly errors: StatusReport['errors'] = []
  private clock = new ClusterClock()
  private fallbackScan: NodeJS.Timeout | null = null
  private sweepTimer: NodeJS.Timeout | null = null
  private localChanges!: LocalChanges
  private watchRenewal!: WatchRenewal
  private readonly startedAt = Date.now()
  private readonly dataDirUsage: DataDirUsage
  /** since when `sync-agent pause` holds the sync (null: running) */
  private pausedSince: number | null = null
  private readonly closers = new Closers()
  private contentFetcher!: ContentFetcher

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger
  ) {
    this.dataDirUsage = new DataDirUsage(config.dataDir)
  }

  async ready(): Promise<void> {
    const { config, log } = this
    const keys = deriveFolderKeys(config.secret)
    if (!keys.contentKey) throw new SyncError('E_SECRET', 'an encrypted (blind) secret runs a relay (BlindAgent), not a folder agent')
    this.folderId = keys.folderId
    this.metrics = new AgentMetrics(() => this.status())
    const opened = await openStore(config.dataDir)
    // a first figure for status and metrics (a failure: measured again when asked)
    await this.dataDirUsage.refresh().catch(() => undefined)
    this.store = opened.store
    this.closers.add(() => this.store.close())
    const keyPair = opened.keyPair
    this.deviceKey = keyPair.publicKey

    this.index = new IndexStore(config.dataDir, hashFor('index-at-rest', keys.contentKey), (err) =>
      this.recordError((err as NodeJS.ErrnoException).code === 'ENOSPC' ? 'E_DISK_FULL' : 'E_IO', `index journal write failed: ${(err as Error).message}`)
    )
    await this.index.ready()
    this.closers.add(() => this.index.close())
    // before the start-up scan sweeps temp files: they tell whether an interrupted apply placed its version
    await recoverPlacements(this.index, config.folder, log.child({ c: 'recovery' }))

    this.drives = new DriveSet(this.store, keys, keyPair.publicKey, config.dataDir, log.child({ c: 'drives' }))
    // fresh member drives: their index comes as a verified snapshot from a peer (the engine)
    this.drives.snapshotsFirst = true
    await this.drives.ready()
    this.closers.add(() => this.drives.close())
    log.info({ deviceId: deviceIdOf(this.deviceKey), folder: config.folder, folderId: keys.folderId }, 'agent starting')

    this.clock = new ClusterClock(Date.now, await this.loadClockOffsets())
    this.claims = new UnservedClaims(config.notServingAfterS * 1000)
    this.rules = await this.loadRules()
    if (!this.drives.canWrite) this.localOnly = new LocalDivergence()
    // a directory we removed and made again at once keeps chokidar's dead watch: watched afresh
    const writer: FolderWriter = new FolderWriter(config.folder, { owner: config.fileOwner, fileMode: config.fileMode, dirMode: config.dirMode }, () => this.sweepTempsSoon(writer), (dir) => this.watchRenewal?.request(dir, true))
    if (config.versionsDir) {
      const archive = (this.archive = new VersionArchive(config.versionsDir, config.versionsKeepDays, log.child({ c: 'versions' })))
      await archive.ready()
      this.closers.add(() => archive.close())
      writer.archive = archive
      log.info({ versionsDir: config.versionsDir, keepDays: config.versionsKeepDays }, 'keeping what peers replace or delete')
    }
    // after recoverPlacements, which reads what an earlier run left there
    const noStaging = await writer.prepareStaging()
    if (noStaging) log.warn({ reason: noStaging }, 'no staging directory: temp files are written beside their files')
    if (process.geteuid?.() === 0 && !config.fileOwner) {
      log.warn({ setting: 'fileOwner' }, 'running as root without fileOwner: synced files will belong to root; set fileOwner (e.g. 33:33) so the web server can edit them')
    }
    // a read from peers nobody serves fails after requestTimeoutS; a peer silent for half of it while it owes an answer is not answering
    const requestTimeoutMs = config.requestTimeoutS * 1000
    this.contentFetcher = new ContentFetcher({ sources: () => this.contentSources(), responseTimeoutMs: requestTimeoutMs / 2, log: log.child({ c: 'content' }) })
    this.closers.add(async () => this.contentFetcher.close())
    const contentServer = new ContentServer({
      localFile: async (path, hashHex) => {
        const record = this.index.get(path)
        if (record?.kind !== 'file' || record.hash !== hashHex) return null
        const st = await writer.lstatOrNull(path)
        if (!st || differsFromRecord(st, record)) return null
        return { abs: writer.abs(path), size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
      },
      mayRead: (s) => this.mayReadContents(s),
      log: log.child({ c: 'content' })
    })
    this.closers.add(async () => contentServer.close())
    const indexFetcher = new IndexBlockFetcher({ sources: () => this.peersWith(FEATURE_INDEX), responseTimeoutMs: requestTimeoutMs / 2, log: log.child({ c: 'index' }) })
    this.closers.add(async () => indexFetcher.close())
    const indexServer = new IndexBlockServer({
      core: (key) => this.drives.get(key.toString('hex'))?.drive.core ?? null,
      mayRead: (s) => this.mayReadContents(s),
      log: log.child({ c: 'index' })
    })
    this.closers.add(async () => indexServer.close())
    // our drive's writer; its sweeper frees small files' shared blocks (closed before the store)
    const own = new OwnDriveWriter(this.drives.own.drive, await this.drives.own.drive.getBlobs(), { log: log.child({ c: 'own' }) })
    own.ready()
    // the list of blocks to sweep an agent of session 29 kept (the full sweep after a start took its place)
    await removeFile(join(config.dataDir, LEGACY_SWEEP_FILE)).catch(() => undefined)
    this.closers.add(() => own.close())
    const reconciler = new PathReconciler({
      writer,
      content: this.contentFetcher,
      fetchTimeoutMs: requestTimeoutMs,
      index: this.index,
      drives: this.drives,
      own,
      rules: () => this.rules,
      mayDelete: (p) => this.deleteGuard.mayDelete(p),
      localOnly: this.localOnly,
      log: log.child({ c: 'reconcile' }),
      now: () => this.clock.now(),
      appliedVersion: (hex) => this.engine.appliedVersion(hex),
      indexUnserved: (hex) => this.engine.isIndexUnserved(hex),
      peerConnected: () => (this.peers?.connected().length ?? 0) > 0,
      onNewPath: (p) => this.engine.mark(p),
      onOwnEntryReplaced: (p) => this.engine.ownEntryReplaced(p),
      onConflict: () => {
        this.engine.conflicts++
        this.metrics.conflict()
      },
      onFileApplied: (sizeBytes, source) => this.metrics.fileIn(sizeBytes, source),
      onFilePublished: (sizeBytes) => this.metrics.fileOut(sizeBytes)
    })
    this.classes = new PriorityClasses(config.priority)
    this.engine = new SyncEngine(this.index, this.drives, reconciler, this.classes, config.readyClasses, log.child({ c: 'engine' }))
    this.engine.indexReadTimeoutMs = requestTimeoutMs
    // contents come from peers' folders while one serves them: no Hypercore blocks ahead of the workers
    this.engine.contentFromPeers = () => this.contentFetcher.available()
    this.engine.indexSnapshot = (d, length) => indexFetcher.snapshot({ core: d.drive.core, author: d.author, shortId: d.shortId }, length)
    // a pause survives restarts (pause-flag.ts)
    this.pausedSince = await readPausedSince(config.dataDir)
    if (this.pausedSince !== null) {
      this.engine.setPaused(true)
      log.warn({ since: new Date(this.pausedSince).toISOString() }, 'paused (sync-agent pause): nothing is applied or published until `sync-agent resume`')
    }
    this.engine.ready()
    this.closers.add(() => this.engine.close())
    this.readiness = new Readiness(config.dataDir, {
      // peers found on the DHT count: a fresh node that looks for them must not serve its empty folder
      hasPeers: config.peers.length > 0 || Discovery.isConfigured(config),
      offlineReadyAfterS: config.offlineReadyAfterS,
      requiredClasses: this.classes.names.slice(0, config.readyClasses)
    })
    await this.readiness.ready()
    const readinessTimer = setInterval(() => {
      this.watchClaims()
      this.updateReadiness()
    }, READINESS_CHECK_MS)
    readinessTimer.unref()
    this.closers.add(async () => clearInterval(readinessTimer))
    this.engine.onIdle(() => this.onEngineIdle())
    this.engine.onPathError((code) => this.metrics.error(code))
    this.deleteGuard = new MassDeleteGuard({
      share: config.massDeleteShare,
      dataDir: config.dataDir,
      folderPaths: () => this.index.size,
      release: (paths) => this.engine.deletesReleased(paths),
      log: log.child({ c: 'deletes' })
    })
    await this.deleteGuard.ready()
    this.closers.add(() => this.deleteGuard.close())
    this.engine.deleteGate = this.deleteGuard
    this.drives.onAppend((d) => {
      if (d.isOwn) this.scheduleHave()
      else this.engine.onDriveAppend(d)
    })
    this.drives.onMember(() => this.broadcastMembers())

    this.watchRenewal = new WatchRenewal({
      restart: () => this.watcher.restart(),
      rescan: async () => void (await this.scan(writer, 'watch renewed')),
      onError: (err) => this.recordError('E_IO', `cannot watch the folder afresh: ${err.message}`),
      log: log.child({ c: 'watcher' })
    })
    this.closers.add(async () => this.watchRenewal.close())
    this.localChanges = new LocalChanges({
      root: config.folder,
      index: this.index,
      engine: this.engine,
      rules: () => this.rules,
      onError: (message) => this.recordError('E_IO', message),
      onStaleWatch: (dir) => this.watchRenewal.request(dir),
      removedByAgentLately: (dir) => writer.removedLately(dir)
    })
    // watch first, then scan, so nothing that changes during the scan is missed
    this.watcher = new FolderWatcher(config.folder, config.settleMs, {
      onPath: (p, stats, addedDir) => this.onLocalPath(p, stats, addedDir),
      isIgnored: (p, isDir) => this.rules.isIgnored(p, isDir),
      onDirGone: (p) => this.localChanges.onDirGone(p),
      onError: (err) => this.onWatcherError(err, writer)
    }, log.child({ c: 'watcher' }))
    await this.watcher.ready()
    this.closers.add(() => this.watcher.close())

    // health and readiness answer from the start (not ready while scanning)
    if (config.http) {
      const onDemand = new OnDemandFiles({ root: config.folder, serve: config.serve, rules: () => this.rules, index: this.index, engine: this.engine, reconciler, log: log.child({ c: 'files' }) })
      this.http = new HttpServer(config.http, log.child({ c: 'http' }))
      this.http.route(['GET', 'HEAD'], '/healthz', (_req, res) => sendJson(res, this.state === 'stopping' ? 503 : 200, { status: this.state === 'stopping' ? 'stopping' : 'ok', state: this.state }))
      this.http.route(['GET', 'HEAD'], '/readyz', (_req, res) => {
        const s = this.status()
        sendJson(res, s.ready ? 200 : 503, { ready: s.ready, reason: s.readyReason, readyAt: s.readyAt, classes: s.classes })
      })
      this.http.route(['GET'], '/metrics', async (_req, res) => {
        const { contentType, body } = await this.metrics.render()
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
        res.end(body)
      })
      this.http.route(['GET', 'HEAD'], URL_PREFIX, (req, res, url) => onDemand.handle(req, res, url), { prefix: true })
      await this.http.ready()
      this.closers.add(() => (this.http as HttpServer).close())
    }
    if (config.agentCheck) {
      this.agentCheck = new AgentCheckServer(config.agentCheck, () => {
        const r = this.currentReadiness()
        return { ready: r.ready, reason: r.reason }
      }, log.child({ c: 'agent-check' }))
      await this.agentCheck.ready()
      this.closers.add(() => (this.agentCheck as AgentCheckServer).close())
    }

    this.state = 'scanning'
    await this.scan(writer, 'start')
    if (config.rescanIntervalS > 0) {
      const timer = setInterval(() => {
        this.scan(writer, 'periodic').catch((err: unknown) => this.recordError('E_IO', `periodic rescan failed: ${(err as Error).message}`))
      }, config.rescanIntervalS * 1000)
      timer.unref()
      this.closers.add(async () => clearInterval(timer))
    }
    for (const d of this.drives.all()) this.engine.onDriveAppend(d)
    this.scanDone = true
    this.state = 'syncing'

    this.startBulkMode(writer)
    this.startStallReports()
    this.startMemoryLog()

    this.peers = new PeerManager({
      listen: config.listen,
      peers: config.peers,
      keyPair,
      keys,
      allow: config.allow,
      limits: { sendKiBps: config.maxSendKiBps, recvKiBps: config.maxRecvKiBps, lan: config.limitLan },
      store: this.store,
      log: log.child({ c: 'peers' }),
      events: {
        onPeer: (s) => this.onPeer(s),
        onMembers: (s, members) => {
          this.drives
            .addMembers(members, s.address)
            .then(({ rejected }) => {
              // only a broken or hostile peer relays a writer nobody with the rw secret signed
              if (rejected > 0) s.fail('E_PEER_PROTOCOL', 'the peer sent a writer without a valid proof; dropped it')
              this.checkExchanges()
            })
            .catch((err: unknown) => log.error({ err }, 'adding members failed'))
        },
        onHave: (s, have) => {
          this.haveBySession.set(s, have)
          this.checkExchanges()
          this.bulkMode?.wake()
        },
        onPeerGone: (s) => {
          this.haveBySession.delete(s)
          this.claims.forget(s)
        },
        onPeerError: (_s, code) => this.metrics.error(code),
        onPeerClock: (s, clockMs) => this.onPeerClock(s, clockMs),
        onContentRequest: (s, r, urgent) => contentServer.onRequest(s, r, urgent),
        onSumsRequest: (s, r) => contentServer.onSumsRequest(s, r),
        onContentData: (s, d) => this.contentFetcher.onData(s, d),
        onContentEnd: (s, e) => this.contentFetcher.onEnd(s, e),
        onIndexRequest: (s, r) => indexServer.onRequest(s, r),
        onIndexBlocks: (s, a) => indexFetcher.onBlocks(s, a),
        onSessionClosed: (s) => {
          contentServer.onSessionGone(s)
          this.contentFetcher.onSessionGone(s)
          indexServer.onSessionGone(s)
          indexFetcher.onSessionGone(s)
        }
      },
      features: FEATURE_CONTENT | FEATURE_INDEX | FEATURE_URGENT | FEATURE_SUMS
    })
    await this.peers.ready()
    this.closers.add(() => this.peers.close())
    const discovery = (this.discovery = Discovery.fromConfig(config, keys.topic, keyPair, (stream) => this.peers.attachDiscovered(stream), log.child({ c: 'discovery' })))
    this.closers.add(() => discovery.close())
    await discovery.ready()

    const restorer = new VersionRestore(this.archive, writer, (path) => this.onLocalPath(path, undefined, false), log.child({ c: 'versions' }))
    this.control = new ControlServer(
      config.controlPath,
      {
        status: () => this.status(),
        acceptDeletes: () => this.acceptDeletes(),
        revert: () => this.revert(),
        versions: (path) => restorer.list(path),
        restore: (request) => restorer.restore(request),
        rescan: () => this.scan(writer, 'asked'),
        setPaused: (paused) => this.setPaused(paused)
      },
      log.child({ c: 'control' })
    )
    await this.control.ready()
    this.closers.add(() => this.control.close())
    this.checkExchanges()
    log.info({ deviceId: deviceIdOf(this.deviceKey), files: this.fileCount().files }, 'agent ready to sync')
  }

  private async loadRules(): Promise<IgnoreRules> {
    let text: string | null = null
    try {
      text = await readFile(join(this.config.folder, IGNORE_FILE), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    return buildIgnoreRules(this.config.ignore.presets, this.config.ignore.patterns, text)
  }

  private onLocalPath(path: string, stats: Stats | undefined, addedDir: boolean): void {
    if (path === IGNORE_FILE) {
      this.loadRules()
        .then((rules) => {
          this.rules = rules
          this.log.info('reloaded .syncignore')
        })
        .catch((err: unknown) => this.recordError('E_IO', `cannot read ${IGNORE_FILE}: ${(err as Error).message}`))
      return
    }
    this.localChanges.onSettled(path, stats, addedDir)
  }

  /**
   * The watcher could not watch everything: inotify's watch (or instance) limit is reached.
   * Changes in the unwatched directories would go unseen, so a stat-only rescan runs every
   * FALLBACK_SCAN_MS from now on (watched directories still report at once).
   */
  private onWatcherError(err: Error, writer: FolderWriter): void {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOSPC' && code !== 'EMFILE') {
      this.recordError('E_IO', `watcher: ${err.message}`)
      return
    }
    if (this.fallbackScan || this.state === 'stopping') return
    const message =
      `cannot watch every directory of the folder (${err.message}): changes are found by a rescan every ` +
      `${FALLBACK_SCAN_MS / 1000} s instead. Raise the limit to get them at once: sysctl fs.inotify.max_user_watches=524288`
    this.log.warn({ code: 'E_WATCH_LIMIT' }, message)
    this.errors.push({ code: 'E_WATCH_LIMIT', message, at: Date.now() })
    let scanning = false
    this.fallbackScan = setInterval(() => {
      if (scanning || this.state === 'stopping') return
      scanning = true
      this.scan(writer, 'no watcher')
        .catch((e: unknown) => this.recordError('E_IO', `fallback rescan failed: ${(e as Error).message}`))
        .finally(() => (scanning = false))
    }, FALLBACK_SCAN_MS)
    this.fallbackScan.unref()
    this.closers.add(async () => {
      if (this.fallbackScan) clearInterval(this.fallbackScan)
    })
  }

  private startBulkMode(writer: FolderWriter): void {
    this.bulkMode = new BulkMode({
      backlog: () => this.engine.pendingCount + this.remoteBacklog(),
      isDiffing: () => this.engine.isDiffingServed,
      watcher: this.watcher,
      rescan: async () => void (await this.scan(writer, 'bulk sync')),
      // `close()` says so before its closers run, so no look is scheduled after
      isStopping: () => this.state === 'stopping',
      onError: (message) => this.recordError('E_IO', message),
      log: this.log
    })
    this.bulkMode.ready()
    this.closers.add(async () => this.bulkMode?.close())
  }

  /** Work that should take seconds and takes minutes is logged (a hang would otherwise be silent). */
  private startStallReports(): void {
    const timer = setInterval(() => {
      for (const stall of this.engine.stalled(STALL_REPORT_MS, STALL_REPORT_MS / 1000)) {
        this.log.warn({ code: 'E_STALLED', ...stall }, stall.ms ? 'sync work has not finished for a long time' : 'a path keeps being reconciled without settling')
      }
    }, STALL_REPORT_MS)
    timer.unref()
    this.closers.add(async () => clearInterval(timer))
  }

  /** At debug level: the process's memory and the engine's backlog every MEMORY_LOG_MS. */
  private startMemoryLog(): void {
    if (!this.log.isLevelEnabled('debug')) return
    const mib = (n: number) => Math.round(n / 2 ** 20)
    const timer = setInterval(() => {
      const m = process.memoryUsage()
      const memory = { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) }
      this.log.debug({ ...memory, pending: this.engine.pendingCount, indexPaths: this.index.size, storage: storageCounters(this.store) }, 'memory')
    }, MEMORY_LOG_MS)
    timer.unref()
    this.closers.add(async () => clearInterval(timer))
  }

  /** Index entries peers have that we have not diffed yet (about one per changed path). */
  private remoteBacklog(): number {
    let backlog = 0
    for (const have of this.haveBySession.values()) {
      for (const h of have) {
        const drive = this.drives.get(h.driveKey.toString('hex'))
        // a claimed length beyond the signed length we know is a lie (or not here yet): not backlog
        const length = drive ? Math.min(h.length, drive.drive.core.length) : 0
        // entries whose index no peer serves (the diff gave up for now) are not work under way:
        // counted, a writer withholding 2,000 of them paused the watcher for as long as it did
        if (drive && !drive.isOwn && !this.engine.isIndexUnserved(drive.hex)) backlog += Math.max(0, length - this.engine.appliedVersion(drive.hex))
      }
    }
    return backlog
  }

  /**
   * A temp file of ours was carried off by a directory move (or its directory vanished): a
   * rescan removes it wherever it landed. Debounced: a moved directory can hold several.
   */
  private sweepTempsSoon(writer: FolderWriter): void {
    if (this.sweepTimer || this.state === 'stopping') return
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = null
      this.scan(writer, 'temp files').catch((err: unknown) => this.recordError('E_IO', `rescan for temp files failed: ${(err as Error).message}`))
    }, TEMP_SWEEP_DELAY_MS)
    this.sweepTimer.unref()
  }

  /** Compares the folder with the index and removes temp files no write of ours is using. */
  /**
   * `sync-agent pause` / `resume`: the engine starts nothing but files pages ask for now, so a
   * plugin update half-written here is not sent and peers' changes wait; kept across restarts.
   * Resuming lets the queue go (what changed meanwhile was queued by the watcher and the diffs).
   */
  private async setPaused(paused: boolean): Promise<{ pausedSince: number | null }> {
    if (paused === (this.pausedSince !== null)) return { pausedSince: this.pausedSince }
    // the state changes at once, the flag follows (its writes run in the order asked: a
    // pause and a resume sent together leave the flag as the last one says)
    const since = paused ? Date.now() : null
    this.pausedSince = since
    this.engine.setPaused(paused)
    if (paused) this.log.info('paused: nothing is applied or published (but files pages ask for) until `sync-agent resume`')
    else this.log.info({ pending: this.engine.pendingCount }, 'resumed')
    await writePausedSince(this.config.dataDir, since)
    return { pausedSince: since }
  }

  /**
   * Walks the folder and marks every path whose lstat differs from its record (no hashing).
   * `why` is said in the log line. A periodic rescan behind a working watcher should find
   * nothing the watcher did not report: what it finds that way (`unreported`) is logged by
   * name (fault suite seeds 3141 and 4213 each had a node's 60 s rescan find a change its
   * watcher missed; not reproduced since, so each one is named for the next look).
   */
  private async scan(writer: FolderWriter, why: ScanReason): Promise<RescanResult> {
    const atStart = why === 'start'
    const started = Date.now()
    const behindWatcher = why === 'periodic' && !this.watcher.isPaused && this.fallbackScan === null && !this.watchRenewal.busy
    const unreported: string[] = []
    // paths whose first run is under way have no record yet (see gone-while-running.ts); looked
    // at only by the rescans that do not come again within seconds (not bulk sync, no watcher:
    // the next one finds the record, and a bulk sync's runs are mostly first applies, not on
    // disk yet)
    const looksAtRunning = why === 'watch renewed' || why === 'asked' || why === 'periodic'
    const runningAtStart = looksAtRunning ? this.engine.runningPaths() : []
    const seen = new Set<string>()
    let temps = 0
    let changed = 0
    await scanFolder(this.config.folder, this.rules, {
      onEntry: (path, st) => {
        seen.add(path)
        const record = this.index.get(path)
        if (!differsFromRecord(st, record) || this.engine.willReconcile(path)) return
        if (behindWatcher && this.unreported(path)) unreported.push(path)
        this.engine.mark(path)
        changed++
      },
      onTempFile: (path) => {
        // the staging directory is emptied at start (prepareStaging)
        if (path === STAGING_DIR || writer.isWriting(path)) return
        temps++
        writer.removeTemp(path).catch(() => undefined)
      },
      onUnsyncable: (path, problem) => this.log.warn({ code: 'E_PATH_UNSAFE', path, problem }, 'cannot sync this name; skipped')
    })
    // in the index, not seen: gone, unless it was placed after the walk passed its directory
    // (a scan during a bulk sync otherwise marked every file applied while it walked: 2,500
    // needless reconciles in a fresh node's initial sync of 8,000 files)
    let gone = 0
    for (const [path, record] of this.index.entries()) {
      if (seen.has(path)) continue
      const st = await writer.lstatOrNull(path)
      if (!differsFromRecord(st, record)) continue
      if (behindWatcher && this.unreported(path)) unreported.push(path)
      this.engine.mark(path)
      gone++
    }
    if (looksAtRunning) {
      const running = [...runningAtStart, ...this.engine.runningPaths()]
      const found = await goneWhileRunning(running, seen, { willReconcile: (p) => this.engine.willReconcile(p), exists: async (p) => (await writer.lstatOrNull(p)) !== null })
      for (const path of found) this.engine.mark(path)
      gone += found.length
      // most are peers' files not placed yet (a renewal comes with a theme update): a run more
      // each, which finds nothing to do; a delete whose event was lost is seen by it
      if (found.length > 0) this.log.debug({ why, count: found.length, paths: found.slice(0, 10) }, 'paths being worked on are not on disk: each runs once more')
    }
    // the rescans of a paused watcher run every second or so during a bulk sync: said only when they find something
    const quiet = !atStart && changed + gone === 0 && this.watcher.isPaused
    this.log[quiet ? 'debug' : 'info']({ why, files: seen.size, changed, gone, pending: this.engine.pendingCount, tempFilesRemoved: temps }, atStart ? 'start-up scan done' : 'rescan done')
    if (unreported.length > 0) this.log.info({ count: unreported.length, paths: unreported.slice(0, 10) }, UNREPORTED_BY_WATCHER)
    return { entries: seen.size, changed, gone, durationMs: Date.now() - started }
  }

  /**
   * A change of `path` the rescan found is one the watcher has not reported: no event of it is
   * settling or being looked at, and the engine is not working on the path (a file we are
   * placing differs from its record until the run ends).
   */
  private unreported(path: string): boolean {
    return !this.watcher.isSettling(path) && !this.localChanges.isLooking(path) && !this.engine.isPending(path)
  }

  /** connected peers that serve file contents from their folders */
  private contentSources(): PeerSession[] {
    return this.peersWith(FEATURE_CONTENT)
  }

  /** connected peers that announced a FEATURE_* */
  private peersWith(feature: number): PeerSession[] {
    return this.peers ? this.peers.connected().filter((s) => (s.features & feature) !== 0) : []
  }

  /** a signed writer, or a peer that proved it holds the read key: never an encrypted relay */
  private mayReadContents(session: PeerSession): boolean {
    if (session.remoteKey && this.drives.isWriter(session.remoteKey)) return true
    return (session.role === 'rw' || session.role === 'ro') && session.roleVerified
  }

  private onPeer(session: PeerSession): void {
    session.sendMembers(this.drives.members())
    this.sendHave(session)
    this.engine.retryNow()
  }

  private async loadClockOffsets(): Promise<Record<string, number>> {
    try {
      const parsed: unknown = JSON.parse(await readFile(join(this.config.dataDir, CLOCK_FILE), 'utf8'))
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, number>
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err }, `ignoring an unreadable ${CLOCK_FILE}`)
    }
    return {}
  }

  private onPeerClock(session: PeerSession, clockMs: number): void {
    const before = this.clock.offsetMs
    const offsetMs = this.clock.observePeer(session.deviceId ?? session.address, clockMs)
    replaceFile(join(this.config.dataDir, CLOCK_FILE), JSON.stringify(this.clock.peerOffsets)).catch((err: unknown) => this.log.warn({ err }, `cannot save ${CLOCK_FILE}`))
    if (Math.abs(offsetMs - before) < CLOCK_WARN_MS) return
    if (Math.abs(offsetMs) >= CLOCK_WARN_MS) {
      this.log.warn({ offsetMs, peer: session.address }, 'this device\'s clock differs from its peers\'; publish times follow the peers\' clocks')
    } else {
      this.log.info({ offsetMs, peer: session.address }, 'clock agrees with the peers again')
    }
  }

  private broadcastMembers(): void {
    const members = this.drives.members()
    for (const s of this.peers?.connected() ?? []) s.sendMembers(members)
  }

  private haveList(): Have[] {
    return this.drives.all().map((d) => ({ driveKey: d.drive.key, length: d.drive.core.length }))
  }

  private sendHave(session: PeerSession): void {
    session.sendHave(this.haveList())
  }

  private scheduleHave(): void {
    if (this.haveTimer) return
    this.haveTimer = setTimeout(() => {
      this.haveTimer = null
      const have = this.haveList()
      for (const s of this.peers?.connected() ?? []) s.sendHave(have)
    }, HAVE_DEBOUNCE_MS)
  }

  private onEngineIdle(): void {
    this.scheduleHave()
    this.checkExchanges()
  }

  /**
   * What a peer claims, as far as it counts: all of it, unless the peer is not serving (its
   * claims stayed out of reach, see unserved-claims.ts); then only drives we follow, up to the
   * signed length we know.
   */
  private claimsOf(session: PeerSession, have: Have[]): Have[] {
    if (!this.claims.isNotServing(session)) return have
    const out: Have[] = []
    for (const h of have) {
      const drive = this.drives.get(h.driveKey.toString('hex'))
      if (drive) out.push({ driveKey: h.driveKey, length: Math.min(h.length, drive.drive.core.length) })
    }
    return out
  }

  /** Judges each peer's claims while there is nothing left to fetch; logs a peer that stops (or resumes) serving them. */
  private watchClaims(): void {
    if (!this.peers) return
    const idle = this.scanDone && this.engine.isIdle
    for (const [session, have] of this.haveBySession) {
      const change = this.claims.observe(session, idle ? !this.caughtUpWith(have) : null)
      if (change === null) continue
      const fields = { peer: session.address, device: session.deviceId?.slice(0, 7) ?? null }
      if (change === 'serving-again') {
        this.log.info(fields, 'the peer serves what it claims again')
        continue
      }
      const unserved = have
        .filter((h) => {
          const drive = this.drives.get(h.driveKey.toString('hex'))
          return !drive || (!drive.isOwn && this.engine.appliedVersion(drive.hex) < h.length)
        })
        .map((h) => {
          const drive = this.drives.get(h.driveKey.toString('hex'))
          return { drive: h.driveKey.toString('hex').slice(0, 16), claimed: h.length, known: drive ? drive.drive.core.length : null, member: drive !== undefined }
        })
      const message = `the peer claims data nobody has served for ${this.config.notServingAfterS} s; it no longer holds back inSync or ready (still fetched if it arrives)`
      this.log.warn({ code: 'E_PEER_NOT_SERVING', ...fields, unserved: unserved.slice(0, 8) }, message)
      this.metrics.error('E_PEER_NOT_SERVING')
      this.errors.push({ code: 'E_PEER_NOT_SERVING', message: `${fields.device ?? fields.peer}: ${message}`, at: Date.now() })
      if (this.errors.length > 20) this.errors.shift()
    }
  }

  /** Have we applied everything `have` lists? */
  private caughtUpWith(have: Have[]): boolean {
    for (const h of have) {
      const hex = h.driveKey.toString('hex')
      const drive = this.drives.get(hex)
      if (!drive) return false
      if (drive.isOwn) continue
      if (this.engine.appliedVersion(hex) < h.length) return false
    }
    return true
  }

  /** `pending`: a summary the caller took just before (else one is taken when needed) */
  private currentReadiness(pending?: PendingSummary['byClass']): ReturnType<Readiness['state']> {
    this.updateReadiness(pending)
    return this.readiness.state()
  }

  private updateReadiness(pending?: PendingSummary['byClass']): void {
    if (this.readiness.state().ready) return
    let caughtUpWith: string | null = null
    for (const [session, have] of this.haveBySession) {
      if (this.engine.readyClassesCaughtUp(this.claimsOf(session, have))) {
        caughtUpWith = session.address
        break
      }
    }
    const missing = { files: 0, bytes: 0 }
    for (const c of this.engine.classProgress(pending)) {
      if (!c.requiredForReady) continue
      missing.files += c.pendingFiles
      missing.bytes += c.pendingBytes
    }
    if (this.readiness.update({ scanDone: this.scanDone, caughtUpWith, connectedPeers: this.peers?.connected().length ?? 0, missing })) {
      const s = this.readiness.state()
      this.log.info({ reason: s.reason, msSinceStart: (s.readyAt ?? 0) - this.startedAt }, 'node is ready')
    }
  }

  /** `caughtUp`: every connected peer's drives are applied here */
  private classStatus(caughtUp: boolean, pending: PendingSummary['byClass']): ClassStatus[] {
    const ready = this.readiness.state().ready
    return this.engine.classProgress(pending).map((c) => ({
      name: c.name,
      requiredForReady: c.requiredForReady,
      complete: c.pendingFiles === 0 && (c.requiredForReady ? ready : caughtUp && !this.engine.isDiffing),
      pendingFiles: c.pendingFiles,
      pendingBytes: c.pendingBytes,
      doneFiles: c.rate.doneFiles,
      doneBytes: c.rate.doneBytes,
      filesPerSecond: Math.round(c.rate.filesPerSecond * 10) / 10,
      bytesPerSecond: Math.round(c.rate.bytesPerSecond),
      etaSeconds: etaSeconds(c.pendingFiles, c.pendingBytes, c.rate)
    }))
  }

  private checkExchanges(): void {
    if (this.readiness) this.updateReadiness()
    if (!this.scanDone || !this.engine.isIdle || !this.peers) return
    for (const [session, have] of this.haveBySession) {
      if (this.claims.isNotServing(session)) continue // no exchange completes with a peer that does not serve
      if (this.caughtUpWith(have)) {
        this.peers.markExchange(session)
        if (!this.exchanged) {
          this.exchanged = true
          this.log.info({ peer: session.address }, 'first full exchange with a peer finished')
        }
      }
    }
  }

  /** `sync-agent accept-deletes`: apply the held mass delete. */
  private acceptDeletes(): { accepted: number } {
    return { accepted: this.deleteGuard.accept() }
  }

  /** `sync-agent revert` (read-only peers): put the folder's state back over local changes. */
  private revert(): { reverting: number } {
    const paths = this.localOnly?.startRevert() ?? []
    for (const p of paths) this.engine.mark(p)
    if (paths.length > 0) this.log.info({ paths: paths.length }, 'reverting local changes to the shared state')
    return { reverting: paths.length }
  }

  private recordError(code: string, message: string): void {
    this.log.error({ code }, message)
    this.metrics.error(code)
    this.errors.push({ code, message, at: Date.now() })
    if (this.errors.length > 20) this.errors.shift()
  }

  /** The run before this one ended itself after its event loop stalled (previous-stall.ts): in the log and in status' errors. */
  recordPreviousStall(stall: PreviousStall): void {
    const where = stall.samples[0] ?? stall.note ?? 'no stack sample'
    this.recordError('E_LOOP_STALLED', `the previous run ended itself at ${stall.at}: its event loop had not turned for ${stall.stalledS} s; it was in ${where}`)
  }

  private fileCount(): { files: number; bytes: number } {
    return this.index.fileTotals()
  }

  status(): StatusReport {
    this.checkExchanges()
    const { files, bytes } = this.fileCount()
    const pending = this.engine.pendingSummary()
    const connected = this.peers?.connected() ?? []
    const peersCaughtUp = connected.every((s) => {
      const have = this.haveBySession.get(s)
      return have !== undefined && this.caughtUpWith(this.claimsOf(s, have))
    })
    const heldDeletes = this.deleteGuard.status()
    // not while bulk mode has the watcher paused (nothing else pauses it) or is catching up
    // after it: a file a site wrote meanwhile (a node serves once ready, before its uploads are
    // all here) is not seen yet
    const watching = !this.bulkMode?.mayMissLocalChanges && !this.watchRenewal.busy && this.watcher.pendingCount === 0
    const inSync = this.deleteGuard.waitingCount === 0 && this.scanDone && watching && this.engine.isIdle && peersCaughtUp
    const readiness = this.currentReadiness(pending.byClass)
    const state: AgentState = this.state === 'stopping' ? 'stopping' : !this.scanDone ? 'scanning' : inSync ? 'idle' : 'syncing'
    const errors = [...this.errors]
    if (this.engine.lastError) errors.push(this.engine.lastError)
    return {
      version: VERSION,
      deviceId: deviceIdOf(this.deviceKey),
      shortId: shortIdOf(this.deviceKey),
      folder: this.config.folder,
      folderId: this.folderId,
      state,
      ready: readiness.ready,
      readyReason: readiness.reason,
      readyAt: readiness.readyAt,
      inSync,
      files,
      bytes,
      pending: this.engine.pendingCount + this.watcher.pendingCount + this.deleteGuard.waitingCount,
      pendingBytes: pending.bytes,
      pendingByDir: pending.byDir,
      classes: this.classStatus(peersCaughtUp, pending.byClass),
      peers: this.peers?.status({ isWriter: (deviceKey) => this.drives.isWriter(deviceKey), notServingSince: (s) => this.claims.notServingSince(s) }) ?? [],
      discovery: this.discovery?.status() ?? null,
      transfer: {
        ...(this.peers?.transfer() ?? { receivedBytes: 0, sentBytes: 0, maxSendKiBps: this.config.maxSendKiBps, maxRecvKiBps: this.config.maxRecvKiBps, limitLan: this.config.limitLan }),
        reusedBytes: this.contentFetcher.counters.reusedBytes
      },
      pausedSince: this.pausedSince,
      versions: this.archive ? { dir: this.archive.dir, keepDays: this.config.versionsKeepDays, keptSinceStart: this.archive.kept } : null,
      members: this.drives.all().length,
      dataDirBytes: this.dataDirUsage.bytes(),
      conflicts: this.engine.conflicts,
      role: this.config.secret.kind,
      localChanges: this.localOnly?.status() ?? null,
      heldDeletes,
      clockOffsetMs: this.clock.offsetMs,
      errors,
      startedAt: this.startedAt
    }
  }

  close(): Promise<void> {
    this.state = 'stopping'
    if (this.haveTimer) clearTimeout(this.haveTimer)
    if (this.sweepTimer) clearTimeout(this.sweepTimer)
    this.localChanges?.close()
    return this.closers.closeAll(this.log)
  }
}
