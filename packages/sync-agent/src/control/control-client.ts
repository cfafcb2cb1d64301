import { request } from 'node:http'
import { SyncError, type StatusReport } from '@sync-agent/shared'

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

function call<T>(socketPath: string, method: 'GET' | 'POST', path: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T)
        } catch (err) {
          reject(new SyncError('E_NO_AGENT', `the agent at ${socketPath} sent a malformed answer`, { cause: err }))
        }
      })
    })
    req.on('timeout', () => req.destroy(new SyncError('E_NO_AGENT', `the agent at ${socketPath} did not answer within ${timeoutMs} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof SyncError) return reject(err)
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no agent is running there' : err.message
      reject(new SyncError('E_NO_AGENT', `cannot reach the agent at ${socketPath}: ${why}`, { cause: err }))
    })
    req.end()
  })
}
