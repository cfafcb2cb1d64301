import { createHash } from 'node:crypto'
import { SyncError } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import type { PeerSession } from '../peers/peer-session.js'
import { StallTimer } from '../peers/stall-timer.js'
import { CONTENT_BUSY, CONTENT_DONE, CONTENT_REFUSED, MAX_CONTENT_WINDOW, type ContentData, type ContentEnd } from '../protocol.js'

/**
 * Fetches a version's bytes from a connected peer's folder (content-server.ts) instead of its
 * Hypercore blocks: the version's author first (it wrote the file), then any other peer that
 * serves contents. What arrives is checked against the size and sha256 the signed entry
 * names before the last byte is handed on, so a peer can make a fetch fail but never make a
 * wrong byte land (the writer drops its temp file). A peer that did not have the content at
 * that path is not asked for it there again for MISS_TTL_MS; one that sent other bytes, stalled or refused is not
 * asked for anything again on that connection (a hostile peer cannot make us fetch every file
 * twice, or wait on it for each). `open` returns null when no peer is left and the caller
 * reads the blocks from Hypercore.
 *
 * A large file is asked for in windows of WINDOW_BYTES, WINDOWS_AHEAD ahead of the one being
 * read, so at most that many more windows of it are in memory whatever the peer sends (more
 * than asked for is an error). With one ahead a 512 MiB file came at 69 MiB/s, the receiver
 * idle half the time waiting for the next window.
 */
export const WINDOW_BYTES = 2 * 1024 * 1024
export const WINDOWS_AHEAD = 3
/** a window with no message for this long, while its connection carried next to nothing, fails (the peer stalled: stall-timer.ts) */
export const RESPONSE_TIMEOUT_MS = 15_000
/**
 * How long a peer that answered "not here" for a path's content is not asked for it there
 * again. A peer serves by path, so a miss is for that path: keyed by content alone, a fresh
 * node that asked for a file's old version at its old path (a directory since renamed) took
 * the peers for not having that content at its new path either, and read it from Hypercore,
 * where nobody held the blocks (the author's drive was wiped): 30 s timeouts for 10 minutes
 * (fault suite, seed 28601). Short: a peer that did not have it yet (syncing itself) is asked
 * again at the next retry.
 */
export const MISS_TTL_MS = 30_000
const MAX_PEERS_ASKED = 2
/**
 * a peer whose bytes did not match this many times is not asked again on that connection (a
 * good peer's file can change between its check and its read, rarely; a forging one is cut
 * off after wasting that many transfers)
 */
export const MAX_MISMATCHES = 3
/**
 * files up to this size are received whole and checked before `open` returns them (as an
 * array: the writer places such files with synchronous calls), so a bad answer for one of
 * them falls through to the next peer or to Hypercore at once
 */
export const BUFFERED_BYTES = 256 * 1024

export interface FetchableVersion {
  path: string
  /** sha256 hex of the whole content */
  hash: string | null
  size: number
  /** version-vector key of the author (a prefix of its device id) */
  author: string
}

class Window {
  readonly chunks: Buffer[] = []
  received = 0
  status: number | null = null
  error: Error | null = null
  private waiter: (() => void) | null = null
  readonly timer: StallTimer

  constructor(
    readonly id: number,
    readonly session: PeerSession,
    readonly offset: number,
    readonly length: number,
    timeoutMs: number,
    onTimeout: (w: Window) => void
  ) {
    this.timer = new StallTimer(session, timeoutMs, () => onTimeout(this))
  }

  get settled(): boolean {
    return this.status !== null || this.error !== null
  }

  push(data: Buffer): void {
    if (this.settled) return
    this.received += data.length
    if (this.received > this.length) {
      this.fail(new SyncError('E_PEER_PROTOCOL', `the peer sent more bytes than asked for (${this.received} of ${this.length})`))
      return
    }
    this.timer.refresh()
    this.chunks.push(data)
    this.notify()
  }

  end(status: number): void {
    if (this.settled) return
    this.status = status
    this.timer.clear()
    this.notify()
  }

  fail(err: Error): void {
    if (this.settled) return
    this.error = err
    this.timer.clear()
    this.notify()
  }

