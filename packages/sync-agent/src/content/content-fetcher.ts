import { createHash, type Hash } from 'node:crypto'
import { constants } from 'node:fs'
import { open as openFile, type FileHandle } from 'node:fs/promises'
import { isSyncError, SyncError } from '@sync-agent/shared'
import type { Logger } from '../log.js'
import type { PeerSession } from '../peers/peer-session.js'
import { StallTimer } from '../peers/stall-timer.js'
import { supersedableChunks, unlessSuperseded, type Supersedable } from '../supersede-signal.js'
import {
  CONTENT_BUSY, CONTENT_DONE, CONTENT_NOT_HERE, CONTENT_REFUSED, FEATURE_SUMS, MAX_CONTENT_WINDOW, SUM_BYTES, type ContentData, type ContentEnd
} from '../protocol.js'
import { blockCount, blockSizeFor, sumsFit, sumsOfFile } from './block-sums.js'
import { planDelta, type DeltaPlan } from './delta-plan.js'

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
/**
 * a new version at least this large, replacing one here at least this large, is fetched as
 * the blocks that differ (see openDelta); smaller files cost less whole than a round trip
 * for their sums
 */
export const DELTA_MIN_BYTES = 1024 * 1024
/** the old file here is read in pieces of this size when blocks are copied from it */
const COPY_BYTES = 1024 * 1024

/** logged for each file fetched as the blocks that differ (the fault suite counts them) */
export const DELTA_FETCHED = 'fetched a changed file as the blocks that differ from the version here'

/** The version of a file this node has, which a delta fetch copies unchanged blocks from. */
export interface LocalBase {
  /** absolute path of the file here */
  abs: string
  size: number
  /** sha256 hex, as recorded */
  hash: string | null
}

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
  /** files fetched as the blocks that differ from the version here */
  deltaFiles: number
  /** bytes of those files copied from the version here instead of fetched */
  reusedBytes: number
  /** delta fetches whose result did not match the version (fetched whole next time) */
  deltaFailures: number
}

