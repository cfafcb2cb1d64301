import { lstatSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { OnDemandFiles, type OnDemandDeps } from '../src/http/on-demand-files.js'
import { buildIgnoreRules } from '../src/ignore-rules.js'
import { createLogger } from '../src/log.js'
import { recordOf, type LocalRecord } from '../src/index-store.js'
import { useTempDirs } from './helpers/temp-dirs.js'
import { until } from './helpers/until.js'

const tempDir = useTempDirs('sa-on-demand-')
const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve))
})

/** Serving a file that is on disk needs only the index's record of it: the rest is never called. */
function filesOn(root: string, records: Map<string, LocalRecord>): OnDemandFiles {
  const unused = () => {
    throw new Error('not used when the file is on disk')
  }
  const deps = {
    root,
    serve: ['uploads/**'],
    rules: () => buildIgnoreRules([], [], null),
    index: { get: (path: string) => records.get(path) },
    engine: { mark: unused, whenSettled: unused },
    reconciler: { gather: unused },
    log: createLogger('silent')
  } as unknown as OnDemandDeps
  return new OnDemandFiles(deps)
}

const openFds = () => readdirSync('/proc/self/fd').length

describe('GET /files/ from disk', () => {
  it('ends the request and closes the file when the visitor left before the answer (no wait for a close that already happened)', async () => {
    const root = tempDir()
    mkdirSync(join(root, 'uploads'))
    const abs = join(root, 'uploads', 'photo.jpg')
    writeFileSync(abs, Buffer.alloc(3 * 1024 * 1024, 7))
    const files = filesOn(root, new Map([['uploads/photo.jpg', recordOf(lstatSync(abs), 'file', null, null, {})]]))

    const handled: Promise<void>[] = []
    let received = false
    // the handler answers only once the visitor has gone: as after an on-demand fetch that
    // took longer than the visitor waited
    const server = createServer((req, res) => {
      received = true
      res.once('close', () => handled.push(files.handle(req, res, new URL(req.url!, 'http://x'))))
    })
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const before = openFds()

    const visitor = request({ host: '127.0.0.1', port, path: '/files/uploads/photo.jpg', agent: false })
    visitor.on('error', () => undefined)
    visitor.end()
    await until(() => received, 'the request reached the server')
    visitor.destroy()
    await until(() => handled.length === 1, 'the handler ran after the visitor left')

    let done = false
    void handled[0]!.then(() => (done = true))
    await until(() => done, 'the request ended (it waited for a close that had already happened)')
    await until(() => openFds() <= before, 'the file served is closed')
  })

  it('sends the bytes to a visitor who stays', async () => {
    const root = tempDir()
    mkdirSync(join(root, 'uploads'))
    const abs = join(root, 'uploads', 'a.png')
    const bytes = Buffer.alloc(512 * 1024, 3)
    writeFileSync(abs, bytes)
    const files = filesOn(root, new Map([['uploads/a.png', recordOf(lstatSync(abs), 'file', null, null, {})]]))
    const server = createServer((req, res) => void files.handle(req, res, new URL(req.url!, 'http://x')))
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const before = openFds()
    const body = await new Promise<{ status: number; type: string; data: Buffer }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/files/uploads/a.png', agent: false, headers: { connection: 'close' } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), data: Buffer.concat(chunks) }))
      }).on('error', reject).end()
    })
    expect(body.status).toBe(200)
    expect(body.type).toBe('image/png')
    expect(body.data.equals(bytes)).toBe(true)
    await until(() => openFds() <= before, 'the file served is closed')
  })
})