  /** Resolves once something arrived (bytes, the end, or a failure). */
  async answered(): Promise<void> {
    while (this.chunks.length === 0 && !this.settled) await new Promise<void>((resolve) => (this.waiter = resolve))
  }

  /** The next chunk, or null once the window ended; throws if it failed. */
  async next(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.chunks.shift()
      if (chunk) return chunk
      if (this.error) throw this.error
      if (this.status !== null) return null
      await new Promise<void>((resolve) => (this.waiter = resolve))
    }
  }

  private notify(): void {
    const w = this.waiter
    this.waiter = null
    w?.()
  }
}

/** what went wrong, for tests and logs (bytes fetched are counted by source in the metrics) */
export interface FetchCounters {
  /** asked, and no peer had it (read from Hypercore instead) */
  notFound: number
  /** a peer sent bytes that were not the version's */
  mismatches: number
}

export class ContentFetcher {
  private nextId = 1
  private readonly windows = new Map<number, Window>()
  /** `deviceId:hash:path` → until when that peer is not asked for that content at that path */
  private readonly misses = new Map<string, number>()
  /** sessions not asked again: they refused, stalled, overflowed or kept sending other bytes */
  private readonly unusable = new WeakSet<PeerSession>()
  private readonly mismatchesOf = new WeakMap<PeerSession, number>()
  readonly counters: FetchCounters = { notFound: 0, mismatches: 0 }

  constructor(
    private readonly deps: {
      /** connected peers that serve contents */
      sources(): PeerSession[]
      log: Logger
      now?: () => number
      /** RESPONSE_TIMEOUT_MS unless given */
      responseTimeoutMs?: number
    }
  ) {}

  /** Is a peer that serves contents connected? */
  available(): boolean {
    return this.deps.sources().some((s) => !this.unusable.has(s))
  }

  /**
   * The version's bytes from a peer, or null when no connected peer has them. Resolves once
   * a peer started answering; the bytes then stream (and are checked) as they are read.
   * `urgent`: someone asks for the file now; peers that take urgent requests serve it ahead
   * of what they queued for us.
   */
  async open(version: FetchableVersion, urgent = false): Promise<AsyncIterable<Uint8Array> | Uint8Array[] | null> {
    if (!version.hash || version.size <= 0) return null
    const hash = Buffer.from(version.hash, 'hex')
    for (const session of this.candidates(version).slice(0, MAX_PEERS_ASKED)) {
      const first = this.request(session, version.path, hash, 0, Math.min(WINDOW_BYTES, version.size), urgent)
      await first.answered()
      if (first.chunks.length > 0) {
        const stream = this.read(session, version, hash, first, urgent)
        if (version.size > BUFFERED_BYTES) return stream
        const parts: Uint8Array[] = []
        try {
          for await (const chunk of stream) parts.push(chunk)
          return parts
        } catch {
          // logged and remembered by read(): try the next peer
          continue
        }
      }
      this.forget(first)
      if (first.status === CONTENT_REFUSED || first.error) this.unusable.add(session)
      // busy: its queue is full now, it may well have the content (not remembered)
      else if (first.status !== CONTENT_BUSY) this.miss(session, version)
    }
    this.counters.notFound++
    return null
  }

  onData(session: PeerSession, data: ContentData): void {
    const w = this.windows.get(data.id)
    // a late answer to a window we gave up on, or to another session's id: ignored
    if (w && w.session === session) w.push(data.data)
  }

  onEnd(session: PeerSession, end: ContentEnd): void {
    const w = this.windows.get(end.id)
    if (w && w.session === session) w.end(end.status)
  }

  /** The session closed: its windows fail (the reads retry elsewhere). */
  onSessionGone(session: PeerSession): void {
    for (const w of this.windows.values()) {
      if (w.session === session) w.fail(new SyncError('E_PEER_PROTOCOL', `peer ${session.deviceId?.slice(0, 7) ?? session.address} went away during a transfer`))
    }
  }

  close(): void {
    for (const w of this.windows.values()) w.fail(new Error('the agent is stopping'))
    this.windows.clear()
  }

