import Hyperdrive from 'hyperdrive'
import type Corestore from 'corestore'
import type { RangeDownload } from 'hypercore'
import type { FolderKeys } from '@sync-agent/shared'
import { SyncError } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import { vectorKeyOf, shortIdOf } from '../device-id.js'
import { loadMembers, saveMembers, screenMembers, signMember, type Member } from './member.js'

/**
 * The drives of the folder: our own writable drive and one read-only drive per other member.
 * Knows who the members are (verified), opens their drives in the Corestore (so they
 * replicate over every connection) and says when one of them grew.
 */
export interface MemberDrive {
  hex: string
  drive: Hyperdrive
  /** version-vector key of the drive's device */
  author: string
  shortId: string
  isOwn: boolean
  member: Member
}

/** see DriveSet.openSaved */
const MEMBER_OPEN_WAIT_MS = 15_000

export class DriveSet {
  own!: MemberDrive
  private readonly byHex = new Map<string, MemberDrive>()
  /** verified members whose drives are being opened (see addMembers) */
  private readonly opening = new Map<string, Member>()
  private readonly downloads: RangeDownload[] = []
  /** drives whose whole index is being fetched and kept up to date */
  private readonly followed = new Set<string>()
  /** drives whose whole blob store is being kept here */
  private readonly fullCopies = new Set<string>()
  private readonly appendListeners: Array<(drive: MemberDrive) => void> = []
  private readonly memberListeners: Array<(drive: MemberDrive) => void> = []
  private closing = false
  /** a fresh member drive's index is read as a snapshot first (the engine calls followIndex after) */
  snapshotsFirst = false
  /** how long start waits for a saved member drive to open (see openSaved) */
  memberOpenWaitMs = MEMBER_OPEN_WAIT_MS

  constructor(
    private readonly store: Corestore,
    private readonly keys: FolderKeys,
    private readonly deviceKey: Buffer,
    private readonly dataDir: string,
    private readonly log: Logger
  ) {}

  async ready(): Promise<void> {
    if (!this.keys.contentKey) throw new SyncError('E_SECRET', 'an encrypted (blind) secret runs a relay (BlindAgent), not a folder agent')
    const drive = new Hyperdrive(this.store.namespace('sync-agent/own'), null, { encryptionKey: this.keys.contentKey })
    await drive.ready()
    await drive.getBlobs()
    // a read-only peer cannot sign its drive: it stays out of the member list (and stays empty)
    const member = signMember(this.keys, this.deviceKey, drive.key)
    this.own = this.track(drive, member ?? { deviceKey: this.deviceKey, driveKey: drive.key, signature: Buffer.alloc(64) }, true, member !== null)
    const saved = await this.loadMembers()
    for (const member of saved) await this.openSaved(member)
    this.log.debug({ members: saved.length }, 'saved members loaded')
  }

