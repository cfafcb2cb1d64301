import type Corestore from 'corestore'
import { deriveFolderKeys, type StatusReport } from '@sync-agent/shared'
import type { AgentConfig } from './config/load-config.js'
import type { Logger } from './log.js'
import { openStore } from './open-store.js'
import { Closers } from './closers.js'
import { BlindRelay } from './replication/blind-relay.js'
import { PeerManager } from './peers/peer-manager.js'
import type { PeerSession } from './peers/peer-session.js'
import { Discovery } from './peers/discovery.js'
import { ControlServer } from './control/control-server.js'
import { DataDirUsage } from './data-dir-usage.js'
import { deviceIdOf, shortIdOf } from './device-id.js'
import { VERSION } from './daemon.js'

/**
 * Wiring of an encrypted (blind) peer: no folder, no index, no engine. It proves it holds a
 * secret of the folder, learns the writers (verified), stores and serves their cores as
 * ciphertext, and relays the member list, so read-write peers that never meet still sync
 * through it. It cannot read names or contents and cannot write.
 */
const HAVE_DEBOUNCE_MS = 100

export class BlindAgent {
  private store!: Corestore
  private relay!: BlindRelay
  private peers!: PeerManager
  private discovery: Discovery | null = null
  private deviceKey!: Buffer
  private folderId = ''
  private haveTimer: NodeJS.Timeout | null = null
  private exchangeTimer: NodeJS.Timeout | null = null
  /** what each connected peer says it has (drive key hex → index length), for inSync */
  private readonly haveBySession = new Map<PeerSession, Map<string, number>>()
  private readonly startedAt = Date.now()
  private readonly closers = new Closers()
  private readonly dataDirUsage: DataDirUsage

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger
  ) {
    this.dataDirUsage = new DataDirUsage(config.dataDir)
  }

  async ready(): Promise<void> {
    const { config, log } = this
    const keys = deriveFolderKeys(config.secret)
    this.folderId = keys.folderId
    const opened = await openStore(config.dataDir)
    // a first figure for status and metrics (a failure: measured again when asked)
    await this.dataDirUsage.refresh().catch(() => undefined)
    this.store = opened.store
    this.closers.add(() => this.store.close())
    const keyPair = opened.keyPair
    this.deviceKey = keyPair.publicKey

    this.relay = new BlindRelay(this.store, keys, config.dataDir, log.child({ c: 'relay' }))
    await this.relay.ready()
    this.closers.add(() => this.relay.close())
    this.relay.onAppend(() => this.scheduleHave())
    this.relay.onDownload(() => this.scheduleExchangeCheck())
    log.info({ deviceId: deviceIdOf(this.deviceKey), folderId: keys.folderId, role: 'en' }, 'blind relay starting (encrypted secret: stores and forwards, reads nothing)')

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
        onPeer: (s) => {
          s.sendMembers(this.relay.members())
          s.sendHave(this.relay.haveList())
        },
        onMembers: (s, members) => {
          this.relay
            .addMembers(members, s.address)
            .then(({ added, rejected }) => {
              if (rejected > 0) s.fail('E_PEER_PROTOCOL', 'the peer sent a writer without a valid proof; dropped it')
              if (added > 0) for (const p of this.peers.connected()) p.sendMembers(this.relay.members())
            })
            .catch((err: unknown) => log.error({ err }, 'adding members failed'))
        },
        onHave: (s, have) => {
          this.haveBySession.set(s, new Map(have.map((h) => [h.driveKey.toString('hex'), h.length])))
          this.scheduleExchangeCheck()
        },
        onPeerGone: (s) => this.haveBySession.delete(s),
        // a relay publishes nothing: it has no publish times to correct
        onPeerClock: () => undefined
      }
    })
    await this.peers.ready()
    this.closers.add(() => this.peers.close())
    const discovery = (this.discovery = Discovery.fromConfig(config, keys.topic, keyPair, (stream) => this.peers.attachDiscovered(stream), log.child({ c: 'discovery' })))
    this.closers.add(() => discovery.close())
    await discovery.ready()

    const control = new ControlServer(config.controlPath, { status: () => this.status(), acceptDeletes: () => ({ accepted: 0 }), revert: () => ({ reverting: 0 }) }, log.child({ c: 'control' }))
    await control.ready()
    this.closers.add(() => control.close())
    log.info({ members: this.relay.members().length }, 'blind relay ready')
  }

  private scheduleHave(): void {
    if (this.haveTimer) return
    this.haveTimer = setTimeout(() => {
      this.haveTimer = null
      const have = this.relay.haveList()
      for (const s of this.peers?.connected() ?? []) s.sendHave(have)
    }, HAVE_DEBOUNCE_MS)
  }

  /**
   * A peer's exchange is complete once this relay holds every block that peer claims (its
   * `have`) and every block of the members' blob cores a connected peer has: the peer's
   * `lastExchangeAt` in status, as on a folder agent. Checked shortly after blocks arrive.
   */
  private scheduleExchangeCheck(): void {
    if (this.exchangeTimer) return
    this.exchangeTimer = setTimeout(() => {
      this.exchangeTimer = null
      for (const [session, have] of this.haveBySession) {
        if (this.relay.holdsAll(have)) this.peers.markExchange(session)
      }
    }, HAVE_DEBOUNCE_MS)
  }

  /** The longest index length any connected peer claims, per drive. */
  private claimed(): Map<string, number> {
    const out = new Map<string, number>()
    for (const have of this.haveBySession.values()) for (const [hex, length] of have) out.set(hex, Math.max(length, out.get(hex) ?? 0))
    return out
  }

  status(): StatusReport {
    const stored = this.relay.stored()
    // in sync once it holds every block it knows of: all of each member's cores, as long as
    // the connected peers say they are
    const missing = this.relay.missingBlocks(this.claimed())
    return {
      version: VERSION,
      deviceId: deviceIdOf(this.deviceKey),
      shortId: shortIdOf(this.deviceKey),
      folder: this.config.folder,
      folderId: this.folderId,
      state: missing === 0 ? 'idle' : 'syncing',
      ready: true,
      readyReason: 'encrypted relay: stores and forwards, serves no folder',
      readyAt: this.startedAt,
      inSync: missing === 0,
      role: 'en',
      files: 0,
      bytes: stored.bytes,
      pending: missing,
      pendingBytes: 0,
      pendingByDir: {},
      classes: [],
      peers: this.peers?.status({ isWriter: (deviceKey) => this.relay.members().some((m) => m.deviceKey.equals(deviceKey)) }) ?? [],
      discovery: this.discovery?.status() ?? null,
      transfer: { ...this.peers.transfer(), reusedBytes: 0 },
      versions: null,
      members: this.relay.members().length,
      dataDirBytes: this.dataDirUsage.bytes(),
      conflicts: 0,
      localChanges: null,
      heldDeletes: null,
      errors: [],
      clockOffsetMs: 0,
      startedAt: this.startedAt
    }
  }

  close(): Promise<void> {
    if (this.haveTimer) clearTimeout(this.haveTimer)
    if (this.exchangeTimer) clearTimeout(this.exchangeTimer)
    return this.closers.closeAll(this.log)
  }
}
