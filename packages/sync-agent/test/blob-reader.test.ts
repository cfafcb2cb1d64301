import type Hyperblobs from 'hyperblobs'
import { describe, expect, it } from 'vitest'
import { BlobReader } from '../src/blob-reader.js'
import type { Version } from '../src/entry-format.js'
import { blockAvailability, type PeerBlockState } from '../src/replication/block-availability.js'
import { useDrives, useStores } from './helpers/replicated-drives.js'
import { until } from './helpers/until.js'

const CONTENT = Buffer.from('abc')

function version(blob: { blockOffset: number; blockLength: number; byteOffset: number; byteLength: number }, size = CONTENT.length): Version {
  return { path: 'f.txt', drive: 'B'.repeat(64), size, at: 0, blob } as unknown as Version
}

function timedOut(): Error {
  return Object.assign(new Error('Request timed out'), { code: 'REQUEST_TIMEOUT' })
}

/**
 * A blob core whose requests answer as `answers` says, one per request in turn: 'park' never
 * answers (Hypercore rejects it with REQUEST_TIMEOUT when its timeout passes), 'serve' answers.
 * Records each request's timeout.
 */
function blobsAnswering(answers: Array<'park' | 'serve'>): { blobs: Hyperblobs; timeouts: number[] } {
  const timeouts: number[] = []
  const get = (_index: number, opts: { timeout: number }): Promise<Buffer> => {
    timeouts.push(opts.timeout)
    const answer = answers[Math.min(timeouts.length - 1, answers.length - 1)]
    if (answer === 'serve') return Promise.resolve(CONTENT)
    return new Promise((_resolve, reject) => setTimeout(() => reject(timedOut()), opts.timeout))
  }
  return { blobs: { core: { get } } as unknown as Hyperblobs, timeouts }
}

const ONE_BLOCK = { blockOffset: 15, blockLength: 1, byteOffset: 0, byteLength: 3 }

describe('BlobReader', () => {
  it("waits for a small file's block as long as the attempt's timeout says, then REQUEST_TIMEOUT", async () => {
    const { blobs, timeouts } = blobsAnswering(['park', 'serve'])
    const reader = new BlobReader(10_000)
    await expect(reader.read(version(ONE_BLOCK), blobs, 50)).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' })
    // the parked request was dropped: the next read asks again, and is served
    const chunks = await reader.read(version(ONE_BLOCK), blobs, 50)
    expect(Buffer.concat(chunks as Uint8Array[]).toString()).toBe('abc')
    expect(timeouts).toEqual([50, 50])
  })

  it('waits the whole timeout when the attempt names none', async () => {
    const { blobs, timeouts } = blobsAnswering(['serve'])
    await new BlobReader(10_000).read(version(ONE_BLOCK), blobs)
    expect(timeouts).toEqual([10_000])
  })

  it('streams a file too large to read into memory, each block waiting the whole timeout', async () => {
    const { blobs, timeouts } = blobsAnswering(['park'])
    let streamed: unknown = null
    Object.assign(blobs, { createReadStream: (blob: unknown, opts: { timeout: number }) => ((streamed = { blob, opts }), []) })
    const big = { blockOffset: 3, blockLength: 40, byteOffset: 0, byteLength: 2 * 1024 * 1024 }
    await new BlobReader(10_000).read(version(big, big.byteLength), blobs, 50)
    expect(timeouts).toEqual([])
    expect(streamed).toEqual({ blob: big, opts: { timeout: 10_000 } })
  })
})

describe('blockAvailability', () => {
  const drives = useDrives('sa-availability-')

  it("reads a real Hypercore replicator's view of who has a block", async () => {
    const writer = await drives.open()
    await writer.put('/f.txt', CONTENT)
    const reader = await drives.open(writer.key)
    drives.replicate(writer, reader)
    await reader.update({ wait: true })
    const blobs = await reader.getBlobs()
    // the file's one block, fetched from the writer
    expect(await blobs.core.get(0)).toEqual(CONTENT)
    await until(() => blobs.core.peers.length === 1, 'the writer is a peer of the blob core')
    const seen = await blockAvailability(blobs.core, 0)
    expect(seen.index).toBe(0)
    expect(seen.length).toBe(1)
    expect(seen.hereAlready).toBe(true)
    expect(seen.upgradeInflight).toBe(0)
    expect(seen.peers).toHaveLength(1)
    // the fields read off Hypercore's private peer state are all there: a rename upstream fails here
    expect(seen.peers[0]).toMatchObject({ remoteLength: 1, hasBlock: true, remoteFork: 0, paused: false, removed: false, remoteUploading: true })
    const [peer] = seen.peers as [PeerBlockState]
    expect(typeof peer.remoteCanUpgrade).toBe('boolean')
    // our length as the writer last acked it: 0 or 1, as its answer to our upgrade may not be here yet
    expect([0, 1]).toContain(peer.lengthAcked)
    expect(peer.inflight).toBe(0)
    expect(peer.syncsProcessing).toBe(0)
  })
})

// What asking again cannot cure: a block past our verified length needs an upgrade proof from
// our length, and a peer that holds the block but not the Merkle roots at our length (it
// fetched only some blocks) cannot give one. It never says so either: it re-sends its sync only
// when that changes, so the reader keeps its first answer (remoteCanUpgrade true, our length
// never acked) and waits out the timeout. The fault suite's CI round showed the same signature
// with the author itself, whose release had deleted those roots (clear-blocks.test.ts, fixed in
// session 28). If Hypercore changes this, this test fails: then see README Limits.
describe('Hypercore: a sparse peer without the roots at our length', () => {
  const { store, link } = useStores('sa-sparse-')

  it('cannot serve a block past our length: the read times out while the peer has it', async () => {
    const [w, a, r] = [store(), store(), store()]
    const writer = w.get({ name: 'blobs' })
    await writer.ready()
    const sparse = a.get({ key: writer.key })
    const reader = r.get({ key: writer.key })
    await Promise.all([sparse.ready(), reader.ready()])
    for (let i = 0; i < 9; i++) await writer.append(Buffer.from(`block ${i}`))
    // the reader learns length 9 from the writer, which then goes away
    const unlink = link(w, r)
    await reader.update({ wait: true })
    expect(reader.length).toBe(9)
    unlink()
    for (let i = 9; i < 43; i++) await writer.append(Buffer.from(`block ${i}`))
    // the sparse peer fetches only block 15 (with the proof of length 43)
    link(w, a)
    await sparse.update({ wait: true })
    expect((await sparse.get(15))?.toString()).toBe('block 15')
    link(a, r)
    await until(() => reader.peers.length === 1 && reader.peers[0]?.remoteLength === 43, 'the reader sees the sparse peer at length 43')
    await expect(reader.get(15, { timeout: 1_000 })).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' })
    const seen = await blockAvailability(reader, 15)
    expect(seen.peers).toMatchObject([{ remoteLength: 43, hasBlock: true, remoteCanUpgrade: true, lengthAcked: 0 }])
  })
})
