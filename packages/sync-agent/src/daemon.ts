import { lstat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type Corestore from 'corestore'
import { deriveFolderKeys, hashFor, IGNORE_FILE, SyncError, type AgentState, type StatusReport } from '@sync-agent/shared'
import type { AgentConfig } from './config/load-config.js'
import type { Logger } from './log.js'
import { openStore } from './open-store.js'
import { Closers } from './closers.js'
import { IndexStore } from './index-store.js'
import { DriveSet } from './replication/drive-set.js'
import { buildIgnoreRules, type IgnoreRules } from './ignore-rules.js'
import { FolderWriter, fingerprintMatches } from './folder-writer.js'
import type { Stats } from 'node:fs'
import { PathReconciler } from './reconcile-path.js'
import { SyncEngine } from './sync-engine.js'
import { OwnDriveWriter } from './own-drive-writer.js'
import { FolderWatcher } from './folder-watcher.js'
import { scanFolder } from './folder-scanner.js'
import { PeerManager } from './peers/peer-manager.js'
import { Discovery } from './peers/discovery.js'
import type { PeerSession } from './peers/peer-session.js'
import type { Have } from './protocol.js'
import { ControlServer } from './control/control-server.js'
import { MassDeleteGuard } from './mass-delete-guard.js'
import { LocalDivergence } from './local-divergence.js'
import { deviceIdOf, shortIdOf } from './device-id.js'

export const VERSION = '0.1.0'
const HAVE_DEBOUNCE_MS = 30
const BULK_MODE_PATHS = 2_000
const BULK_MODE_CHECK_MS = 250

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
  private control!: ControlServer
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
  private haveTimer: NodeJS.Timeout | null = null
  private readonly errors: StatusReport['errors'] = []
  private readonly startedAt = Date.now()
  private readonly closers = new Closers()

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger
  ) {}

  async ready(): Promise<void> {
    const { config, log } = this
    const keys = deriveFolderKeys(config.secret)
    if (!keys.contentKey) throw new SyncError('E_SECRET', 'an encrypted (blind) secret runs a relay (BlindAgent), not a folder agent')
    this.folderId = keys.folderId
    const opened = await openStore(config.dataDir)
    this.store = opened.store
    this.closers.add(() => this.store.close())
    const keyPair = opened.keyPair
    this.deviceKey = keyPair.publicKey

    this.index = new IndexStore(config.dataDir, hashFor('index-at-rest', keys.contentKey), (err) =>
      this.recordError((err as NodeJS.ErrnoException).code === 'ENOSPC' ? 'E_DISK_FULL' : 'E_IO', `index journal write failed: ${(err as Error).message}`)
    )
    await this.index.ready()
    this.closers.add(() => this.index.close())

    this.drives = new DriveSet(this.store, keys, keyPair.publicKey, config.dataDir, log.child({ c: 'drives' }))
    await this.drives.ready()
    this.closers.add(() => this.drives.close())
    log.info({ deviceId: deviceIdOf(this.deviceKey), folder: config.folder, folderId: keys.folderId }, 'agent starting')

    this.rules = await this.loadRules()
    if (!this.drives.canWrite) this.localOnly = new LocalDivergence()
    const writer = new FolderWriter(config.folder)
    const reconciler = new PathReconciler({
      writer,
      index: this.index,
      drives: this.drives,
      own: new OwnDriveWriter(this.drives.own.drive, await this.drives.own.drive.getBlobs()),
      rules: () => this.rules,
      mayDelete: (p) => this.deleteGuard.mayDelete(p),
      localOnly: this.localOnly,
      log: log.child({ c: 'reconcile' }),
      onNewPath: (p) => this.engine.mark(p),
      onConflict: () => {
        this.engine.conflicts++
      }
    })
    this.engine = new SyncEngine(this.index, this.drives, reconciler, log.child({ c: 'engine' }))
    this.closers.add(() => this.engine.close())
    this.engine.onIdle(() => this.onEngineIdle())
    this.deleteGuard = new MassDeleteGuard({
      share: config.massDeleteShare,
      dataDir: config.dataDir,
      folderPaths: () => this.index.size,
      release: (paths) => {
        for (const p of paths) this.engine.mark(p)
      },
      log: log.child({ c: 'deletes' })
    })
    await this.deleteGuard.ready()
    this.closers.add(() => this.deleteGuard.close())
    this.engine.takeRemoteDeletes = (paths) => this.deleteGuard.submit(paths)
    this.drives.onAppend((d) => {
      if (d.isOwn) this.scheduleHave()
      else this.engine.onDriveAppend(d)
    })
    this.drives.onMember(() => this.broadcastMembers())

    // watch first, then scan, so nothing that changes during the scan is missed
    this.watcher = new FolderWatcher(config.folder, config.settleMs, {
      onPath: (p, stats) => this.onLocalPath(p, stats),
      isIgnored: (p, isDir) => this.rules.isIgnored(p, isDir),
      onDirGone: (p) => this.engine.markTree(p),
      onError: (err) => this.recordError('E_IO', `watcher: ${err.message}`)
    }, log.child({ c: 'watcher' }))
    await this.watcher.ready()
    this.closers.add(() => this.watcher.close())

    this.state = 'scanning'
    await this.scan(writer)
    if (config.rescanIntervalS > 0) {
      const timer = setInterval(() => {
        this.scan(writer, false).catch((err: unknown) => this.recordError('E_IO', `periodic rescan failed: ${(err as Error).message}`))
      }, config.rescanIntervalS * 1000)
      timer.unref()
      this.closers.add(async () => clearInterval(timer))
    }
    for (const d of this.drives.all()) this.engine.onDriveAppend(d)
    this.scanDone = true
    this.state = 'syncing'

    this.startBulkModeMonitor(writer)

    this.peers = new PeerManager({
      listen: config.listen,
      peers: config.peers,
      keyPair,
      authKey: keys.authKey,
      allow: config.allow,
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
        },
        onPeerGone: (s) => {
          this.haveBySession.delete(s)
        }
      }
    })
    await this.peers.ready()
    this.closers.add(() => this.peers.close())
    const discovery = Discovery.fromConfig(config, keys.topic, keyPair, (stream) => this.peers.attachDiscovered(stream), log.child({ c: 'discovery' }))
    this.closers.add(() => discovery.close())
    await discovery.ready()

    this.control = new ControlServer(
      config.controlPath,
      { status: () => this.status(), acceptDeletes: () => this.acceptDeletes(), revert: () => this.revert() },
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

  private onLocalPath(path: string, stats: Stats | undefined): void {
    if (path === IGNORE_FILE) {
      this.loadRules()
        .then((rules) => {
          this.rules = rules
          this.log.info('reloaded .syncignore')
        })
        .catch((err: unknown) => this.recordError('E_IO', `cannot read ${IGNORE_FILE}: ${(err as Error).message}`))
      return
    }
    // our own writes come back as events: the index already describes them (no echo)
    const record = this.index.get(path)
    if (stats) {
      if (!record || !fingerprintMatches(stats, record)) this.onChanged(path, stats, record === undefined)
      return
    }
    lstat(join(this.config.folder, path)).then(
      (st) => {
        if (!record || !fingerprintMatches(st, record)) this.onChanged(path, st, record === undefined)
      },
      () => {
        if (record) this.engine.mark(path)
      }
    )
  }

  /**
   * Bulk mode: while thousands of remote paths wait to be applied (a fresh node's first
   * sync), the watcher is paused; once the queue drains it resumes and a stat-only rescan
   * publishes whatever was edited here meanwhile. Writes stay safe either way: the folder
   * writer refuses to replace a file that differs from the index.
   */
  private startBulkModeMonitor(writer: FolderWriter): void {
    let switching = false
    const timer = setInterval(() => {
      if (switching || this.state === 'stopping') return
      const paused = this.watcher.isPaused
      const backlog = this.engine.pendingCount + this.remoteBacklog()
      if (!paused && backlog >= BULK_MODE_PATHS) {
        switching = true
        this.log.info({ backlog }, 'bulk sync: pausing the watcher')
        this.watcher.pause().finally(() => (switching = false))
      } else if (paused && this.engine.isIdle) {
        switching = true
        this.watcher
          .resume()
          .then(() => this.scan(writer, false))
          .then(() => this.log.info('bulk sync done: watching again'))
          .catch((err: unknown) => this.recordError('E_IO', `cannot resume watching: ${(err as Error).message}`))
          .finally(() => (switching = false))
      }
    }, BULK_MODE_CHECK_MS)
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
        if (drive && !drive.isOwn) backlog += Math.max(0, length - this.engine.appliedVersion(drive.hex))
      }
    }
    return backlog
  }

  private onChanged(path: string, st: Stats, isNew: boolean): void {
    this.engine.mark(path)
    // a new directory may have been filled before the watcher saw it: look inside once
    if (isNew && st.isDirectory()) {
      scanFolder(this.config.folder, this.rules, {
        onEntry: (p, s) => {
          const r = this.index.get(p)
          if (!r || !fingerprintMatches(s, r)) this.engine.mark(p)
        },
        onTempFile: () => undefined,
        onUnsyncable: () => undefined
      }, path).catch((err: unknown) => this.recordError('E_IO', `scan of ${path} failed: ${(err as Error).message}`))
    }
  }

  /** Compares the folder with the index; at start also removes leftover temp files. */
  private async scan(writer: FolderWriter, atStart = true): Promise<void> {
    const seen = new Set<string>()
    let temps = 0
    await scanFolder(this.config.folder, this.rules, {
      onEntry: (path, st) => {
        seen.add(path)
        const record = this.index.get(path)
        if (!record || !fingerprintMatches(st, record)) this.engine.mark(path)
      },
      onTempFile: (path) => {
        if (!atStart) return // may belong to a write in progress
        temps++
        writer.removeTemp(path).catch(() => undefined)
      },
      onUnsyncable: (path, problem) => this.log.warn({ code: 'E_PATH_UNSAFE', path, problem }, 'cannot sync this name; skipped')
    })
    for (const [path] of this.index.entries()) if (!seen.has(path)) this.engine.mark(path)
    this.log.info({ files: seen.size, changed: this.engine.pendingCount, tempFilesRemoved: temps }, atStart ? 'start-up scan done' : 'rescan done')
  }

  private onPeer(session: PeerSession): void {
    session.sendMembers(this.drives.members())
    this.sendHave(session)
    this.engine.retryNow()
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

  private checkExchanges(): void {
    if (!this.scanDone || !this.engine.isIdle || !this.peers) return
    for (const [session, have] of this.haveBySession) {
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
    this.errors.push({ code, message, at: Date.now() })
    if (this.errors.length > 20) this.errors.shift()
  }

  private fileCount(): { files: number; bytes: number } {
    let files = 0
    let bytes = 0
    for (const [, r] of this.index.entries()) {
      if (r.kind !== 'file') continue
      files++
      bytes += r.size
    }
    return { files, bytes }
  }

  status(): StatusReport {
    this.checkExchanges()
    const { files, bytes } = this.fileCount()
    const pending = this.engine.pendingByDir()
    const connected = this.peers?.connected() ?? []
    const peersCaughtUp = connected.every((s) => {
      const have = this.haveBySession.get(s)
      return have !== undefined && this.caughtUpWith(have)
    })
    const heldDeletes = this.deleteGuard.status()
    const inSync = this.deleteGuard.waitingCount === 0 && this.scanDone && !this.watcher.isPaused && this.engine.isIdle && this.watcher.pendingCount === 0 && peersCaughtUp
    const ready = this.scanDone && (this.config.peers.length === 0 || this.exchanged)
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
      ready,
      inSync,
      files,
      bytes,
      pending: this.engine.pendingCount + this.watcher.pendingCount + this.deleteGuard.waitingCount,
      pendingBytes: pending.bytes,
      pendingByDir: pending.byDir,
      peers: this.peers?.status((deviceKey) => this.drives.isWriter(deviceKey)) ?? [],
      members: this.drives.all().length,
      conflicts: this.engine.conflicts,
      role: this.config.secret.kind,
      localChanges: this.localOnly?.status() ?? null,
      heldDeletes,
      errors,
      startedAt: this.startedAt
    }
  }

  close(): Promise<void> {
    this.state = 'stopping'
    if (this.haveTimer) clearTimeout(this.haveTimer)
    return this.closers.closeAll(this.log)
  }
}