  private candidates(version: FetchableVersion): PeerSession[] {
    const now = this.now()
    const usable = this.deps.sources().filter((s) => {
      if (s.closed || this.unusable.has(s) || !s.deviceId) return false
      const until = this.misses.get(missKey(s.deviceId, version))
      return until === undefined || until <= now
    })
    // the author has it on disk unless it changed it since
    return usable.sort((a, b) => Number(b.deviceId?.startsWith(version.author)) - Number(a.deviceId?.startsWith(version.author)))
  }

  private request(session: PeerSession, path: string, hash: Buffer, offset: number, length: number, urgent = false): Window {
    const id = this.nextId++
    const timeoutMs = this.deps.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS
    const w = new Window(id, session, offset, Math.min(length, MAX_CONTENT_WINDOW), timeoutMs, (timedOut) =>
      timedOut.fail(new SyncError('E_TIMEOUT', `peer ${session.deviceId?.slice(0, 7) ?? session.address} did not answer for ${timeoutMs / 1000} s about ${path}`))
    )
    this.windows.set(id, w)
    // a closed session sends nothing, and nothing would ever answer (it was picked before a wait)
    if (session.closed) w.fail(new SyncError('E_PEER_PROTOCOL', `peer ${session.deviceId?.slice(0, 7) ?? session.address} went away`))
    else session.sendContentRequest({ id, path, hash, offset, length: w.length }, urgent)
    return w
  }

  private forget(w: Window): void {
    w.timer.clear()
    this.windows.delete(w.id)
  }

  private miss(session: PeerSession, version: FetchableVersion): void {
    if (this.misses.size > 10_000) this.misses.clear()
    this.misses.set(missKey(session.deviceId as string, version), this.now() + MISS_TTL_MS)
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now()
  }

  /** A window's next chunk; a window that failed (stalled, overflowed) makes its session unusable. */
  private async nextOf(w: Window): Promise<Buffer | null> {
    try {
      return await w.next()
    } catch (err) {
      this.unusable.add(w.session)
      throw new SyncError('E_CONTENT_TRANSFER', (err as Error).message, { cause: err })
    }
  }

  private async *read(session: PeerSession, version: FetchableVersion, hash: Buffer, first: Window, urgent: boolean): AsyncGenerator<Uint8Array> {
    const digest = createHash('sha256')
    let total = 0
    // windows asked for and not yet read, in order: the first is being read
    const windows: Window[] = [first]
    let asked = first.offset + first.length
    try {
      while (windows.length > 0) {
        while (windows.length <= WINDOWS_AHEAD && asked < version.size) {
          const next = this.request(session, version.path, hash, asked, Math.min(WINDOW_BYTES, version.size - asked), urgent)
          windows.push(next)
          asked += next.length
        }
        const current = windows[0] as Window
        for (let chunk = await this.nextOf(current); chunk !== null; chunk = await this.nextOf(current)) {
          digest.update(chunk)
          total += chunk.length
          yield chunk
        }
        if (current.status !== CONTENT_DONE || current.received !== current.length) {
          // the file changed on the peer while we read it (or it stopped serving it)
          this.miss(session, version)
          throw new SyncError('E_CONTENT_TRANSFER', `peer ${session.deviceId?.slice(0, 7)} stopped sending ${version.path} after ${total} of ${version.size} bytes`)
        }
        this.forget(current)
        windows.shift()
      }
      if (total !== version.size || digest.digest('hex') !== version.hash) {
        this.miss(session, version)
        const strikes = (this.mismatchesOf.get(session) ?? 0) + 1
        this.mismatchesOf.set(session, strikes)
        if (strikes >= MAX_MISMATCHES) this.unusable.add(session)
        this.counters.mismatches++
        this.deps.log.warn({ code: 'E_PEER_PROTOCOL', path: version.path, peer: session.deviceId?.slice(0, 7) }, 'a peer sent content that does not match the version\'s hash; reading it from another source')
        throw new SyncError('E_CONTENT_TRANSFER', `content of ${version.path} from peer ${session.deviceId?.slice(0, 7)} does not match its entry`, { details: { path: version.path } })
      }
    } finally {
      for (const w of windows) this.forget(w)
    }
  }
}

function missKey(deviceId: string, version: FetchableVersion): string {
  return `${deviceId}:${version.hash}:${version.path}`
}
