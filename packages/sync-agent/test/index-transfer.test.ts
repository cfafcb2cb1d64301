import { pipeline } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import Corestore from 'corestore'
import Hyperdrive from 'hyperdrive'
import type Hypercore from 'hypercore'
import hypercoreCrypto from 'hypercore-crypto'
import { Node as BeeNode } from 'hyperbee/lib/messages.js'
import { deriveFolderKeys, newSecret, parseSecret } from '@sync-agent/shared'
import { createLogger } from '../src/log.js'
import type { PeerSession } from '../src/peers/peer-session.js'
import { IndexBlockFetcher } from '../src/replication/index-block-fetcher.js'
import { IndexBlockServer } from '../src/replication/index-block-server.js'
import { entriesOf, TreeHasher, TreeNodeSet, type SnapshotEntry, type SnapshotEntryList } from '../src/replication/index-snapshot.js'
import { storeVerifiedBlocks } from '../src/replication/store-verified-blocks.js'
import { CONTENT_DONE, FEATURE_INDEX, type IndexRequest } from '../src/protocol.js'
import { sessionPair } from './helpers/session-pair.js'
import { useTempDirs } from './helpers/temp-dirs.js'

/**
 * A member drive's index as one verified snapshot: the tree hash recomputed from raw blocks is
 * the one Hypercore signs, the entries decoded from them are what the drive lists, and over
 * real sessions (TCP on loopback + Noise + our channel) a peer that sends other blocks, no
 * blocks or nothing at all gives no snapshot (the caller reads through Hypercore instead).
 */
const log = createLogger('silent')
const keys = deriveFolderKeys(parseSecret(newSecret()))
const tempDir = useTempDirs('sa-index-')
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function metaOf(i: number): object {
  return { v: 1, vv: { W: i + 1 }, ts: 1, kind: 'deleted', size: 0, mtime: 1, mode: 0, hash: null }
}

/** A writer's encrypted drive with `n` entries, one key written twice and one deleted. */
async function writerDrive(n: number): Promise<Hyperdrive> {
  const store = new Corestore(tempDir())
  const drive = new Hyperdrive(store.namespace('w'), null, { encryptionKey: keys.contentKey as Buffer })
  await drive.ready()
  cleanups.push(() => store.close())
  const batch = drive.batch()
  for (let i = 0; i < n; i++) await batch.putEntry(`/themes/t/${String(i).padStart(5, '0')} é.php`, { metadata: metaOf(i) })
  await batch.flush()
  await drive.putEntry('/themes/t/00001 é.php', { metadata: metaOf(1000) })
  await drive.putEntry('/gone.txt', { metadata: metaOf(1) })
  await drive.del('/gone.txt')
  return drive
}

const storeOf = new WeakMap<Hyperdrive, Corestore>()

/** The same drive opened in a second store and replicated until it knows the writer's length (the signed upgrade). */
async function readerOf(writer: Hyperdrive, dir = tempDir()): Promise<Hyperdrive> {
  const store = new Corestore(dir)
  const drive = new Hyperdrive(store.session(), writer.key, { encryptionKey: keys.contentKey as Buffer })
  await drive.ready()
  const a = (writer.corestore as Corestore).replicate(true)
  const b = store.replicate(false)
  pipeline(a, b, a, () => undefined)
  cleanups.push(async () => {
    a.destroy()
    b.destroy()
    await store.close()
  })
  while (drive.core.length < writer.core.length) await drive.core.update({ wait: true })
  storeOf.set(drive, store)
  return drive
}

/** Every entry of a snapshot, taken in order. */
function taken(list: SnapshotEntryList | undefined): SnapshotEntry[] {
  return Array.from({ length: list?.length ?? 0 }, (_, i) => (list as SnapshotEntryList).take(i))
}

/** A Hyperbee node block of Hyperdrive's files sub-encoder (`value` null: a delete). */
function beeNode(key: string | Buffer, value: string | null): Buffer {
  const k = Buffer.concat([Buffer.from('files\0'), typeof key === 'string' ? Buffer.from(key) : key])
  return BeeNode.encode({ index: Buffer.alloc(0), key: k, value: value === null ? null : Buffer.from(value) }) as Buffer
}

async function listed(drive: Hyperdrive): Promise<Array<{ seq: number; key: string; value: string }>> {
  const out = []
  for await (const e of drive.list<Buffer>('/', { valueEncoding: 'binary' } as never)) out.push({ seq: e.seq, key: e.key, value: Buffer.from(e.value as unknown as Buffer).toString() })
  return out
}

