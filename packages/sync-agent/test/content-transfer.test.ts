import { createHash, randomBytes } from 'node:crypto'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { deriveFolderKeys, newSecret, parseSecret } from '@sync-agent/shared'
import { pino } from 'pino'
import { createLogger } from '../src/log.js'
import { PeerSession, type SessionHooks } from '../src/peers/peer-session.js'
import { ContentFetcher, DELTA_MIN_BYTES, MAX_MISMATCHES, MISS_TTL_MS, WINDOW_BYTES, type LocalBase } from '../src/content/content-fetcher.js'
import { ContentServer, MAX_QUEUED, type ServableFile } from '../src/content/content-server.js'
import { CONTENT_DONE, CONTENT_NOT_HERE, FEATURE_CONTENT, FEATURE_SUMS, FEATURE_URGENT, type ContentRequest, type SumsRequest } from '../src/protocol.js'
import { sessionPair } from './helpers/session-pair.js'
import { useTempDirs } from './helpers/temp-dirs.js'
import { until } from './helpers/until.js'
import { SupersedeSignal } from '../src/supersede-signal.js'

/**
 * Content transfer between two real sessions (TCP on loopback + Noise + our channel): the
 * fetcher gets the bytes a version names from the serving peer's folder, and whatever that
 * peer does wrong (other bytes, more bytes, silence, a changed file, going away) never
 * lets a wrong byte through: the read fails or `open` returns null (Hypercore then).
 */
const log = createLogger('silent')
const keys = deriveFolderKeys(parseSecret(newSecret()))
const tempDir = useTempDirs('sa-content-')

interface Pair {
  fetcher: ContentFetcher
  server: ContentServer
  client: PeerSession
  served: PeerSession
  clock: { now: number }
}

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}

async function collectOpened(opened: AsyncIterable<Uint8Array> | Uint8Array[] | null): Promise<Buffer | null> {
  return opened === null ? null : collect(opened)
}

async function collect(it: AsyncIterable<Uint8Array> | Uint8Array[]): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of it) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

/**
 * `files`: what the serving side holds (path → bytes); `onRequest`: replaces the real
 * server (a hostile one); `mayRead`: whether the server lets the client read.
 */
async function connectPair(opts: {
  files?: Record<string, Buffer>
  mayRead?: boolean
  onRequest?: (session: PeerSession, request: ContentRequest) => void
  /** awaited by every lookup of a local file (holds the server's running requests) */
  gate?: Promise<void>
  /** the server's send limit, KiB/s */
  sendKiBps?: number
  /** paths whose lookups do not wait for `gate` */
  ungated?: string[]
  /** 300 ms unless given (the tests of silent peers wait that long) */
  responseTimeoutMs?: number
  /** FEATURE_* the serving side announces (FEATURE_CONTENT | FEATURE_URGENT | FEATURE_SUMS unless given) */
  servedFeatures?: number
  /** replaces the real server's answer to sums requests (a hostile one) */
  onSumsRequest?: (session: PeerSession, request: SumsRequest) => void
} = {}): Promise<Pair> {
  const dir = tempDir()
  const held = new Map<string, ServableFile & { hash: string }>()
  for (const [path, bytes] of Object.entries(opts.files ?? {})) {
    const abs = join(dir, path.replaceAll('/', '_'))
    writeFileSync(abs, bytes)
    const st = statSync(abs)
    held.set(path, { abs, size: bytes.length, hash: sha(bytes), mtimeMs: st.mtimeMs, ino: st.ino })
  }
  const server = new ContentServer({
    localFile: async (path, hashHex) => {
      if (!opts.ungated?.includes(path)) await opts.gate
      const f = held.get(path)
      return f && f.hash === hashHex ? f : null
    },
    mayRead: () => opts.mayRead ?? true,
    log
  })
  const clock = { now: Date.now() }
  let client!: PeerSession
  const fetcher = new ContentFetcher({ sources: () => (client.features & FEATURE_CONTENT ? [client] : []), log, now: () => clock.now, responseTimeoutMs: opts.responseTimeoutMs ?? 300 })
  const pair = await sessionPair({
    keys,
    log,
    client: { onClose: (s) => fetcher.onSessionGone(s), onContentData: (s, d) => fetcher.onData(s, d), onContentEnd: (s, e) => fetcher.onEnd(s, e) },
    served: {
      onClose: (s) => server.onSessionGone(s),
      onContentRequest: (s, r, urgent) => (opts.onRequest ? opts.onRequest(s, r) : server.onRequest(s, r, urgent)),
      onSumsRequest: (s, r) => (opts.onSumsRequest ? opts.onSumsRequest(s, r) : server.onSumsRequest(s, r))
    },
    servedFeatures: opts.servedFeatures ?? FEATURE_CONTENT | FEATURE_URGENT | FEATURE_SUMS,
    ...(opts.sendKiBps ? { servedSendKiBps: opts.sendKiBps } : {})
  })
  client = pair.client
  const served = pair.served
  cleanups.push(() => {
    pair.close()
    server.close()
    fetcher.close()
  })
  return { fetcher, server, client, served, clock }
}

