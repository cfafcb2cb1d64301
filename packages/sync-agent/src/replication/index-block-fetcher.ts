import type Hypercore from 'hypercore'
import { SyncError } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import { StallTimer } from '../peers/stall-timer.js'
import type { PeerSession } from '../peers/peer-session.js'
import { CONTENT_DONE, MAX_INDEX_BLOCKS, type IndexBlocks } from '../protocol.js'
import { entriesOf, TreeHasher, TreeNodeSet, type SnapshotEntryList } from './index-snapshot.js'
import { decryptInPlace } from './raw-blocks.js'
import { storeVerifiedBlocks } from './store-verified-blocks.js'

/**
 * Reads a member drive's whole index as one verified snapshot (index-snapshot.ts): its raw
 * blocks in a few large answers from a peer that holds them (index-block-server.ts), the
 * drive's author first, then checked in one go against the tree hash the writer signed.
 *
 * Why: Hypercore replicates an index block by block, each with its own request, Merkle proof
 * and RocksDB writes and reads on both sides; a fresh node took ~3.5 s for the ~9,000 blocks of
 * the benchmark's index, and reading them back for the listing cost as much again.
 *
 * Untrusted peers: blocks that do not hash to the signed tree are dropped whole (the next peer
 * is asked, then the caller falls back to Hypercore's replication); a peer that stalls is given
 * up after the timeout. Nothing a peer sends is decoded before the hash matched.
 */
export const WINDOWS_IN_FLIGHT = 2
export const INDEX_RESPONSE_TIMEOUT_MS = 15_000
/** larger indexes are left to Hypercore's replication (their snapshot is held in memory) */
export const MAX_SNAPSHOT_BLOCKS = 250_000
export const MAX_SNAPSHOT_BYTES = 128 * 1024 * 1024
/** what Hypercore's encryption adds to each stored block (8 bytes today), with room to spare */
const PADDING_SLACK = 64
const MAX_PEERS_ASKED = 2

interface Pending {
  session: PeerSession
  resolve(answer: IndexBlocks): void
  reject(err: Error): void
  timer: StallTimer
}

export interface IndexSnapshot {
  entries: SnapshotEntryList
  /** the blocks are now stored in the drive's core, as if replicated (false: Hypercore must fetch them) */
  stored: boolean
}

export interface SnapshotDrive {
  core: Hypercore
  /** version-vector key of the drive's author (a prefix of its device id) */
  author: string
  shortId: string
}

export class IndexBlockFetcher {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  /** sessions not asked again: they sent blocks that did not match, or stalled */
  private readonly unusable = new WeakSet<PeerSession>()
  /** snapshots taken, and answers that did not match the signed tree (for logs and tests) */
  readonly counters = { snapshots: 0, mismatches: 0 }

  constructor(
    private readonly deps: {
      /** connected peers that serve index blocks */
      sources(): PeerSession[]
      log: Logger
      responseTimeoutMs?: number
      /** blocks per storage write (store-verified-blocks.ts; tests make it small) */
      storeChunkBlocks?: number
    }
  ) {}

  /**
   * The drive's entries at `length` (its current length), stored in its core as well when
   * possible, or null when no peer could give a verified snapshot: the caller reads the index
   * through Hypercore as before.
   */
  async snapshot(drive: SnapshotDrive, length: number): Promise<IndexSnapshot | null> {
    if (length < 2 || length > MAX_SNAPSHOT_BLOCKS || length > drive.core.length) return null
    // the blocks of a matching answer add up to the core's signed byte length (plus padding):
    // a peer that sends more is lying, and is cut off before it fills the memory
    const maxBytes = drive.core.byteLength + length * PADDING_SLACK
    if (maxBytes > MAX_SNAPSHOT_BYTES) return null
    if (this.candidates(drive).length === 0) return null
    let signed: Buffer
    try {
      // the root hash the writer signed for this length (from the replication upgrade); its
      // last block first, with a bound (treeHash would wait for it without one)
      if (!(await drive.core.has(length - 1))) await drive.core.get(length - 1, { timeout: this.deps.responseTimeoutMs ?? INDEX_RESPONSE_TIMEOUT_MS })
      signed = await drive.core.treeHash(length)
    } catch (err) {
      this.deps.log.debug({ err, drive: drive.shortId, length }, 'no signed tree hash for this length here; reading the index through Hypercore')
      return null
    }
    // who to ask, as connected now: the wait above can outlast a connection (a duplicate one
    // closed meanwhile was asked, and its answer awaited for the whole timeout: fault suite,
    // rebuild phase)
    for (const session of this.candidates(drive).slice(0, MAX_PEERS_ASKED)) {
      const startedAt = Date.now()
      let blocks: Buffer[]
      let hasher: TreeHasher | null = new TreeHasher(new TreeNodeSet(length))
      try {
        blocks = await this.download(session, drive.core.key, length, maxBytes, hasher)
      } catch (err) {
        this.deps.log.info({ drive: drive.shortId, peer: session.deviceId?.slice(0, 7), err: (err as Error).message }, 'index snapshot from a peer failed')
        continue
      }
      // hashed as they came (download): the same check, made once for all of them (a block
      // missing or out of order gives another root)
      if (!hasher.hash().equals(signed)) {
        this.unusable.add(session)
        this.counters.mismatches++
        this.deps.log.warn({ code: 'E_PEER_PROTOCOL', drive: drive.shortId, peer: session.deviceId?.slice(0, 7), length }, 'index blocks from a peer do not match the drive\'s signed tree; not using them')
        continue
      }
      // stored first, so the blocks can then be decrypted where they are (no second copy) and
      // the tree's nodes let go before the entries are decoded
      let stored = false
      try {
        stored = await storeVerifiedBlocks(drive.core, blocks, hasher.nodes as TreeNodeSet, this.deps.storeChunkBlocks)
      } catch (err) {
        this.deps.log.warn({ err, drive: drive.shortId }, 'storing a verified index snapshot failed; Hypercore fetches the blocks instead')
      }
      hasher = null
      let entries: SnapshotEntryList
      try {
        for (let i = 0; i < blocks.length; i++) blocks[i] = await decryptInPlace(drive.core, i, blocks[i] as Buffer)
        entries = entriesOf(blocks)
      } catch (err) {
        // signed by the writer, yet not an index we can read: Hypercore's path decodes it entry by entry
        this.deps.log.warn({ code: 'E_PEER_PROTOCOL', drive: drive.shortId, err: (err as Error).message }, 'a drive\'s index could not be read as a snapshot; reading it through Hypercore')
        return null
      }
      this.counters.snapshots++
      this.deps.log.debug({ drive: drive.shortId, peer: session.deviceId?.slice(0, 7), blocks: length, entries: entries.length, stored, ms: Date.now() - startedAt }, 'index snapshot verified')
      return { entries, stored }
    }
    return null
  }