export class ContentFetcher {
  private nextId = 1
  private readonly windows = new Map<number, Window>()
  /** `deviceId:hash:path` → until when that peer is not asked for that content at that path */
  private readonly misses = new Map<string, number>()
  /** sessions not asked again: they refused, stalled, overflowed or kept sending other bytes */
  private readonly unusable = new WeakSet<PeerSession>()
  private readonly mismatchesOf = new WeakMap<PeerSession, number>()
  /** `hash:path` of versions whose delta fetch failed: fetched whole from then on */
  private readonly deltaFailed = new Set<string>()
  readonly counters: FetchCounters = { notFound: 0, mismatches: 0, deltaFiles: 0, reusedBytes: 0, deltaFailures: 0 }

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
   * of what they queued for us. `signal`: a newer entry for the path ends the wait for a
   * peer's first answer with E_SUPERSEDED (a peer gone without a word is otherwise waited for
   * its whole response timeout, and the next one after it).
   */
  async open(version: FetchableVersion, urgent = false, base: LocalBase | null = null, signal?: Supersedable): Promise<AsyncIterable<Uint8Array> | Uint8Array[] | null> {
    if (!version.hash || version.size <= 0) return null
    const hash = Buffer.from(version.hash, 'hex')
    if (base && this.deltaWorthIt(version, base)) {
      const delta = await this.openDelta(version, hash, base, urgent, signal)
      if (delta) return delta
    }
    const candidates = this.candidates(version)
    // what each peer asked answered, for the log when none served the file
    const answers: Array<{ peer: string | undefined; status: string; error?: string }> = []
    for (const session of candidates.slice(0, MAX_PEERS_ASKED)) {
      const first = this.request(session, version.path, hash, 0, Math.min(WINDOW_BYTES, version.size), urgent)
      // a newer entry ends the wait: the window is dropped (a late answer is ignored)
      await unlessSuperseded(first.answered(), signal, version.path).catch((err: unknown) => {
        this.forget(first)
        throw err
      })
      if (first.chunks.length > 0) {
        const stream = this.read(session, version, hash, first, urgent)
        if (version.size > BUFFERED_BYTES) return stream
        const parts: Uint8Array[] = []
        try {
          // a newer entry ends the wait for each next window too, not only for the first
          for await (const chunk of supersedableChunks(stream, signal, version.path)) parts.push(chunk)
          return parts
        } catch (err) {
          if (isSyncError(err, 'E_SUPERSEDED')) throw err
          // logged and remembered by read(): try the next peer
          answers.push({ peer: session.deviceId?.slice(0, 7), status: statusName(first.status), error: (err as Error).message })
          continue
        }
      }
      answers.push({ peer: session.deviceId?.slice(0, 7), status: statusName(first.status), error: first.error?.message })
      this.forget(first)
      if (first.status === CONTENT_REFUSED || first.error) this.unusable.add(session)
      // busy: its queue is full now, it may well have the content (not remembered)
      else if (first.status !== CONTENT_BUSY) this.miss(session, version)
    }
    this.counters.notFound++
    if (this.deps.log.isLevelEnabled('debug')) {
      // peers left out: not usable (refused, failed), or said "not here" for this version lately
      this.deps.log.debug({ path: version.path, sources: this.deps.sources().length, candidates: candidates.length, answers }, 'no peer served the file from its folder')
    }
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
    return this.openWindow(session, offset, Math.min(length, MAX_CONTENT_WINDOW), path, (id, w) => session.sendContentRequest({ id, path, hash, offset, length: w.length }, urgent))
  }

  /**
   * A window for an answer of `length` bytes under a new id, sent with `send` (a content or a
   * sums request), failing after the response timeout while the connection carries nothing.
   */
  private openWindow(session: PeerSession, offset: number, length: number, about: string, send: (id: number, w: Window) => void): Window {
    const id = this.nextId++
    const timeoutMs = this.deps.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS
    const peer = session.deviceId?.slice(0, 7) ?? session.address
    const w = new Window(id, session, offset, length, timeoutMs, (timedOut) =>
      timedOut.fail(new SyncError('E_TIMEOUT', `peer ${peer} did not answer for ${timeoutMs / 1000} s about ${about}`))
    )
    this.windows.set(id, w)
    // a closed session sends nothing, and nothing would ever answer (it was picked before a wait)
    if (session.closed) w.fail(new SyncError('E_PEER_PROTOCOL', `peer ${peer} went away`))
    else send(id, w)
    return w
  }

  private deltaWorthIt(version: FetchableVersion, base: LocalBase): boolean {
    return (
      version.size >= DELTA_MIN_BYTES &&
      base.size >= DELTA_MIN_BYTES &&
      base.hash !== null &&
      base.hash !== version.hash &&
      sumsFit(version.size, blockSizeFor(version.size)) &&
      !this.deltaFailed.has(deltaKey(version))
    )
  }

  /**
   * A new version of a file this node has an older version of: the peer sends the sums of
   * the new version's blocks while this node sums its own file's blocks (block-sums.ts), and
   * the new file is put together from the blocks found here and the rest fetched
   * (delta-plan.ts). The whole file's sha256 is checked at the end as for any fetch; when it
   * does not match (the file here changed meanwhile, or the peer's sums lied) the version is
   * fetched whole at the next attempt. Null when no peer takes sums requests, the peer does
   * not have the version, or no block of it is here: the caller then fetches it whole.
   */
  private async openDelta(version: FetchableVersion, hash: Buffer, base: LocalBase, urgent: boolean, signal?: Supersedable): Promise<AsyncIterable<Uint8Array> | null> {
    const session = this.candidates(version).find((s) => (s.features & FEATURE_SUMS) !== 0)
    if (!session) return null
    const blockSize = blockSizeFor(version.size)
    const sumsWindow = this.requestSums(session, version.path, hash, blockSize, blockCount(version.size, blockSize) * SUM_BYTES)
    // summed beside the peer's answer; stopped when that answer is no use
    const stop = { requested: false }
    const here = sumsOfFile(base.abs, blockSize, stop).catch(() => null)
    let plan: DeltaPlan | null = null
    try {
      const parts: Buffer[] = []
      // a newer entry for the path ends the wait for the sums (a peer gone without a word is
      // otherwise waited for its whole response timeout)
      const next = () => unlessSuperseded(this.nextOf(sumsWindow), signal, version.path)
      for (let chunk = await next(); chunk !== null; chunk = await next()) parts.push(chunk)
      const answered = sumsWindow.status === CONTENT_DONE && sumsWindow.received === sumsWindow.length
      if (sumsWindow.status === CONTENT_NOT_HERE) this.miss(session, version)
      else if (!answered) this.unusable.add(session)
      stop.requested = !answered
      const local = await here
      if (answered && local) plan = planDelta(Buffer.concat(parts), version.size, blockSize, local)
    } catch (err) {
      stop.requested = true
      if (isSyncError(err, 'E_SUPERSEDED')) throw err
      // logged and remembered by nextOf (the session is not asked again)
    } finally {
      this.forget(sumsWindow)
    }
    if (!plan || plan.reusedBytes === 0) return null
    return this.readDelta(session, version, hash, plan, base.abs, urgent)
  }

  private requestSums(session: PeerSession, path: string, hash: Buffer, blockSize: number, length: number): Window {
    return this.openWindow(session, 0, length, `the blocks of ${path}`, (id) => session.sendSumsRequest({ id, path, hash, blockSize }))
  }

  /**
   * The new version's bytes in order: runs copied from the old file here, and runs fetched
   * from the peer in windows (WINDOWS_AHEAD asked for ahead, also while copying).
   */
  private async *readDelta(session: PeerSession, version: FetchableVersion, hash: Buffer, plan: DeltaPlan, abs: string, urgent: boolean): AsyncGenerator<Uint8Array> {
    // the peer's runs as windows, in order
    const wanted: Array<{ at: number; length: number }> = []
    for (const run of plan.runs) {
      if (run.source !== 'peer') continue
      for (let at = run.at; at < run.at + run.length; at += WINDOW_BYTES) wanted.push({ at, length: Math.min(WINDOW_BYTES, run.at + run.length - at) })
    }
    const asked: Window[] = []
    let next = 0
    const askAhead = () => {
      while (asked.length <= WINDOWS_AHEAD && next < wanted.length) {
        const { at, length } = wanted[next++] as { at: number; length: number }
        asked.push(this.request(session, version.path, hash, at, length, urgent))
      }
    }
    const got: Received = { digest: createHash('sha256'), bytes: 0 }
    let old: FileHandle | null = null
    try {
      old = await openFile(abs, constants.O_RDONLY | constants.O_NOFOLLOW)
      for (const run of plan.runs) {
        askAhead()
        if (run.source === 'here') {
          for (let at = run.at; at < run.at + run.length; ) {
            const piece = Buffer.allocUnsafe(Math.min(COPY_BYTES, run.at + run.length - at))
            const { bytesRead } = await old.read(piece, 0, piece.length, at)
            if (bytesRead !== piece.length) throw new SyncError('E_CONTENT_TRANSFER', `${version.path} here changed while its blocks were copied`)
            at += bytesRead
            got.digest.update(piece)
            got.bytes += piece.length
            yield piece
          }
          continue
        }
        for (let fetched = 0; fetched < run.length; ) {
          const current = asked[0] as Window
          yield* this.drainWindow(current, version, got)
          asked.shift()
          askAhead()
          fetched += current.length
        }
      }
      if (got.bytes !== version.size || got.digest.digest('hex') !== version.hash) {
        // the file here changed while it was read, or the peer's sums were not its file's:
        // which one cannot be told, so the peer is not blamed; the next attempt fetches it whole
        this.failDelta(version)
        throw new SyncError('E_CONTENT_TRANSFER', `${version.path} put together from the blocks here and the peer's does not match its entry; it will be fetched whole`, { details: { path: version.path } })
      }
      this.counters.deltaFiles++
      this.counters.reusedBytes += plan.reusedBytes
      this.deps.log.info({ path: version.path, size: version.size, fetched: plan.fetchBytes, reused: plan.reusedBytes, peer: session.deviceId?.slice(0, 7) }, DELTA_FETCHED)
    } catch (err) {
      if (!(err instanceof SyncError)) this.failDelta(version)
      throw err
    } finally {
      for (const w of asked) this.forget(w)
      await old?.close().catch(() => undefined)
    }
  }

  private failDelta(version: FetchableVersion): void {
    this.counters.deltaFailures++
    if (this.deltaFailed.size > 10_000) this.deltaFailed.clear()
    this.deltaFailed.add(deltaKey(version))
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

  /**
   * A window's bytes, counted into `got`; then the window is done with. Fails when the peer
   * ended it short: the file changed there while we read it (or it stopped serving it).
   */
  private async *drainWindow(w: Window, version: FetchableVersion, got: Received): AsyncGenerator<Uint8Array> {
    for (let chunk = await this.nextOf(w); chunk !== null; chunk = await this.nextOf(w)) {
      got.digest.update(chunk)
      got.bytes += chunk.length
      yield chunk
    }
    if (w.status !== CONTENT_DONE || w.received !== w.length) {
      this.miss(w.session, version)
      throw new SyncError('E_CONTENT_TRANSFER', `peer ${w.session.deviceId?.slice(0, 7)} stopped sending ${version.path} after ${got.bytes} of ${version.size} bytes`)
    }
    this.forget(w)
  }

  private async *read(session: PeerSession, version: FetchableVersion, hash: Buffer, first: Window, urgent: boolean): AsyncGenerator<Uint8Array> {
    const got: Received = { digest: createHash('sha256'), bytes: 0 }
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
        yield* this.drainWindow(windows[0] as Window, version, got)
        windows.shift()
      }
      if (got.bytes !== version.size || got.digest.digest('hex') !== version.hash) {
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

/** what a fetch received so far: the running sha256 and the byte count */
interface Received {
  digest: Hash
  bytes: number
}

/** a content answer's status, named for the log ('none': the window failed or was not answered) */
function statusName(status: number | null): string {
  if (status === CONTENT_DONE) return 'done'
  if (status === CONTENT_NOT_HERE) return 'not here'
  if (status === CONTENT_BUSY) return 'busy'
  if (status === CONTENT_REFUSED) return 'refused'
  return status === null ? 'none' : `unknown ${status}`
}

function deltaKey(version: FetchableVersion): string {
  return `${version.hash}:${version.path}`
}

function missKey(deviceId: string, version: FetchableVersion): string {
  return `${deviceId}:${version.hash}:${version.path}`
}