/** as a server would send them: in chunks a data message may carry */
function sendBytes(s: PeerSession, id: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; at += 256 * 1024) s.sendContentData({ id, data: bytes.subarray(at, at + 256 * 1024) })
}

/** A peer that is asked (its requests are recorded) and never answers by itself, and a fetcher whose only source it is. */
function silentPeer(logger = log): { asked: ContentRequest[]; sums: SumsRequest[]; silent: PeerSession; fetcher: ContentFetcher } {
  const asked: ContentRequest[] = []
  const sums: SumsRequest[] = []
  const silent = {
    closed: false,
    deviceId: 'SILENT0',
    address: 'a',
    features: FEATURE_CONTENT | FEATURE_SUMS,
    sendContentRequest: (r: ContentRequest) => void asked.push(r),
    sendSumsRequest: (r: SumsRequest) => void sums.push(r)
  } as unknown as PeerSession
  const fetcher = new ContentFetcher({ sources: () => [silent], log: logger, responseTimeoutMs: 60_000 })
  return { asked, sums, silent, fetcher }
}

function versionOf(path: string, bytes: Buffer, author = 'SOMEONE'): { path: string; hash: string; size: number; author: string } {
  return { path, hash: sha(bytes), size: bytes.length, author }
}

describe('content transfer from a peer\'s folder', () => {
  it('waits for answers queued behind others on a rate-limited link instead of timing them out', async () => {
    // the server sends at most 1 MiB/s; 2 MiB asked for at once: the last answers start
    // ~1.5 s after their request, five times the fetcher's 300 ms timeout here, while the
    // connection carries the answers before them
    const files: Record<string, Buffer> = {}
    for (let i = 0; i < 4; i++) files[`uploads/${i}.jpg`] = randomBytes(512 * 1024)
    const { fetcher } = await connectPair({ files, sendKiBps: 1024 })
    const started = performance.now()
    const got = await Promise.all(Object.entries(files).map(async ([path, bytes]) => collectOpened(await fetcher.open(versionOf(path, bytes)))))
    const seconds = (performance.now() - started) / 1000
    Object.values(files).forEach((bytes, i) => expect(got[i]?.equals(bytes)).toBe(true))
    expect(fetcher.counters).toEqual({ notFound: 0, mismatches: 0, deltaFiles: 0, reusedBytes: 0, deltaFailures: 0 })
    expect(fetcher.available()).toBe(true)
    // the limit held: 2 MiB less the bucket's 256 KiB burst at 1 MiB/s
    expect(seconds).toBeGreaterThanOrEqual(1.7)
  })

  it.each([
    ['a peer that takes urgent requests serves the file now, ahead of its queue and beside the running ones', FEATURE_CONTENT | FEATURE_URGENT, true],
    ['a peer that does not gets it as an ordinary request, served in its turn', FEATURE_CONTENT, false]
  ])('a file someone asks for now: %s', async (_name, servedFeatures, first) => {
    // the serving side holds every lookup but the urgent file's: 4 requests run, 6 wait
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const files: Record<string, Buffer> = {}
    for (let i = 0; i < 10; i++) files[`uploads/${i}.jpg`] = randomBytes(1000 + i)
    const now = randomBytes(5000)
    const { fetcher } = await connectPair({ files: { ...files, 'uploads/now.jpg': now }, gate, ungated: ['uploads/now.jpg'], responseTimeoutMs: 10_000, servedFeatures })
    // the order in which the peer started answering
    const order: string[] = []
    const fetchOne = async (path: string, bytes: Buffer, urgent = false) => {
      const opened = await fetcher.open(versionOf(path, bytes), urgent)
      order.push(path)
      return (await collectOpened(opened))?.equals(bytes)
    }
    const queued = Object.entries(files).map(([path, bytes]) => fetchOne(path, bytes))
    const urgent = fetchOne('uploads/now.jpg', now, true)
    if (first) {
      // answered while all ten still wait for the gate
      expect(await urgent).toBe(true)
      expect(order).toEqual(['uploads/now.jpg'])
      release()
    } else {
      // sent after the ten on one connection: the server took it eleventh, after the four running ones at least
      release()
      expect(await urgent).toBe(true)
    }
    expect(await Promise.all(queued)).toEqual(Object.keys(files).map(() => true))
    if (!first) expect(order.indexOf('uploads/now.jpg')).toBeGreaterThanOrEqual(4)
  })

  it('fetches small and multi-window files byte for byte, from a peer that announced it serves them', async () => {
    const small = randomBytes(3000)
    const large = randomBytes(WINDOW_BYTES * 2 + 12345)
    const { fetcher, server, client } = await connectPair({ files: { 'themes/a.php': small, 'uploads/big.jpg': large } })
    expect(client.features & FEATURE_CONTENT).toBe(FEATURE_CONTENT)
    expect(fetcher.available()).toBe(true)
    const [a, b] = await Promise.all([fetcher.open(versionOf('themes/a.php', small)), fetcher.open(versionOf('uploads/big.jpg', large))])
    // a small file comes whole and checked, as an array; a large one streams
    expect(Array.isArray(a)).toBe(true)
    expect(b).not.toBeNull()
    expect(Array.isArray(b)).toBe(false)
    expect((await collect(a as AsyncIterable<Uint8Array>)).equals(small)).toBe(true)
    expect((await collect(b as AsyncIterable<Uint8Array>)).equals(large)).toBe(true)
    expect(fetcher.counters).toEqual({ notFound: 0, mismatches: 0, deltaFiles: 0, reusedBytes: 0, deltaFailures: 0 })
    expect(server.served.bytes).toBe(small.length + large.length)
    // three windows of the large file, one of the small
    expect(server.served.requests).toBe(4)
  })

  it('returns null for content the peer does not hold (changed since), and does not ask it again for a while', async () => {
    const bytes = randomBytes(5000)
    const { fetcher, server, clock } = await connectPair({ files: { 'a.txt': bytes } })
    const other = randomBytes(5000)
    expect(await fetcher.open(versionOf('a.txt', other))).toBeNull()
    expect(await fetcher.open(versionOf('a.txt', other))).toBeNull()
    expect(fetcher.counters.notFound).toBe(2)
    // the second open asked nobody: the miss is remembered
    expect(server.served.requests).toBe(0)
    clock.now += MISS_TTL_MS + 1
    expect(await fetcher.open(versionOf('a.txt', bytes))).not.toBeNull()
  })

  it('a miss is for that path: the same content at another path (a directory renamed) is asked for there', async () => {
    const bytes = randomBytes(5000)
    // the peer holds the content at its new path only
    const { fetcher, server } = await connectPair({ files: { 'plugins/renamed/b.txt': bytes } })
    expect(await fetcher.open(versionOf('plugins/old/b.txt', bytes))).toBeNull()
    const got = await fetcher.open(versionOf('plugins/renamed/b.txt', bytes))
    expect(got).not.toBeNull()
    expect((await collect(got as Uint8Array[])).equals(bytes)).toBe(true)
    expect(server.served.requests).toBe(1)
    expect(fetcher.counters.notFound).toBe(1)
  })

  it('a peer that sends other bytes than the hash names: the read fails before its end, and that peer is not asked for it again', async () => {
    const wanted = randomBytes(WINDOW_BYTES + 100)
    const forged = Buffer.from(wanted)
    forged[forged.length - 1]! ^= 0xff
    // the serving side "has" the forged bytes under the hash of the wanted ones
    const { fetcher } = await connectPair({
      onRequest: (s, r) => {
        sendBytes(s, r.id, forged.subarray(r.offset, r.offset + r.length))
        s.sendContentEnd({ id: r.id, status: 0 })
      }
    })
    const it = await fetcher.open(versionOf('x.bin', wanted))
    expect(it).not.toBeNull()
    await expect(collect(it as AsyncIterable<Uint8Array>)).rejects.toThrow(/does not match its entry/)
    expect(fetcher.counters.mismatches).toBe(1)
    expect(await fetcher.open(versionOf('x.bin', wanted))).toBeNull()
  })

  it('small files with other bytes than their hashes name: open returns null (Hypercore next); after a few the peer is not asked at all', async () => {
    const asked: ContentRequest[] = []
    const { fetcher } = await connectPair({
      onRequest: (s, r) => {
        asked.push(r)
        sendBytes(s, r.id, randomBytes(r.length))
        s.sendContentEnd({ id: r.id, status: 0 })
      }
    })
    for (let i = 0; i < MAX_MISMATCHES + 2; i++) expect(await fetcher.open(versionOf(`f${i}.bin`, randomBytes(10_000)))).toBeNull()
    expect(fetcher.counters.mismatches).toBe(MAX_MISMATCHES)
    expect(asked.map((r) => r.path)).toEqual(Array.from({ length: MAX_MISMATCHES }, (_, i) => `f${i}.bin`))
    expect(fetcher.available()).toBe(false)
  })

  it('a file changed on the serving side while it was read is not vouched for: the fetch fails, the peer stays usable', async () => {
    const first = randomBytes(300 * 1024)
    const { fetcher, server } = await connectPair({ files: { 'a.bin': first } })
    // the serving side's check saw the recorded fingerprint, then the file changed (same size)
    const realLocal = (server as unknown as { deps: { localFile: (p: string, h: string) => Promise<ServableFile | null> } }).deps
    const original = realLocal.localFile
    realLocal.localFile = async (p, h) => {
      const f = await original(p, h)
      return f ? { ...f, mtimeMs: f.mtimeMs - 1000 } : null
    }
    const it = await fetcher.open(versionOf('a.bin', first))
    // by when the answer's end arrives: open already saw it ("not here": null), or it hands out
    // the first bytes and the read fails at the end (under load either happens); never a whole
    // file vouched for
    if (it !== null) await expect(collect(it as AsyncIterable<Uint8Array>)).rejects.toThrow(/stopped sending/)
    expect(fetcher.available()).toBe(true)
    // a small file (read in one go) the same way: not here, nothing handed on
    const small = randomBytes(5000)
    const second = await connectPair({ files: { 'b.bin': small } })
    const deps = (second.server as unknown as { deps: { localFile: (p: string, h: string) => Promise<ServableFile | null> } }).deps
    const real = deps.localFile
    deps.localFile = async (p, h) => {
      const f = await real(p, h)
      return f ? { ...f, ino: f.ino + 1 } : null
    }
    expect(await second.fetcher.open(versionOf('b.bin', small))).toBeNull()
    expect(second.fetcher.available()).toBe(true)
    expect(second.server.served.requests).toBe(0)
  })

  it('a peer that sends more bytes than asked for fails the read (memory stays bounded by the window)', async () => {
    const wanted = randomBytes(1000)
    const { fetcher } = await connectPair({
      onRequest: (s, r) => {
        s.sendContentData({ id: r.id, data: Buffer.concat([wanted, randomBytes(5000)]) })
        s.sendContentEnd({ id: r.id, status: 0 })
      }
    })
    const it = await fetcher.open(versionOf('x.bin', wanted))
    // the first answer already broke the bound: nothing is handed on
    if (it) await expect(collect(it)).rejects.toThrow(/more bytes than asked for/)
    else expect(fetcher.counters.notFound).toBe(1)
    expect(fetcher.available()).toBe(false)
  })

  it('a peer that stops in the middle of a file (it changed there) fails the read; a session that closes fails it too', async () => {
    const wanted = randomBytes(WINDOW_BYTES * 3)
    let cut: PeerSession | null = null
    const { fetcher } = await connectPair({
      onRequest: (s, r) => {
        if (r.offset === 0) {
          sendBytes(s, r.id, wanted.subarray(0, r.length))
          s.sendContentEnd({ id: r.id, status: 0 })
        } else if (r.offset === WINDOW_BYTES) {
          s.sendContentEnd({ id: r.id, status: 1 })
        }
      }
    })
    const it = await fetcher.open(versionOf('x.bin', wanted))
    await expect(collect(it as AsyncIterable<Uint8Array>)).rejects.toThrow(/stopped sending/)

    const other = randomBytes(WINDOW_BYTES * 2)
    const second = await connectPair({
      onRequest: (s, r) => {
        if (r.offset !== 0) return (cut = s) // never answers the second window: the session then closes
        sendBytes(s, r.id, other.subarray(0, r.length))
        s.sendContentEnd({ id: r.id, status: 0 })
      }
    })
    const it2 = await second.fetcher.open(versionOf('y.bin', other))
    const reading = collect(it2 as AsyncIterable<Uint8Array>)
    await until(() => cut !== null, 'the second window was asked for')
    ;(cut as unknown as PeerSession).close()
    await expect(reading).rejects.toThrow(/went away/)
  })

  it('a busy answer is not remembered: the next open asks that peer again', async () => {
    const bytes = randomBytes(2000)
    let busy = true
    const { fetcher } = await connectPair({
      onRequest: (s, r) => {
        if (busy) return s.sendContentEnd({ id: r.id, status: 2 })
        sendBytes(s, r.id, bytes)
        s.sendContentEnd({ id: r.id, status: 0 })
      }
    })
    expect(await fetcher.open(versionOf('a.txt', bytes))).toBeNull()
    busy = false
    const again = await fetcher.open(versionOf('a.txt', bytes))
    expect(Buffer.concat((again as Uint8Array[]).map((c) => Buffer.from(c))).equals(bytes)).toBe(true)
  })

  it('a peer that does not answer: open gives up after the response timeout and asks it nothing more', async () => {
    const bytes = randomBytes(100)
    const asked: ContentRequest[] = []
    const { fetcher } = await connectPair({ onRequest: (_s, r) => void asked.push(r) })
    expect(await fetcher.open(versionOf('a.txt', bytes))).toBeNull()
    expect(await fetcher.open(versionOf('b.txt', randomBytes(10)))).toBeNull()
    expect(asked.map((r) => r.path)).toEqual(['a.txt'])
    expect(fetcher.available()).toBe(false)
  })

  // the same race as the index fetcher's (fault suite, rebuild phase): the peers are picked,
  // the first is asked and answers "not here"; the second closed meanwhile, and a request on a
  // closed session is never sent: it must fail at once, not wait for the response timeout
  it('a peer whose connection closed while the one before it answered is not waited for', async () => {
    const requests: string[] = []
    let fetcher!: ContentFetcher
    const second = { closed: false, deviceId: 'SECOND0', address: 'b', sendContentRequest: () => void requests.push('second') }
    const first = {
      closed: false,
      deviceId: 'FIRST00',
      address: 'a',
      sendContentRequest: (r: ContentRequest) => {
        requests.push('first')
        second.closed = true
        setImmediate(() => fetcher.onEnd(first as unknown as PeerSession, { id: r.id, status: CONTENT_NOT_HERE }))
      }
    }
    fetcher = new ContentFetcher({ sources: () => [first, second] as unknown as PeerSession[], log, responseTimeoutMs: 60_000 })
    const stillWaiting = new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting after 5 s: the closed session was awaited')), 5_000).unref())
    expect(await Promise.race([fetcher.open(versionOf('a.txt', randomBytes(10))), stillWaiting])).toBeNull()
    expect(requests).toEqual(['first'])
    fetcher.close()
  })

  // fault CI round, session 26: a node asked the author, isolated a moment before, for a file
  // the author deleted meanwhile; the delete arrived after the heal, and the wait went on
  it('a newer entry for the path ends the wait for a silent peer\'s first answer; its late answer is ignored', async () => {
    const { asked, silent, fetcher } = silentPeer()
    const signal = new SupersedeSignal()
    const opening = fetcher.open(versionOf('a.txt', randomBytes(10)), false, null, signal)
    await until(() => asked.length === 1, 'the peer was asked')
    signal.abort()
    const stillWaiting = new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting 5 s after the newer entry')), 5_000).unref())
    await expect(Promise.race([opening, stillWaiting])).rejects.toMatchObject({ code: 'E_SUPERSEDED' })
    // the answer that comes after all is dropped, not pushed into a window nobody reads
    fetcher.onData(silent, { id: asked[0]!.id, data: Buffer.from('late') })
    fetcher.onEnd(silent, { id: asked[0]!.id, status: CONTENT_DONE })
    // already superseded when asked: no wait at all
    await expect(fetcher.open(versionOf('b.txt', randomBytes(10)), false, null, signal)).rejects.toMatchObject({ code: 'E_SUPERSEDED' })
    fetcher.close()
  })

  it('a newer entry for the path ends the wait for the rest of a small file from a peer gone silent after its first bytes', async () => {
    const { asked, silent, fetcher } = silentPeer()
    const signal = new SupersedeSignal()
    const opening = fetcher.open(versionOf('a.txt', randomBytes(100_000)), false, null, signal)
    await until(() => asked.length === 1, 'the peer was asked')
    // the first bytes come, the rest never does
    fetcher.onData(silent, { id: asked[0]!.id, data: randomBytes(1000) })
    const settled = opening.then(
      () => 'resolved',
      (err: { code?: string }) => err.code ?? 'failed'
    )
    // the read went on past the first answer and waits for the rest (not settled meanwhile)
    await new Promise((resolve) => setImmediate(resolve))
    signal.abort()
    const stillWaiting = new Promise((resolve) => setTimeout(() => resolve('still waiting 5 s after the newer entry'), 5_000).unref())
    expect(await Promise.race([settled, stillWaiting])).toBe('E_SUPERSEDED')
    fetcher.close()
  })

  it('a newer entry for the path ends the wait for a silent peer\'s block sums of a changed large file', async () => {
    const { sums, fetcher } = silentPeer()
    const old = randomBytes(DELTA_MIN_BYTES + 4096)
    const next = Buffer.from(old)
    next.write('changed', 10)
    const abs = join(tempDir(), 'old.bin')
    writeFileSync(abs, old)
    const signal = new SupersedeSignal()
    const opening = fetcher.open(versionOf('uploads/big.bin', next), false, { abs, size: old.length, hash: createHash('sha256').update(old).digest('hex') }, signal)
    await until(() => sums.length === 1, 'the peer was asked for the sums')
    signal.abort()
    const stillWaiting = new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting 5 s after the newer entry')), 5_000).unref())
    await expect(Promise.race([opening, stillWaiting])).rejects.toMatchObject({ code: 'E_SUPERSEDED' })
    fetcher.close()
  })

  // CI round, session 28: a node waited 30 s on Hypercore for a file its author had on disk;
  // the log did not say what the author had answered when asked for it from its folder
  it('logs at debug what each peer asked answered when none served the file from its folder', async () => {
    const lines: Array<Record<string, unknown>> = []
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
    const { asked, silent, fetcher } = silentPeer(logger)
    const bytes = randomBytes(10)
    const opening = fetcher.open(versionOf('a.txt', bytes))
    await until(() => asked.length === 1, 'the peer was asked')
    fetcher.onEnd(silent, { id: asked[0]!.id, status: CONTENT_NOT_HERE })
    expect(await opening).toBeNull()
    const line = lines.find((l) => l.msg === 'no peer served the file from its folder')
    expect(line).toMatchObject({ path: 'a.txt', sources: 1, candidates: 1, answers: [{ peer: 'SILENT0', status: 'not here' }] })
    // asked again at once, the peer is left out: it said "not here" for this version
    expect(await fetcher.open(versionOf('a.txt', bytes))).toBeNull()
    expect(asked).toHaveLength(1)
    expect(lines.filter((l) => l.msg === 'no peer served the file from its folder').at(-1)).toMatchObject({ candidates: 0, answers: [] })
    fetcher.close()
  })

  it('refuses a peer that may not read contents (an encrypted relay), and the fetcher stops asking it', async () => {
    const bytes = randomBytes(100)
    const { fetcher, server } = await connectPair({ files: { 'a.txt': bytes }, mayRead: false })
    expect(await fetcher.open(versionOf('a.txt', bytes))).toBeNull()
    expect(fetcher.available()).toBe(false)
    expect(server.served.requests).toBe(0)
  })

  it('answers busy beyond its queue, and never serves a path that is not a safe folder path', async () => {
    const bytes = randomBytes(100)
    const answers: number[] = []
    // the server's running requests wait until the requests that cannot fit were answered busy:
    // at most 4 run and MAX_QUEUED wait, so at least MAX_QUEUED + 50 - 4 - MAX_QUEUED are busy
    // however the requests arrive
    const mustBeBusy = 50 - 4
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const { client, server } = await connectPair({ files: { 'a.txt': bytes }, gate })
    // talk to the server directly: the fetcher would never ask for these
    const ends = new Map<number, number>()
    const hooks = client as unknown as { hooks: SessionHooks }
    hooks.hooks.onContentEnd = (_s, e) => {
      ends.set(e.id, e.status)
      if ([...ends.values()].filter((s) => s === 2).length >= mustBeBusy) open()
    }
    hooks.hooks.onContentData = () => undefined
    const hash = Buffer.from(sha(bytes), 'hex')
    client.sendContentRequest({ id: 1, path: '../a.txt', hash, offset: 0, length: 100 })
    client.sendContentRequest({ id: 2, path: '/etc/passwd', hash, offset: 0, length: 100 })
    // nor the block sums of one (the same queue, the same checks)
    client.sendSumsRequest({ id: 3, path: '../a.txt', hash, blockSize: 128 * 1024 })
    for (let i = 0; i < MAX_QUEUED + 50; i++) client.sendContentRequest({ id: 100 + i, path: 'a.txt', hash, offset: 0, length: 100 })
    await until(() => ends.size === MAX_QUEUED + 53, 'every request was answered', 10_000)
    expect(ends.get(1)).toBe(1)
    expect(ends.get(2)).toBe(1)
    expect(ends.get(3)).toBe(1)
    for (const status of ends.values()) answers.push(status)
    expect(answers.filter((s) => s === 2).length).toBeGreaterThanOrEqual(mustBeBusy)
    expect(server.served.requests).toBe(answers.filter((s) => s === 0).length)
  })
})

