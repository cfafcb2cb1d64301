import { EXIT, isSyncError, type StatusReport } from '@sync-agent/shared'
import { getStatus } from '../control/control-client.js'
import { formatBytes, formatStatus, transferRates, type TransferRates } from './format-status.js'

/**
 * `sync-agent status --watch`: on a terminal, the status redrawn in place with progress
 * bars; otherwise one line per interval (or one JSON document per line with --json), for
 * logs. Runs until interrupted.
 */
const CLEAR = '\x1b[H\x1b[2J'

export function statusLine(s: StatusReport, rates: TransferRates | null = null): string {
  const classes = s.classes.map((c) => `${c.name}=${c.complete ? 'done' : `${c.pendingFiles}f/${formatBytes(c.pendingBytes)}`}`).join(' ')
  const peers = s.peers.filter((p) => p.connected).length
  const traffic = rates ? ` in=${formatBytes(rates.inPerSecond)}/s out=${formatBytes(rates.outPerSecond)}/s` : ''
  const paused = s.pausedSince != null ? ' PAUSED' : ''
  return `${new Date().toISOString()} state=${s.state}${paused} ready=${s.ready} inSync=${s.inSync} files=${s.files} pending=${s.pending} peers=${peers}/${s.peers.length}${traffic} ${classes}`
}

export async function watchStatus(socketPath: string, opts: { intervalMs: number; json: boolean; tty: boolean }): Promise<number> {
  let stop = false
  let wake: (() => void) | null = null
  const onSignal = () => {
    stop = true
    wake?.()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  // the previous snapshot's traffic, for the rates since then
  let last: { at: number; transfer: StatusReport['transfer'] } | null = null
  try {
    while (!stop) {
      let text: string
      try {
        const s = await getStatus(socketPath)
        const at = performance.now()
        const rates = last ? transferRates(last.transfer, s.transfer, at - last.at) : null
        last = { at, transfer: s.transfer }
        text = opts.json ? JSON.stringify(s) : opts.tty ? formatStatus(s, { bars: true, rates }) : statusLine(s, rates)
      } catch (err) {
        if (!isSyncError(err)) throw err
        text = opts.json ? JSON.stringify({ error: err.message }) : `${new Date().toISOString()} ${err.message}`
      }
      process.stdout.write(opts.tty && !opts.json ? CLEAR + text + '\n' : text + '\n')
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, opts.intervalMs)
      })
    }
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
  return EXIT.ok
}