/** Fetcher (reader side) and server (writer side) over a real session pair. */
async function connect(writer: Hyperdrive, opts: { mayRead?: boolean; onRequest?: (s: PeerSession, r: IndexRequest) => void; responseTimeoutMs?: number; storeChunkBlocks?: number; served?: Hypercore } = {}) {
  const served = opts.served ?? writer.core
  const server = new IndexBlockServer({ core: (key) => (key.equals(writer.key) ? served : null), mayRead: () => opts.mayRead ?? true, log })
  let client!: PeerSession
  const fetcher = new IndexBlockFetcher({ sources: () => (client.features & FEATURE_INDEX ? [client] : []), log, responseTimeoutMs: opts.responseTimeoutMs ?? 10_000, storeChunkBlocks: opts.storeChunkBlocks })
  const pair = await sessionPair({
    keys,
    log,
    client: { onClose: (s) => fetcher.onSessionGone(s), onIndexBlocks: (s, a) => fetcher.onBlocks(s, a) },
    served: { onClose: (s) => server.onSessionGone(s), onIndexRequest: (s, r) => (opts.onRequest ? opts.onRequest(s, r) : server.onRequest(s, r)) },
    servedFeatures: FEATURE_INDEX
  })
  client = pair.client
  cleanups.push(() => {
    pair.close()
    server.close()
    fetcher.close()
  })
  return { fetcher, server, client, served: pair.served }
}

