import { open, type FileHandle } from 'node:fs/promises'
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'
import { findPathProblem } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import type { PeerSession } from '../peers/peer-session.js'
import {
  CONTENT_BUSY, CONTENT_DONE, CONTENT_NOT_HERE, CONTENT_REFUSED, MAX_CONTENT_CHUNK, SUM_BYTES, type ContentRequest, type SumsRequest
} from '../protocol.js'
import { sumBlocks, sumsFit } from './block-sums.js'

/**
 * Answers peers' content requests from our folder: the bytes of a file at a path, when the
 * file there is the one our index recorded and its sha256 is the one asked for. A peer that
 * asks names content a signed entry gave it, and checks what it gets against that hash
 * (content-fetcher.ts), so serving what our disk holds is safe; a file changed since we
 * recorded it is "not here" and the peer reads the version's blocks from Hypercore instead.
 *
 * Why: a Hypercore block costs a Merkle proof, a BLAKE2b tree hash, a second cipher and
 * RocksDB writes and reads on both sides; a fresh node's uploads arrived at ~25 MiB/s that
 * way, the same bytes over this channel at disk speed (see the README's benchmark).
 *
 * Bounded per peer: a few requests are read at once, a queue of MAX_QUEUED waits, more are
 * answered "busy". An urgent request (a file someone asks for now, FEATURE_URGENT) is served
 * before the queue and beside the running ones, so it does not wait behind a fresh node's
 * whole backlog on a slow link. Only peers that may read contents are served (not encrypted relays).
 *
 * A sums request (FEATURE_SUMS) is answered the same way, in the same queue: the sha256 of
 * each block of the file (block-sums.ts) instead of its bytes, so a peer that holds an older
 * version fetches only the blocks that differ (content-fetcher.ts).
 */
export const CHUNK_BYTES = 256 * 1024
const PARALLEL_PER_PEER = 4
/** urgent requests (a file someone asks for now) run beside the others, this many more at most */
const URGENT_EXTRA = 2
export const MAX_QUEUED = 256

export interface ServableFile {
  abs: string
  size: number
  /** the recorded fingerprint: a file that no longer has it after the read was changed meanwhile */
  mtimeMs: number
  ino: number
}

export interface ContentServerDeps {
  /** our file at `path` if it holds the content `hashHex` (index record and disk agree), else null */
  localFile(path: string, hashHex: string): Promise<ServableFile | null>
  /** may this peer read file contents (a verified read-write or read-only peer) */
  mayRead(session: PeerSession): boolean
  log: Logger
}

/** sums are sent in messages of this many bytes at most */
const SUMS_MESSAGE_BYTES = Math.min(MAX_CONTENT_CHUNK, 1024 * SUM_BYTES)

type Job = ContentRequest | (SumsRequest & { sums: true })

interface PeerQueue {
  waiting: Job[]
  /** urgent requests, served before `waiting` and beyond its parallel limit */
  urgent: ContentRequest[]
  running: number
}

export class ContentServer {
  private readonly queues = new Map<PeerSession, PeerQueue>()
  private readonly refusedLogged = new WeakSet<PeerSession>()
  private closed = false
  /** requests answered with bytes, and the bytes (for logs and tests) */
  served = { requests: 0, bytes: 0 }

  constructor(private readonly deps: ContentServerDeps) {}

  onRequest(session: PeerSession, request: ContentRequest, urgent = false): void {
    this.enqueue(session, request, urgent)
  }

  onSumsRequest(session: PeerSession, request: SumsRequest): void {
    this.enqueue(session, { ...request, sums: true }, false)
  }

  private enqueue(session: PeerSession, request: Job, urgent: boolean): void {
    if (this.closed) return
    if (!this.deps.mayRead(session)) {
      if (!this.refusedLogged.has(session)) {
        this.refusedLogged.add(session)
        this.deps.log.warn({ peer: session.address, device: session.deviceId?.slice(0, 7), role: session.role }, 'a peer that may not read contents asked for a file; refused')
      }
      session.sendContentEnd({ id: request.id, status: CONTENT_REFUSED })
      return
    }
    let queue = this.queues.get(session)
    if (!queue) {
      queue = { waiting: [], urgent: [], running: 0 }
      this.queues.set(session, queue)
    }
    if (queue.waiting.length + queue.urgent.length >= MAX_QUEUED) {
      session.sendContentEnd({ id: request.id, status: CONTENT_BUSY })
      return
    }
    if (urgent && !('sums' in request)) queue.urgent.push(request)
    else queue.waiting.push(request)
    this.pump(session, queue)
  }

  /** The session ended: what it asked for is dropped. */
  onSessionGone(session: PeerSession): void {
    const queue = this.queues.get(session)
    if (queue) queue.waiting.length = queue.urgent.length = 0
    this.queues.delete(session)
  }

  private pump(session: PeerSession, queue: PeerQueue): void {
    for (;;) {
      const request =
        queue.urgent.length > 0 && queue.running < PARALLEL_PER_PEER + URGENT_EXTRA
          ? queue.urgent.shift()
          : queue.waiting.length > 0 && queue.running < PARALLEL_PER_PEER
            ? queue.waiting.shift()
            : undefined
      if (!request) return
      queue.running++
      this.serve(session, request)
        .catch((err: unknown) => {
          this.deps.log.debug({ err, path: request.path }, 'content request failed')
          session.sendContentEnd({ id: request.id, status: CONTENT_NOT_HERE })
        })
        .finally(() => {
          queue.running--
          if (session.closed) this.queues.delete(session)
          else if (!this.closed) this.pump(session, queue)
        })
    }
  }