  onBlocks(session: PeerSession, answer: IndexBlocks): void {
    const p = this.pending.get(answer.id)
    // a late answer to a request we gave up on, or to another session's id: ignored
    if (!p || p.session !== session) return
    this.settle(answer.id)
    p.resolve(answer)
  }

  onSessionGone(session: PeerSession): void {
    for (const [id, p] of this.pending) {
      if (p.session !== session) continue
      this.settle(id)
      p.reject(new SyncError('E_PEER_PROTOCOL', 'the peer went away during an index transfer'))
    }
  }

  close(): void {
    for (const [id, p] of this.pending) {
      this.settle(id)
      p.reject(new Error('the agent is stopping'))
    }
  }

  private candidates(drive: SnapshotDrive): PeerSession[] {
    const usable = this.deps.sources().filter((s) => !s.closed && !this.unusable.has(s) && s.deviceId)
    // the author holds its whole drive
    return usable.sort((a, b) => Number(b.deviceId?.startsWith(drive.author)) - Number(a.deviceId?.startsWith(drive.author)))
  }

  /** Blocks 0..length-1 from one peer, a few requests in flight, added to `hasher` in order as they come. */
  private async download(session: PeerSession, driveKey: Buffer, length: number, maxBytes: number, hasher: TreeHasher): Promise<Buffer[]> {
    const blocks: Buffer[] = new Array<Buffer>(length)
    let asked = 0
    let received = 0
    let bytes = 0
    const inFlight = new Set<Promise<void>>()
    const ask = (start: number, end: number): void => {
      const run = this.request(session, driveKey, start, end).then((answer) => {
        if (answer.status !== CONTENT_DONE) throw new SyncError('E_PEER_PROTOCOL', `the peer has no blocks ${start}–${end - 1} (status ${answer.status})`)
        if (answer.blocks.length > end - start) throw new SyncError('E_PEER_PROTOCOL', `the peer sent ${answer.blocks.length} blocks for ${end - start} asked`)
        for (const b of answer.blocks) bytes += b.length
        if (bytes > maxBytes) {
          this.unusable.add(session)
          throw new SyncError('E_PEER_PROTOCOL', `the peer sent more than the index's ${maxBytes} bytes`)
        }
        answer.blocks.forEach((b, i) => (blocks[start + i] = b))
        received += answer.blocks.length
        // hashed while the next answer is on its way
        while (hasher.length < length && blocks[hasher.length]) hasher.add(blocks[hasher.length] as Buffer)
        // an answer cut short (it would not fit one message): ask for the rest
        if (start + answer.blocks.length < end) ask(start + answer.blocks.length, end)
      })
      inFlight.add(run)
      void run.finally(() => inFlight.delete(run)).catch(() => undefined)
    }
    while (received < length) {
      while (inFlight.size < WINDOWS_IN_FLIGHT && asked < length) {
        const end = Math.min(length, asked + MAX_INDEX_BLOCKS)
        ask(asked, end)
        asked = end
      }
      if (inFlight.size === 0) break
      await Promise.race(inFlight)
    }
    if (received !== length) throw new SyncError('E_PEER_PROTOCOL', `the peer sent ${received} of ${length} blocks`)
    return blocks
  }

  private request(session: PeerSession, driveKey: Buffer, start: number, end: number): Promise<IndexBlocks> {
    const id = this.nextId++
    const timeoutMs = this.deps.responseTimeoutMs ?? INDEX_RESPONSE_TIMEOUT_MS
    // a closed session sends nothing, and nothing would ever answer
    if (session.closed) return Promise.reject(new SyncError('E_PEER_PROTOCOL', 'the peer went away before an index request'))
    return new Promise<IndexBlocks>((resolve, reject) => {
      // an answer is one message (up to 4 MiB): on a slow or rate-limited link it is waited for while its bytes come
      const timer = new StallTimer(session, timeoutMs, () => {
        this.settle(id)
        this.unusable.add(session)
        reject(new SyncError('E_TIMEOUT', `peer ${session.deviceId?.slice(0, 7) ?? session.address} did not answer an index request for ${timeoutMs / 1000} s`))
      })
      this.pending.set(id, { session, resolve, reject, timer })
      session.sendIndexRequest({ id, driveKey, start, end })
    })
  }

  private settle(id: number): void {
    const p = this.pending.get(id)
    if (!p) return
    p.timer.clear()
    this.pending.delete(id)
  }
}