describe('a changed file fetched as the blocks that differ (FEATURE_SUMS)', () => {
  const MiB = 1024 * 1024

  /** the older version, as a file this side has */
  function baseOf(bytes: Buffer): LocalBase {
    const abs = join(tempDir(), 'old.bin')
    writeFileSync(abs, bytes)
    return { abs, size: bytes.length, hash: sha(bytes) }
  }

  it('copies the unchanged blocks from the version here and fetches only the rest, byte for byte', async () => {
    const old = randomBytes(6 * MiB)
    const next = Buffer.from(old)
    next.write('changed in place', 3 * MiB + 5)
    const grown = Buffer.concat([next, randomBytes(1000)])
    const { fetcher, server } = await connectPair({ files: { 'uploads/v.mp4': grown } })
    const got = await collectOpened(await fetcher.open(versionOf('uploads/v.mp4', grown), false, baseOf(old)))
    expect(got?.equals(grown)).toBe(true)
    // 6 MiB in blocks of 128 KiB: the block edited and the new tail came over the wire
    expect(server.served.bytes).toBe(128 * 1024 + 1000)
    expect(fetcher.counters).toMatchObject({ deltaFiles: 1, reusedBytes: 6 * MiB - 128 * 1024, deltaFailures: 0, mismatches: 0 })
  })

  it('peer sums that lie: nothing is vouched for (the read fails at its end), and the next attempt fetches the file whole', async () => {
    const old = randomBytes(2 * MiB)
    const next = Buffer.concat([old.subarray(0, MiB), randomBytes(MiB)])
    // the hostile side answers with the sums of the old file: every block "is here"
    const { fetcher, server } = await connectPair({
      files: { 'uploads/a.zip': next },
      onSumsRequest: (s, r) => {
        const sums = Buffer.concat(Array.from({ length: 16 }, (_, i) => createHash('sha256').update(old.subarray(i * 128 * 1024, (i + 1) * 128 * 1024)).digest()))
        s.sendContentData({ id: r.id, data: sums })
        s.sendContentEnd({ id: r.id, status: CONTENT_DONE })
      }
    })
    const version = versionOf('uploads/a.zip', next)
    const base = baseOf(old)
    await expect(collectOpened(await fetcher.open(version, false, base))).rejects.toThrow(/does not match its entry; it will be fetched whole/)
    expect(fetcher.counters).toMatchObject({ deltaFiles: 0, deltaFailures: 1 })
    const again = await collectOpened(await fetcher.open(version, false, base))
    expect(again?.equals(next)).toBe(true)
    expect(server.served.bytes).toBe(next.length)
    // the peer is not blamed: the file here could have changed as well
    expect(fetcher.counters.mismatches).toBe(0)
    expect(fetcher.available()).toBe(true)
  })

  it('sums longer than the file has blocks fail the answer, and the file is fetched whole from the next source', async () => {
    const old = randomBytes(2 * MiB)
    const next = Buffer.concat([old, randomBytes(10)])
    const { fetcher } = await connectPair({
      files: { 'uploads/b.bin': next },
      onSumsRequest: (s, r) => {
        s.sendContentData({ id: r.id, data: randomBytes(32 * 100) })
        s.sendContentEnd({ id: r.id, status: CONTENT_DONE })
      }
    })
    expect(await fetcher.open(versionOf('uploads/b.bin', next), false, baseOf(old))).toBeNull()
    expect(fetcher.available()).toBe(false)
  })

  it('from a peer that does not announce FEATURE_SUMS, and for files under DELTA_MIN_BYTES: fetched whole', async () => {
    const old = randomBytes(2 * MiB)
    const next = Buffer.concat([old, randomBytes(10)])
    const small = randomBytes(DELTA_MIN_BYTES - 1)
    const smallNext = Buffer.concat([small.subarray(0, small.length - 1), Buffer.from('x')])
    let asked = 0
    const { fetcher, server } = await connectPair({ files: { 'uploads/c.bin': next }, servedFeatures: FEATURE_CONTENT, onSumsRequest: () => void asked++ })
    expect((await collectOpened(await fetcher.open(versionOf('uploads/c.bin', next), false, baseOf(old))))?.equals(next)).toBe(true)
    expect(server.served.bytes).toBe(next.length)
    const other = await connectPair({ files: { 'uploads/d.bin': smallNext }, onSumsRequest: () => void asked++ })
    expect((await collectOpened(await other.fetcher.open(versionOf('uploads/d.bin', smallNext), false, baseOf(small))))?.equals(smallNext)).toBe(true)
    expect(asked).toBe(0)
    expect(other.fetcher.counters.deltaFiles).toBe(0)
  })

  it('the server answers "not here" for sums of a version it does not hold, and the fetcher falls back without asking it for the file', async () => {
    const old = randomBytes(2 * MiB)
    const next = Buffer.concat([old, randomBytes(10)])
    const { fetcher } = await connectPair({ files: { 'uploads/e.bin': Buffer.concat([old, randomBytes(20)]) } })
    expect(await fetcher.open(versionOf('uploads/e.bin', next), false, baseOf(old))).toBeNull()
    expect(fetcher.counters.notFound).toBe(1)
    expect(fetcher.available()).toBe(true)
  })
})
