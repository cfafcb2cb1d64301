import Hyperdrive from 'hyperdrive'
import type Corestore from 'corestore'
import type Hypercore from 'hypercore'
import type { RangeDownload } from 'hypercore'
import type { FolderKeys } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import type { Have } from '../protocol.js'
import { loadMembers, saveMembers, screenMembers, type Member } from './member.js'

/**
 * What an encrypted (blind) peer keeps: every member's file index core and blob core, as
 * ciphertext. Hypercore encrypts a block before hashing it, so these cores replicate and
 * verify without the content key; the blob core's key follows from the index core's public
 * manifest (Hyperdrive.getContentKey). The relay never reads a block: names and contents stay
 * unreadable here, and it cannot write (it cannot sign a member).
 */
interface Relayed {
  member: Member
  db: Hypercore
  blobs: Hypercore | null
}

export class BlindRelay {
  private readonly byHex = new Map<string, Relayed>()
  private readonly downloads: RangeDownload[] = []
  private readonly appendListeners: Array<() => void> = []
  private readonly downloadListeners: Array<() => void> = []
  private closing = false

  constructor(
    private readonly store: Corestore,
    private readonly keys: FolderKeys,
    private readonly dataDir: string,
    private readonly log: Logger
  ) {}

  async ready(): Promise<void> {
    for (const m of await loadMembers(this.dataDir, this.keys)) await this.add(m)
  }

  members(): Member[] {
    return [...this.byHex.values()].map((r) => r.member)
  }

  haveList(): Have[] {
    return [...this.byHex.values()].map((r) => ({ driveKey: r.member.driveKey, length: r.db.length }))
  }

  onAppend(listener: () => void): void {
    this.appendListeners.push(listener)
  }

  /** Called for each block received, of any relayed core (index or blobs). */
  onDownload(listener: () => void): void {
    this.downloadListeners.push(listener)
  }

  private readonly downloaded = (): void => {
    for (const l of this.downloadListeners) l()
  }

  /** Blocks (index + blobs) held of all relayed cores, for status. */
  stored(): { blocks: number; bytes: number } {
    let blocks = 0
    let bytes = 0
    for (const r of this.byHex.values()) {
      for (const core of [r.db, r.blobs]) {
        if (!core) continue
        blocks += core.contiguousLength
        bytes += core.byteLength
      }
    }
    return { blocks, bytes }
  }

  /**
   * Blocks this relay still lacks: of each member's index core up to the longest length a peer
   * claims (`claimed`, by drive key hex) or the core's own, and of its blob core up to its
   * length as replicated so far. An index core with blocks whose blob core is not open yet (its
   * manifest has not arrived) counts one. Zero: it holds all it knows of (`inSync`). Counted up to
   * about `cap` (status shows the count; holdsAll only asks whether it is zero).
   */
  missingBlocks(claimed: ReadonlyMap<string, number>, cap = MISSING_COUNT_CAP): number {
    let missing = 0
    for (const [hex, r] of this.byHex) {
      if (missing >= cap) break
      const length = Math.max(r.db.length, claimed.get(hex) ?? 0)
      missing += length - r.db.contiguousLength
      if (r.blobs) missing += missingBlobBlocks(r.blobs, r.member.deviceKey, cap - missing)
      else if (length > 0) missing++
    }
    return missing
  }

  /** Does this relay hold every block it knows of, up to the lengths `claimed`? (Stops at the first missing one.) */
  holdsAll(claimed: ReadonlyMap<string, number>): boolean {
    return this.missingBlocks(claimed, 1) === 0
  }

  /** Same rules as DriveSet.addMembers: only writers signed with the rw secret's key. */
  async addMembers(members: readonly Member[], from: string): Promise<{ added: number; rejected: number }> {
    const { fresh, rejected } = screenMembers(this.keys, members, (hex) => this.byHex.has(hex), this.byHex.size, from, this.log)
    for (const member of fresh) await this.add(member)
    if (fresh.length > 0) await saveMembers(this.dataDir, this.members())
    return { added: fresh.length, rejected }
  }

  private async add(member: Member): Promise<void> {
    if (this.closing) return
    const db = this.store.get({ key: member.driveKey })
    await db.ready()
    const relayed: Relayed = { member, db, blobs: null }
    this.byHex.set(member.driveKey.toString('hex'), relayed)
    this.downloads.push(db.download({ start: 0, end: -1 }))
    const onAppend = () => {
      this.openBlobs(relayed).catch((err: unknown) => this.log.warn({ err }, 'cannot open a member blob core'))
      for (const l of this.appendListeners) l()
    }
    db.on('append', onAppend)
    db.on('download', this.downloaded)
    if (db.length > 0) onAppend()
    this.log.info({ drive: member.driveKey.toString('hex').slice(0, 16) }, 'relaying member')
  }

  /** The blob core's key is known once the index core's manifest arrived. */
  private async openBlobs(relayed: Relayed): Promise<void> {
    if (relayed.blobs || this.closing) return
    const manifest = (relayed.db as unknown as { manifest: unknown }).manifest
    if (!manifest) return
    const key = Hyperdrive.getContentKey(manifest, relayed.member.driveKey)
    if (!key) return
    const blobs = this.store.get({ key })
    relayed.blobs = blobs
    blobs.on('download', this.downloaded)
    await blobs.ready()
    this.downloads.push(blobs.download({ start: 0, end: -1 }))
  }

  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    for (const d of this.downloads) d.destroy()
    for (const r of this.byHex.values()) {
      await r.blobs?.close().catch(() => undefined)
      await r.db.close().catch(() => undefined)
    }
  }
}

/** counting the blocks a relay lacks stops here (a fresh relay's backlog: the count is for status) */
export const MISSING_COUNT_CAP = 100_000

/** Hypercore internals read by missingBlobBlocks (hypercore 11): a peer's bitfield and ours */
interface BitfieldInternals {
  core?: { bitfield?: { get(index: number): boolean } }
  peers: Array<{ remotePublicKey?: Buffer; remoteBitfield?: { findFirst(value: boolean, position: number): number } }>
}

/**
 * Blocks of a member's blob core this relay lacks. A writer clears the blocks of versions it
 * replaced or deleted (OwnDriveWriter.release): a relay that was away meanwhile can never get
 * those, and counting them kept it out of `inSync` for good. So while the writer (`writerKey`)
 * is connected, only blocks that it or another connected peer has count (their bitfields,
 * which a clear updates). With the writer away, every block not here counts, as the absence
 * cannot tell a cleared block from one not sent yet; so does every gap on a Hypercore without
 * the internals read here.
 */
export function missingBlobBlocks(core: Hypercore, writerKey: Buffer, cap = MISSING_COUNT_CAP): number {
  const gap = core.length - core.contiguousLength
  if (gap === 0) return 0
  const internals = core as unknown as BitfieldInternals
  if (!internals.peers.some((p) => p.remotePublicKey?.equals(writerKey))) return gap
  const local = internals.core?.bitfield
  const remotes = internals.peers.map((p) => p.remoteBitfield)
  if (typeof local?.get !== 'function' || remotes.some((r) => typeof r?.findFirst !== 'function')) return gap
  let missing = 0
  for (let i = core.contiguousLength; i < core.length && missing < cap; ) {
    // the next block some peer has
    let next = core.length
    for (const r of remotes) {
      const found = (r as NonNullable<typeof r>).findFirst(true, i)
      if (found !== -1 && found < next) next = found
    }
    if (next >= core.length) break
    if (!local.get(next)) missing++
    i = next + 1
  }
  return missing
}
