import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import NoiseSecretStream from '@hyperswarm/secret-stream'
import { afterEach, describe, expect, it } from 'vitest'
import { pieceBytes, RateLimitedSocket } from '../src/peers/rate-limited-socket.js'
import { bucketFor, TokenBucket } from '../src/peers/token-bucket.js'

/**
 * The bandwidth limits' socket on real loopback TCP: bytes pass intact, no faster than the
 * limit (only lower bounds on time are checked: a loaded machine is slower, never faster),
 * and errors and ends pass through as the raw socket's.
 */
const servers: Server[] = []
const sockets: Array<{ destroy(): void }> = []
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy()
  for (const s of servers.splice(0)) s.close()
})

async function socketPair(): Promise<{ dialled: Socket; accepted: Socket }> {
  const server = createServer()
  servers.push(server)
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const dialled = connect((server.address() as { port: number }).port, '127.0.0.1')
  const pair = { dialled, accepted: await accepted }
  sockets.push(pair.dialled, pair.accepted)
  return pair
}

/** Everything `stream` emits until its end, and the seconds from its first byte to the end. */
function readAll(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer; seconds: number }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let first = 0
    stream.on('data', (d: Buffer) => {
      if (parts.length === 0) first = performance.now()
      parts.push(d)
    })
    stream.once('end', () => resolve({ bytes: Buffer.concat(parts), seconds: (performance.now() - first) / 1000 }))
    stream.once('error', reject)
  })
}

/** The first `n` bytes `stream` emits. */
function readBytes(stream: NodeJS.ReadableStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let got = 0
    stream.on('data', (d: Buffer) => {
      parts.push(d)
      got += d.length
      if (got >= n) resolve(Buffer.concat(parts))
    })
    stream.once('error', reject)
  })
}

function limiting(socket: RateLimitedSocket): RateLimitedSocket {
  socket.startLimiting()
  return socket
}

describe('RateLimitedSocket', () => {
  it('lets bytes pass unlimited until told to limit them (before a peer\'s proof), and limits them from then on', async () => {
    const bucket = bucketFor(64) as TokenBucket
    const { dialled, accepted } = await socketPair()
    const limited = new RateLimitedSocket(accepted, null, bucket)
    sockets.push(limited)
    const first = readBytes(limited, 2 * 1024 * 1024)
    let started = performance.now()
    dialled.write(randomBytes(2 * 1024 * 1024))
    await first
    // 2 MiB at 64 KiB/s would take 31 s: nothing was taken from the shared bucket either
    expect(bucket.take(0)).toBe(0)
    limited.startLimiting()
    limited.removeAllListeners('data')
    const second = readBytes(limited, 128 * 1024)
    started = performance.now()
    dialled.write(randomBytes(128 * 1024))
    await second
    // less the 16 KiB burst and one 8 KiB piece
    expect((performance.now() - started) / 1000).toBeGreaterThanOrEqual((128 - 16 - 8) / 64)
  }, 15_000)

  it('sends no faster than the limit, in pieces, and ends after the last byte', async () => {
    const { dialled, accepted } = await socketPair()
    const limited = limiting(new RateLimitedSocket(dialled, bucketFor(512), null))
    sockets.push(limited)
    const data = randomBytes(1024 * 1024)
    const received = readAll(accepted)
    let seen = 0
    accepted.on('data', (d: Buffer) => (seen = Math.max(seen, d.length)))
    limited.end(data)
    const { bytes, seconds } = await received
    expect(bytes.equals(data)).toBe(true)
    // 1 MiB less the 128 KiB burst and the first piece, at 512 KiB/s
    expect(seconds).toBeGreaterThanOrEqual((1024 - 128 - 64) / 512)
    expect(seen).toBeLessThanOrEqual(pieceBytes(512 * 1024) * 2)
  })

  it('reads no faster than the limit, whatever the sender writes', async () => {
    const { dialled, accepted } = await socketPair()
    const limited = limiting(new RateLimitedSocket(accepted, null, bucketFor(512)))
    sockets.push(limited)
    const data = randomBytes(1024 * 1024)
    const received = readAll(limited)
    dialled.end(data)
    const { bytes, seconds } = await received
    expect(bytes.equals(data)).toBe(true)
    expect(seconds).toBeGreaterThanOrEqual((1024 - 128 - 64) / 512)
    expect(limited.bytesRead).toBe(data.length)
  })

  it('one bucket limits all its sockets together', async () => {
    const bucket = bucketFor(512) as TokenBucket
    const a = await socketPair()
    const b = await socketPair()
    const la = limiting(new RateLimitedSocket(a.dialled, bucket, null))
    const lb = limiting(new RateLimitedSocket(b.dialled, bucket, null))
    sockets.push(la, lb)
    const started = performance.now()
    const got = [readAll(a.accepted), readAll(b.accepted)]
    la.end(randomBytes(512 * 1024))
    lb.end(randomBytes(512 * 1024))
    await Promise.all(got)
    expect((performance.now() - started) / 1000).toBeGreaterThanOrEqual((1024 - 128 - 64) / 512)
  })

  it('passes the dial\'s error on as it is (its errno tells a peer that is down)', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const limited = new RateLimitedSocket(connect(port, '127.0.0.1'), bucketFor(64), bucketFor(64))
    const closed = new Promise((resolve) => limited.once('close', resolve))
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => limited.once('error', resolve))
    expect(err.code).toBe('ECONNREFUSED')
    await closed
    expect(limited.destroyed).toBe(true)
  })

  it('carries Noise both ways under both limits: the handshake, then the data intact', async () => {
    const { dialled, accepted } = await socketPair()
    const left = new NoiseSecretStream(true, limiting(new RateLimitedSocket(dialled, bucketFor(256), bucketFor(256))))
    const right = new NoiseSecretStream(false, limiting(new RateLimitedSocket(accepted, bucketFor(256), bucketFor(256))))
    sockets.push(left, right)
    const data = randomBytes(300 * 1024)
    const back = randomBytes(50 * 1024)
    // not ended: Noise destroys its raw stream once both sides ended, which cuts off what a
    // limit still holds back (as it would a plain socket's unsent bytes)
    const atRight = readBytes(right, data.length)
    const atLeft = readBytes(left, back.length)
    left.write(data)
    right.write(back)
    const [r, l] = await Promise.all([atRight, atLeft])
    expect(r.equals(data)).toBe(true)
    expect(l.equals(back)).toBe(true)
  })
})