  /**
   * Opens a member drive known from an earlier run, waiting at most `memberOpenWaitMs`. A drive
   * whose open does not settle must not keep the agent from starting: a member list that held a
   * drive twice had it opened twice, the second open never settled, and with nothing else
   * pending node exited (code 13, no log line; fault suite seeds 1101, 1181, 1195). That cause
   * is fixed (onePerDrive, and `add` skips an open drive); should another open hang, it is
   * logged, the agent starts without it, and it joins once it opens.
   */
  private async openSaved(member: Member): Promise<void> {
    const hex = member.driveKey.toString('hex')
    this.opening.set(hex, member)
    this.log.debug({ drive: hex.slice(0, 16) }, 'opening a member drive')
    const startedAt = Date.now()
    const opened = this.add(member).finally(() => this.opening.delete(hex))
    let timer: NodeJS.Timeout | null = null
    // a timer that keeps the process alive while it waits (the open alone may not)
    const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), this.memberOpenWaitMs)))
    const outcome = await Promise.race([opened.then(() => 'opened' as const), stalled]).finally(() => {
      if (timer) clearTimeout(timer)
    })
    if (outcome === 'opened') return
    this.log.error({ code: 'E_STALLED', drive: hex.slice(0, 16), waitedMs: this.memberOpenWaitMs }, 'a member drive did not open in time: starting without it; it joins once it opens')
    opened.then(
      () => this.log.info({ drive: hex.slice(0, 16), ms: Date.now() - startedAt }, 'a member drive that was slow to open joined'),
      (err: unknown) => {
        if (!this.closing) this.log.error({ code: 'E_STALLED', drive: hex.slice(0, 16), err }, 'a member drive could not be opened')
      }
    )
  }

  /** Is this device a signed writer of the folder? */
  isWriter(deviceKey: Buffer): boolean {
    for (const d of this.byHex.values()) if (d.member.deviceKey.equals(deviceKey)) return true
    return false
  }

  /** Only read-write peers publish; a read-only peer's own drive is no member. */
  get canWrite(): boolean {
    return this.keys.writerKeyPair !== null
  }

  /** Every member drive, own first (a read-only peer's own drive is not one). */
  all(): MemberDrive[] {
    return [...this.byHex.values()]
  }

  get(hex: string): MemberDrive | undefined {
    return this.byHex.get(hex)
  }

  members(): Member[] {
    return this.all().map((d) => d.member)
  }

  onAppend(listener: (drive: MemberDrive) => void): void {
    this.appendListeners.push(listener)
  }

  onMember(listener: (drive: MemberDrive) => void): void {
    this.memberListeners.push(listener)
  }

  /** Adds members heard from a peer; returns how many were new and how many were forged (logged, skipped). */
  async addMembers(members: readonly Member[], from: string): Promise<{ added: number; rejected: number }> {
    const known = (hex: string) => this.byHex.has(hex) || this.opening.has(hex)
    const { fresh, rejected } = screenMembers(this.keys, members, known, this.byHex.size + this.opening.size, from, this.log)
    // an old drive of ours: never follow it
    const joining = fresh.filter((m) => !m.deviceKey.equals(this.deviceKey))
    if (joining.length === 0) return { added: 0, rejected }
    // saved before their drives open, and each drive opened once: the list is what a restart
    // starts from, and it used to be saved only after every drive had opened; with the same
    // member heard from several peers at once that save never came (fault suite seeds 825, 830,
    // 912, 950: a restarted node saw no peer's versions and lost a delete made while it was down)
    for (const m of joining) this.opening.set(m.driveKey.toString('hex'), m)
    try {
      await this.saveMembers()
      for (const m of joining) await this.add(m)
    } finally {
      for (const m of joining) this.opening.delete(m.driveKey.toString('hex'))
    }
    return { added: joining.length, rejected }
  }

  private async add(member: Member): Promise<void> {
    // never a second Hyperdrive on an open member drive: its open does not finish (onePerDrive)
    if (this.closing || this.byHex.has(member.driveKey.toString('hex'))) return
    const drive = new Hyperdrive(this.store.session(), member.driveKey, { encryptionKey: this.keys.contentKey })
    await drive.ready()
    const tracked = this.track(drive, member, false)
    // an index we hold part of already is followed from now on; a fresh one is first read as a
    // verified snapshot by the engine, which follows it afterwards (followIndex)
    if (drive.core.length > 0 || !this.snapshotsFirst) this.followIndex(tracked)
    drive.core.on('append', () => this.emitAppend(tracked))
    this.log.info({ drive: tracked.hex.slice(0, 16), device: tracked.shortId }, 'member added')
    for (const l of this.memberListeners) l(tracked)
    if (drive.core.length > 0) this.emitAppend(tracked)
  }

  /**
   * Fetches a member drive's whole file index and keeps following it, so its entries are read
   * here without a round trip, whether or not its author is connected (contents: see
   * BlobPrefetcher). Hypercore learns of new lengths by itself (eager upgrades) meanwhile.
   */
  followIndex(drive: MemberDrive): void {
    if (drive.isOwn || this.followed.has(drive.hex) || this.closing) return
    this.followed.add(drive.hex)
    this.downloads.push(drive.drive.core.download({ start: 0, end: -1 }))
  }

  /**
   * Keeps a full, live copy of a member drive's contents on a read-only peer: it keeps its
   * local edits to itself, so its folder cannot serve the shared versions of those files
   * (content/content-server.ts) and its copy of the blocks does. Started only once the
   * priority classes are applied (the engine calls it when idle), so it never takes
   * bandwidth from them; what is already here is skipped by the bitfield.
   *
   * A read-write peer serves from its folder, which holds the newest version of every file
   * (its own edits are published): no second copy in its data dir. Keeping one doubled its
   * disk use and, right after a fresh sync, fetched the whole corpus again as blocks (new
   * uploads took 0.5–2.5 s to arrive meanwhile instead of ~70 ms).
   */
  keepFullCopy(drive: MemberDrive): void {
    if (drive.isOwn || this.canWrite || this.fullCopies.has(drive.hex) || this.closing) return
    this.fullCopies.add(drive.hex)
    drive.drive
      .getBlobs()
      .then((blobs) => {
        if (!this.closing) this.downloads.push(blobs.core.download({ start: 0, end: -1 }))
      })
      .catch((err: unknown) => {
        this.fullCopies.delete(drive.hex)
        this.log.debug({ err }, 'blob store not opened yet')
      })
  }

  private track(drive: Hyperdrive, member: Member, isOwn: boolean, isMember = true): MemberDrive {
    const tracked: MemberDrive = {
      hex: drive.key.toString('hex'),
      drive,
      author: vectorKeyOf(member.deviceKey),
      shortId: shortIdOf(member.deviceKey),
      isOwn,
      member
    }
    if (isMember) this.byHex.set(tracked.hex, tracked)
    return tracked
  }

  private emitAppend(drive: MemberDrive): void {
    if (this.closing) return
    for (const l of this.appendListeners) l(drive)
  }

  private async loadMembers(): Promise<Member[]> {
    return (await loadMembers(this.dataDir, this.keys)).filter((m) => !m.deviceKey.equals(this.deviceKey))
  }

  private async saveMembers(): Promise<void> {
    const members = [...this.all().filter((d) => !d.isOwn).map((d) => d.member), ...this.opening.values()]
    await saveMembers(this.dataDir, members)
    this.log.debug({ members: members.length }, 'members saved')
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    for (const d of this.downloads) d.destroy()
    for (const d of [...this.byHex.values()].reverse()) await d.drive.close().catch(() => undefined)
  }
}
