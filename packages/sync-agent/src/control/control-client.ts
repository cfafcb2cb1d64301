import { request } from 'node:http'
import { SyncError, type ErrorCode, type RescanResult, type RestoreRequest, type RestoreResult, type StatusReport, type VersionListing } from '@sync-agent/shared'

/** Asks a running agent over its control socket. */
export function getStatus(socketPath: string, timeoutMs = 5_000): Promise<StatusReport> {
  return call<StatusReport>(socketPath, 'GET', '/status', timeoutMs)
}

/** Applies a held mass delete; returns how many paths were released. */
export function acceptDeletes(socketPath: string, timeoutMs = 5_000): Promise<{ accepted: number }> {
  return call<{ accepted: number }>(socketPath, 'POST', '/accept-deletes', timeoutMs)
}

/** Read-only peers: local changes give way to the shared state; returns how many paths. */
export function revert(socketPath: string, timeoutMs = 5_000): Promise<{ reverting: number }> {
  return call<{ reverting: number }>(socketPath, 'POST', '/revert', timeoutMs)
}

/** The versions kept of a folder path (a file's, and everything under a directory; '' for all). */
export function listVersions(socketPath: string, path: string, timeoutMs = 30_000): Promise<VersionListing> {
  return call<VersionListing>(socketPath, 'GET', `/versions?path=${encodeURIComponent(path)}`, timeoutMs)
}

/** Puts a kept version back in the folder (a large file takes its time: no timeout by default). */
export function restoreVersion(socketPath: string, body: RestoreRequest, timeoutMs = 0): Promise<RestoreResult> {
  return call<RestoreResult>(socketPath, 'POST', '/restore', timeoutMs, body)
}

/** Walks the folder now (as the periodic rescan does); answers once the walk is done. */
export function rescan(socketPath: string, timeoutMs = 0): Promise<RescanResult> {
  return call<RescanResult>(socketPath, 'POST', '/rescan', timeoutMs)
}

/** Holds the sync (`pause`) or lets it go on; answers since when it is paused (null: running). */
export function setPaused(socketPath: string, paused: boolean, timeoutMs = 5_000): Promise<{ pausedSince: number | null }> {
  return call<{ pausedSince: number | null }>(socketPath, 'POST', paused ? '/pause' : '/resume', timeoutMs)
}

function call<T>(socketPath: string, method: 'GET' | 'POST', path: string, timeoutMs: number, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        let parsed: unknown
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        } catch (err) {
          return reject(new SyncError('E_NO_AGENT', `the agent at ${socketPath} sent a malformed answer`, { cause: err }))
        }
        if ((res.statusCode ?? 500) < 400) return resolve(parsed as T)
        // the agent's error: its own code and words
        const { error, code } = (parsed ?? {}) as { error?: unknown; code?: unknown }
        const message = typeof error === 'string' ? error : `the agent answered ${res.statusCode}`
        reject(new SyncError(typeof code === 'string' && code.startsWith('E_') ? (code as ErrorCode) : 'E_IO', message))
      })
    })
    req.on('timeout', () => req.destroy(new SyncError('E_NO_AGENT', `the agent at ${socketPath} did not answer within ${timeoutMs} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof SyncError) return reject(err)
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no agent is running there' : err.message
      reject(new SyncError('E_NO_AGENT', `cannot reach the agent at ${socketPath}: ${why}`, { cause: err }))
    })
    if (body !== undefined) req.setHeader('content-type', 'application/json')
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}