  private async serve(session: PeerSession, request: Job): Promise<void> {
    const { id, path } = request
    if (findPathProblem(path) !== null) {
      session.sendContentEnd({ id, status: CONTENT_NOT_HERE })
      return
    }
    const file = await this.deps.localFile(path, request.hash.toString('hex'))
    if ('sums' in request) {
      await this.serveSums(session, request, file)
      return
    }
    if (!file || request.offset >= file.size) {
      session.sendContentEnd({ id, status: CONTENT_NOT_HERE })
      return
    }
    const end = Math.min(file.size, request.offset + request.length)
    if (end - request.offset <= CHUNK_BYTES) {
      this.serveSmall(session, request, file, end)
      return
    }
    const handle = await openServed(session, id, file.abs)
    if (!handle) return
    try {
      let at = request.offset
      while (at < end) {
        if (session.closed || this.closed) return
        const want = Math.min(CHUNK_BYTES, end - at)
        const buf = Buffer.allocUnsafe(want)
        const { bytesRead } = await handle.read(buf, 0, want, at)
        // shorter than recorded: the file changed under us; the peer drops what it got
        if (bytesRead === 0) break
        at += bytesRead
        if (!session.sendContentData({ id, data: bytesRead === want ? buf : buf.subarray(0, bytesRead) })) await session.whenDrained()
      }
      const unchanged = stillRecorded(await handle.stat(), file)
      this.served.requests++
      this.served.bytes += at - request.offset
      session.sendContentEnd({ id, status: at === end && unchanged ? CONTENT_DONE : CONTENT_NOT_HERE })
    } finally {
      await handle.close()
    }
  }

  /**
   * The sha256 of each block of the file, in order, SUM_BYTES each; "not here" when the file
   * is not the version asked about, or changed while it was read.
   */
  private async serveSums(session: PeerSession, request: SumsRequest, file: ServableFile | null): Promise<void> {
    const { id } = request
    if (!file || file.size === 0 || !sumsFit(file.size, request.blockSize)) {
      session.sendContentEnd({ id, status: CONTENT_NOT_HERE })
      return
    }
    const handle = await openServed(session, id, file.abs)
    if (!handle) return
    try {
      let pending = Buffer.allocUnsafe(SUMS_MESSAGE_BYTES)
      let filled = 0
      const flush = async (): Promise<void> => {
        if (filled === 0) return
        const data = pending.subarray(0, filled)
        pending = Buffer.allocUnsafe(SUMS_MESSAGE_BYTES)
        filled = 0
        if (!session.sendContentData({ id, data })) await session.whenDrained()
      }
      const read = async (buf: Buffer, length: number, position: number) => (await handle.read(buf, 0, length, position)).bytesRead
      const bytes = await sumBlocks(read, file.size, request.blockSize, async (sum) => {
        if (session.closed || this.closed) throw new Error('the session ended')
        sum.copy(pending, filled)
        filled += SUM_BYTES
        if (filled === pending.length) await flush()
      })
      await flush()
      const unchanged = bytes === file.size && stillRecorded(await handle.stat(), file)
      this.served.requests++
      session.sendContentEnd({ id, status: unchanged ? CONTENT_DONE : CONTENT_NOT_HERE })
    } finally {
      await handle.close()
    }
  }

  /**
   * One chunk (a small file, or the tail of a large one): read with synchronous calls, as
   * they take a few µs from the page cache where each promise hop cost more than the read
   * (a fresh peer asks for thousands of small files).
   */
  private serveSmall(session: PeerSession, request: ContentRequest, file: ServableFile, end: number): void {
    const { id } = request
    let fd: number
    try {
      // the index said a regular file is there; never follow a link put there since
      fd = openSync(file.abs, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch {
      session.sendContentEnd({ id, status: CONTENT_NOT_HERE })
      return
    }
    let buf: Buffer
    let unchanged: boolean
    try {
      buf = Buffer.allocUnsafe(end - request.offset)
      const bytesRead = readSync(fd, buf, 0, buf.length, request.offset)
      unchanged = bytesRead === buf.length && stillRecorded(fstatSync(fd), file)
    } finally {
      closeSync(fd)
    }
    if (!unchanged) {
      session.sendContentEnd({ id, status: CONTENT_NOT_HERE })
      return
    }
    session.sendContentData({ id, data: buf })
    this.served.requests++
    this.served.bytes += buf.length
    session.sendContentEnd({ id, status: CONTENT_DONE })
  }

  close(): void {
    this.closed = true
    this.queues.clear()
  }
}

/** Written to while we read it? Then what we read may mix two versions: it is not vouched for. */
/** The file to answer request `id` from, or null after answering "not here" (it is gone, or a link now). */
async function openServed(session: PeerSession, id: number, abs: string): Promise<FileHandle | null> {
  try {
    // the index said a regular file is there; never follow a link put there since
    return await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch {
    session.sendContentEnd({ id, status: CONTENT_NOT_HERE })
    return null
  }
}

function stillRecorded(st: Stats, file: ServableFile): boolean {
  return st.size === file.size && st.mtimeMs === file.mtimeMs && st.ino === file.ino
}
