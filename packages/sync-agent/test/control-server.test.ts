import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SyncError, type RestoreRequest, type StatusReport } from '@sync-agent/shared'
import { listVersions, rescan, restoreVersion, setPaused } from '../src/control/control-client.js'
import { ControlServer, type ControlHandlers } from '../src/control/control-server.js'
import { createLogger } from '../src/log.js'

let dir: string
let server: ControlServer | null
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sa-control-'))
  server = null
})
afterEach(async () => {
  await server?.close()
  rmSync(dir, { recursive: true, force: true })
})

const base: ControlHandlers = { status: () => ({}) as StatusReport, acceptDeletes: () => ({ accepted: 0 }), revert: () => ({ reverting: 0 }) }

async function serve(handlers: ControlHandlers): Promise<string> {
  const socketPath = join(dir, 'control.sock')
  server = new ControlServer(socketPath, handlers, createLogger('silent'))
  await server.ready()
  return socketPath
}

/** a raw POST /restore with `body`: the status and the parsed answer */
function post(socketPath: string, body: string): Promise<{ status: number; answer: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/restore', method: 'POST' }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, answer: JSON.parse(Buffer.concat(chunks).toString('utf8')) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('control socket: versions, restore, rescan', () => {
  it('passes the request through and the answer back; an error comes back as a SyncError with its code', async () => {
    const asked: RestoreRequest[] = []
    const socketPath = await serve({
      ...base,
      versions: async (path) => ({ dir: '/v', versions: [], truncated: path === 'cut' }),
      restore: async (r) => {
        asked.push(r)
        if (r.path === 'busy') throw new SyncError('E_REFUSED', 'busy changed while it was being restored')
        if (r.path === 'gone') throw new SyncError('E_NOT_FOUND', 'no version of gone')
        return { path: r.path, restored: { path: r.path, name: 'n', stamp: 's', madeAt: 'm', size: 0, mtimeMs: 0 }, replacedKeptAs: null }
      }
    })
    expect(await listVersions(socketPath, 'cut')).toEqual({ dir: '/v', versions: [], truncated: true })
    expect((await restoreVersion(socketPath, { path: 'a b/ü.txt', version: 's' })).path).toBe('a b/ü.txt')
    expect(asked).toEqual([{ path: 'a b/ü.txt', version: 's' }])
    await expect(restoreVersion(socketPath, { path: 'busy' })).rejects.toMatchObject({ code: 'E_REFUSED', message: 'busy changed while it was being restored' })
    await expect(restoreVersion(socketPath, { path: 'gone' })).rejects.toMatchObject({ code: 'E_NOT_FOUND', message: 'no version of gone' })
  })

  it('a malformed restore request is refused with what is wrong, before any handler runs', async () => {
    let calls = 0
    const socketPath = await serve({ ...base, restore: async () => { calls++; throw new Error('not reached') } })
    expect(await post(socketPath, 'not json')).toEqual({ status: 400, answer: { code: 'E_USAGE', error: 'restore: the request is not JSON' } })
    expect(await post(socketPath, '{"path":3}')).toEqual({ status: 400, answer: { code: 'E_USAGE', error: 'restore: "path" must be a string' } })
    expect(await post(socketPath, '{"path":"a","version":[]}')).toEqual({ status: 400, answer: { code: 'E_USAGE', error: 'restore: "version" must be a string' } })
    expect(await post(socketPath, 'null')).toMatchObject({ status: 400 })
    expect(await post(socketPath, JSON.stringify({ path: 'x'.repeat(70_000) }))).toEqual({ status: 400, answer: { code: 'E_USAGE', error: 'restore: the request is over 65536 bytes' } })
    expect(calls).toBe(0)
  })

  it('an agent without a folder (an encrypted relay) says it keeps no versions', async () => {
    const socketPath = await serve(base)
    await expect(listVersions(socketPath, '')).rejects.toMatchObject({ code: 'E_REFUSED', message: 'an encrypted relay has no folder: it keeps no versions' })
    await expect(restoreVersion(socketPath, { path: 'a' })).rejects.toMatchObject({ code: 'E_REFUSED' })
    await expect(rescan(socketPath)).rejects.toMatchObject({ code: 'E_REFUSED', message: 'an encrypted relay has no folder: nothing to rescan' })
    await expect(setPaused(socketPath, true)).rejects.toMatchObject({ code: 'E_REFUSED', message: 'an encrypted relay has no folder: nothing to pause' })
  })

  it('pause and resume reach the handler, and its answer comes back', async () => {
    const asked: boolean[] = []
    const socketPath = await serve({ ...base, setPaused: async (paused) => (asked.push(paused), { pausedSince: paused ? 1_700_000_000_000 : null }) })
    expect(await setPaused(socketPath, true)).toEqual({ pausedSince: 1_700_000_000_000 })
    expect(await setPaused(socketPath, false)).toEqual({ pausedSince: null })
    expect(asked).toEqual([true, false])
  })
})