describe('index snapshot from raw blocks', () => {
  it('recomputes the tree hash Hypercore signs, at every length', async () => {
    const writer = await writerDrive(40)
    const hasher = new TreeHasher()
    for (let i = 0; i < writer.core.length; i++) {
      hasher.add((await writer.core.get(i, { raw: true })) as Buffer)
      expect(hasher.hash().equals(await writer.core.treeHash(i + 1)), `length ${i + 1}`).toBe(true)
    }
  })

  it('keeps every node of the tree, packed by flat index', async () => {
    const writer = await writerDrive(40)
    const n = writer.core.length
    const nodes = new TreeNodeSet(n)
    const hasher = new TreeHasher(nodes)
    const blocks: Buffer[] = []
    for (let i = 0; i < n; i++) hasher.add((blocks[i] = (await writer.core.get(i, { raw: true })) as Buffer))
    // a tree of n leaves has 2n - (number of its roots) nodes; the roots are the 1 bits of n
    expect(nodes.count).toBe(2 * n - n.toString(2).replaceAll('0', '').length)
    const all = [...nodes.between(0, 2 * n)]
    expect(all.length).toBe(nodes.count)
    expect(all.map((x) => x.index)).toEqual([...all.map((x) => x.index)].sort((a, b) => a - b))
    for (let i = 0; i < n; i++) {
      const leaf = all.find((x) => x.index === 2 * i)
      expect(leaf?.size).toBe(blocks[i]?.byteLength)
      expect(leaf?.hash.equals(hypercoreCrypto.data(blocks[i] as Buffer))).toBe(true)
    }
    // a parent's size is its two children's
    const byIndex = new Map(all.map((x) => [x.index, x]))
    expect(byIndex.get(1)?.size).toBe((blocks[0]?.byteLength ?? 0) + (blocks[1]?.byteLength ?? 0))
    expect([...nodes.between(2 * n - 2, 2 * n)].map((x) => x.index)).toEqual([2 * n - 2])
    expect(() => nodes.set({ index: 2 * n, size: 1, hash: Buffer.alloc(32) })).toThrow(RangeError)
    expect(() => nodes.set({ index: 0, size: 1, hash: Buffer.alloc(16) })).toThrow(RangeError)
  })

  it('decodes the entries the drive lists: the last write of each key, deletes gone', async () => {
    const writer = await writerDrive(300)
    const reader = await readerOf(writer)
    const { fetcher } = await connect(writer)
    const snapshot = await fetcher.snapshot({ core: reader.core, author: 'W', shortId: 'W' }, reader.core.length)
    expect(snapshot).not.toBeNull()
    const got = taken(snapshot?.entries).map((e) => ({ seq: e.seq, key: e.key, value: e.value.toString() }))
    expect(got).toEqual(await listed(writer))
    expect(got.length).toBe(300)
    expect(got.some((e) => e.key === '/gone.txt')).toBe(false)
    expect(JSON.parse(got[1]?.value as string).metadata.vv).toEqual({ W: 1001 })
    expect(fetcher.counters).toEqual({ snapshots: 1, mismatches: 0 })
  })

  it('serves a range with one storage read (Hypercore\'s internal), or with a get per block where that is missing', async () => {
    const writer = await writerDrive(300)
    const expected = await listed(writer)
    let gets = 0
    // the writer's core with its gets counted, and (`withState: false`) without Hypercore's state
    const served = (withState: boolean) =>
      new Proxy(writer.core, {
        get: (target, prop) => {
          if (prop === 'state' && !withState) return undefined
          if (prop === 'get') return (...args: Parameters<Hypercore['get']>) => (gets++, target.get(...args))
          const v = Reflect.get(target, prop, target)
          return typeof v === 'function' ? v.bind(target) : v
        }
      })
    const reader = await readerOf(writer)
    const { fetcher } = await connect(writer, { served: served(true) })
    const snapshot = await fetcher.snapshot({ core: reader.core, author: 'W', shortId: 'W' }, reader.core.length)
    expect(taken(snapshot?.entries).map((e) => e.key)).toEqual(expected.map((e) => e.key))
    // hypercore 11.39 has it: when this fails, the internal moved (serving still works, slower)
    expect(gets).toBe(0)
    // without it (no `state`): a get each
    const other = await readerOf(writer)
    const second = await connect(writer, { served: served(false) })
    const again = await second.fetcher.snapshot({ core: other.core, author: 'W', shortId: 'W' }, other.core.length)
    expect(taken(again?.entries).map((e) => e.key)).toEqual(expected.map((e) => e.key))
    expect(gets).toBe(other.core.length)
  })

  it('stores the verified blocks in the reader\'s core, in several writes: read there with no peer, and after a restart', async () => {
    const writer = await writerDrive(2000)
    const dir = tempDir()
    const reader = await readerOf(writer, dir)
    const length = reader.core.length
    expect(reader.core.contiguousLength).toBeLessThan(length)
    // 7 writes of blocks and tree nodes (the last one short), then the bitfield
    const { fetcher } = await connect(writer, { storeChunkBlocks: 300 })
    const snapshot = await fetcher.snapshot({ core: reader.core, author: 'W', shortId: 'W' }, length)
    expect(snapshot?.stored).toBe(true)
    expect(reader.core.contiguousLength).toBe(length)
    expect(await reader.core.has(0, length)).toBe(true)
    // no peer from here on: every entry and block is read from the reader's own storage
    const expected = await listed(writer)
    await writer.close()
    expect(await listed(reader)).toEqual(expected)
    for (const i of [0, 1, 977, length - 1]) expect(await reader.core.get(i, { wait: false, raw: true })).not.toBeNull()
    // and passed on: a third node replicating from the reader alone gets them, with valid proofs
    const third = await readerOf(reader)
    expect(await listed(third)).toEqual(expected)
    const hash = await reader.core.treeHash(length)
    const key = reader.key
    await storeOf.get(reader)?.close()
    const store = new Corestore(dir)
    cleanups.push(() => store.close())
    const reopened = new Hyperdrive(store.session(), key, { encryptionKey: keys.contentKey as Buffer })
    await reopened.ready()
    expect(reopened.core.contiguousLength).toBe(length)
    expect((await reopened.core.treeHash(length)).equals(hash)).toBe(true)
    expect(await listed(reopened)).toEqual(expected)
  }, 30_000) // 2,000 entries written, replicated twice and reopened: 4.4 s and over 5 s beside two fault runners

  it('a stop between two of its writes leaves the blocks stored so far unmarked: after a restart Hypercore fetches them as usual', async () => {
    const writer = await writerDrive(2000)
    const dir = tempDir()
    const reader = await readerOf(writer, dir)
    const length = reader.core.length
    const nodes = new TreeNodeSet(length)
    const hasher = new TreeHasher(nodes)
    const blocks: Buffer[] = []
    for (let i = 0; i < length; i++) hasher.add((blocks[i] = (await writer.core.get(i, { raw: true })) as Buffer))
    expect(hasher.hash().equals(await reader.core.treeHash(length))).toBe(true)
    // the third write (blocks 600-899) never happens, as if the process died there
    const state = (reader.core as unknown as { core: { state: { flush(): Promise<boolean>; _clearActiveBatch(): void } } }).core.state
    const flush = state.flush.bind(state)
    let writes = 0
    state.flush = async () => {
      if (++writes === 3) {
        state._clearActiveBatch()
        throw new Error('stopped here')
      }
      return flush()
    }
    await expect(storeVerifiedBlocks(reader.core, blocks, nodes, 300)).rejects.toThrow('stopped here')
    state.flush = flush
    expect(writes).toBe(3)
    // written, yet not marked: no reader sees them
    for (const i of [100, 599]) expect(await reader.core.has(i)).toBe(false)
    expect(reader.core.contiguousLength).toBeLessThan(300)
    const expected = await listed(writer)
    await storeOf.get(reader)?.close()
    // restarted, it replicates the drive from the writer as if the snapshot had never been
    const again = await readerOf(writer, dir)
    expect(again.core.contiguousLength).toBeLessThan(300)
    expect(await listed(again)).toEqual(expected)
    await again.core.download({ start: 0, end: length }).done()
    expect(again.core.contiguousLength).toBe(length)
    for (const i of [100, 599, 1500]) expect((await again.core.get(i, { wait: false, raw: true }))?.equals(blocks[i] as Buffer)).toBe(true)
    // and serves it on with valid proofs
    const third = await readerOf(again)
    await writer.close()
    expect(await listed(third)).toEqual(expected)
  }, 30_000)

  it('asks for large indexes in several requests, and continues an answer cut short', async () => {
    const writer = await writerDrive(9000)
    const reader = await readerOf(writer)
    const asked: IndexRequest[] = []
    let server: IndexBlockServer | null = null
    const pair = await connect(writer, {
      onRequest: (s, r) => {
        asked.push(r)
        // the first answer holds only 10 blocks, as if the rest would not fit one message
        if (asked.length === 1) {
          void writer.core.get(r.start, { raw: true }).then(async () => {
            const blocks = []
            for (let i = r.start; i < r.start + 10; i++) blocks.push((await writer.core.get(i, { raw: true })) as Buffer)
            s.sendIndexBlocks({ id: r.id, status: CONTENT_DONE, blocks })
          })
          return
        }
        server?.onRequest(s, r)
      }
    })
    server = pair.server
    const snapshot = await pair.fetcher.snapshot({ core: reader.core, author: 'W', shortId: 'W' }, reader.core.length)
    expect(snapshot?.entries.length).toBe(9000)
    expect(asked.length).toBeGreaterThanOrEqual(4)
    expect(asked[0]).toMatchObject({ start: 0 })
    expect(asked.some((r) => r.start === 10)).toBe(true)
  }, 30_000) // a drive of 9,000 entries: over the unit default (5 s) on a loaded machine

  /** A 50-entry drive whose serving peer answers with `answer`; asks for a snapshot twice. */
  async function askTwice(answer: (writer: Hyperdrive, s: PeerSession, r: IndexRequest) => void) {
    const writer = await writerDrive(50)
    const reader = await readerOf(writer)
    let requests = 0
    const { fetcher } = await connect(writer, {
      onRequest: (s, r) => {
        requests++
        answer(writer, s, r)
      }
    })
    const drive = { core: reader.core, author: 'W', shortId: 'W' }
    const results = [await fetcher.snapshot(drive, reader.core.length), await fetcher.snapshot(drive, reader.core.length)]
    return { results, requests, fetcher }
  }

  it('a peer that sends other blocks: no snapshot, and it is not asked again', async () => {
    const { results, requests, fetcher } = await askTwice((writer, s, r) => {
      void (async () => {
        const blocks = []
        for (let i = r.start; i < r.end; i++) blocks.push(Buffer.from((await writer.core.get(i, { raw: true })) as Buffer))
        ;(blocks[7] as Buffer)[3]! ^= 1 // one bit of one block
        s.sendIndexBlocks({ id: r.id, status: CONTENT_DONE, blocks })
      })()
    })
    expect(results).toEqual([null, null])
    expect(fetcher.counters.mismatches).toBe(1)
    expect(requests).toBe(1)
  })

  it('a peer that sends more bytes than the index holds is cut off at once, before its lie fills the memory', async () => {
    // one big block per answer: "cut short", so a naive fetcher would ask for the rest, again and again
    const { results, requests } = await askTwice((_writer, s, r) => s.sendIndexBlocks({ id: r.id, status: CONTENT_DONE, blocks: [Buffer.alloc(1024 * 1024, 7)] }))
    expect(results).toEqual([null, null])
    expect(requests).toBe(1)
  })

  it('a peer that does not answer, refuses, or does not hold the drive: no snapshot', async () => {
    const writer = await writerDrive(50)
    const reader = await readerOf(writer)
    const drive = { core: reader.core, author: 'W', shortId: 'W' }
    const silent = await connect(writer, { onRequest: () => undefined, responseTimeoutMs: 300 })
    expect(await silent.fetcher.snapshot(drive, reader.core.length)).toBeNull()
    const refusing = await connect(writer, { mayRead: false })
    expect(await refusing.fetcher.snapshot(drive, reader.core.length)).toBeNull()
    expect(refusing.server.served.requests).toBe(0)
    const other = await writerDrive(5)
    const stranger = await connect(other)
    expect(await stranger.fetcher.snapshot(drive, reader.core.length)).toBeNull()
    // a length the writer never signed (beyond what we know) is not even asked for
    expect(await stranger.fetcher.snapshot(drive, reader.core.length + 5)).toBeNull()
  })

  // fault suite, rebuild phase (session 14): a fresh node picked its peers, then waited for the
  // drive's last block; meanwhile a duplicate connection replaced the one it had picked, which
  // was asked anyway: a closed session sends nothing, and the answer was awaited 15 s, twice
  it('a connection that closes while the signed length is awaited is not asked (it could never answer)', async () => {
    const writer = await writerDrive(300)
    const reader = await readerOf(writer)
    const { fetcher, client } = await connect(writer, { responseTimeoutMs: 60_000 })
    const closing = new Promise<void>((resolve) => client.stream.once('close', () => resolve()))
    // the drive's last block is "not here": the fetcher waits for it, and the connection closes meanwhile
    const core = new Proxy(reader.core, {
      get(target, key) {
        if (key === 'has') return async () => false
        if (key === 'get') {
          return async (index: number, opts: object) => {
            client.close()
            await closing
            return target.get(index, opts)
          }
        }
        const value: unknown = Reflect.get(target, key)
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      }
    })
    const stillWaiting = new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting after 5 s: the closed connection was asked')), 5_000).unref())
    expect(await Promise.race([fetcher.snapshot({ core, author: 'W', shortId: 'W' }, reader.core.length), stillWaiting])).toBeNull()
    expect(client.closed).toBe(true)
  })

  it('lists in the keys\' byte order (not UTF-16\'s), the last write of each key, deletes and other sub-encoders left out', () => {
    // U+FF5E sorts after U+1F600 in UTF-16 code units (a surrogate pair, 0xD83D), before it in bytes
    const blocks: Array<Buffer | undefined> = [
      Buffer.from('header'),
      beeNode('/b', '1'),
      beeNode('/\u{1F600}', '2'),
      beeNode('/\uFF5E', '3'),
      beeNode('/a', '4'),
      beeNode('/b', '5'),
      beeNode('/gone', '6'),
      beeNode('/gone', null),
      BeeNode.encode({ index: Buffer.alloc(0), key: Buffer.from('other\0/a'), value: Buffer.from('7') }) as Buffer,
      beeNode('/a/', '8')
    ]
    const list = entriesOf(blocks)
    const got = taken(list).map((e) => ({ seq: e.seq, key: e.key, value: e.value.toString() }))
    expect(got).toEqual([
      { seq: 4, key: '/a', value: '4' },
      { seq: 9, key: '/a/', value: '8' },
      { seq: 5, key: '/b', value: '5' },
      { seq: 3, key: '/\uFF5E', value: '3' },
      { seq: 2, key: '/\u{1F600}', value: '2' }
    ])
    const bytes = got.map((e) => Buffer.from(e.key))
    expect([...bytes].sort(Buffer.compare)).toEqual(bytes)
  })

  it('lets go of the blocks as their entries are taken, in units of 4,096, and each entry only once', () => {
    const n = 3 * 4096
    const blocks: Array<Buffer | undefined> = [Buffer.from('header')]
    // blocks 1..8191: /f00001../f08191; blocks 8192..12287 (the last unit): /f00001../f04096 again
    for (let i = 1; i < n; i++) blocks.push(beeNode(`/f${String(i < 8192 ? i : i - 8191).padStart(5, '0')}`, `v${i}`))
    const list = entriesOf(blocks)
    expect(list.length).toBe(8191)
    // unit 0 (blocks 0..4095) holds only replaced writes: let go at once; unit 1 is still needed
    expect(blocks.slice(0, 4096).every((b) => b === undefined)).toBe(true)
    expect(blocks[4096]).toBeDefined()
    // in key order the 4,096 keys rewritten in the last unit come first
    for (let i = 0; i < 4096; i++) expect(list.take(i).value.toString()).toBe(`v${i + 8192}`)
    expect(blocks[8192]).toBeUndefined()
    expect(blocks[4096]).toBeDefined()
    expect(() => list.take(0)).toThrow(/was taken/)
    for (let i = 4096; i < list.length; i++) list.take(i)
    expect(blocks.every((b) => b === undefined)).toBe(true)
    expect(() => list.keyAt(list.length)).toThrow(RangeError)
  })

  it('refuses blocks that are not Hyperbee nodes even when they hash right (the writer\'s own doing)', () => {
    expect(() => entriesOf([Buffer.from('header'), Buffer.from([0xff, 0xff, 0xff])])).toThrow(/not a Hyperbee node/)
  })
})
