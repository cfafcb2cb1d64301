import { EXIT, isSyncError } from '@sync-agent/shared'
import { getStatus } from '../control/control-client.js'

/**
 * `sync-agent wait-ready`: for container entrypoints that must not serve before the theme
 * files are there. Asks the agent until it says ready (exit 0) or the deadline passes
 * (exit 1). An agent that is not up yet is waited for too.
 */
const POLL_MS = 250

export async function waitReady(socketPath: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let lastReason = 'the agent did not answer'
  for (;;) {
    try {
      const s = await getStatus(socketPath, Math.max(100, Math.min(5_000, deadline - Date.now())))
      if (s.ready) {
        process.stdout.write(`ready: ${s.readyReason}\n`)
        return EXIT.ok
      }
      lastReason = s.readyReason
    } catch (err) {
      if (!isSyncError(err)) throw err
      lastReason = err.message
    }
    const left = deadline - Date.now()
    if (left <= 0) {
      process.stderr.write(`sync-agent: not ready after ${Math.round(timeoutMs / 1000)} s: ${lastReason}\n`)
      return EXIT.failure
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)))
  }
}
