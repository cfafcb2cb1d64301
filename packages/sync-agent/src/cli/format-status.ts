import type { ClassStatus, DiscoveryStatus, PeerStatus, StatusReport, TransferStatus } from '@sync-agent/shared'

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

const ROLE = { rw: 'read-write', ro: 'read-only', en: 'encrypted' } as const

export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '--'
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`
}

/** Share of a class done, by bytes when it has bytes, else by files. */
export function classFraction(c: ClassStatus): number {
  const totalBytes = c.doneBytes + c.pendingBytes
  if (totalBytes > 0) return c.doneBytes / totalBytes
  const totalFiles = c.doneFiles + c.pendingFiles
  return totalFiles > 0 ? c.doneFiles / totalFiles : c.complete ? 1 : 0
}

export function progressBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, fraction))
  const full = Math.round(f * width)
  return '[' + '#'.repeat(full) + '.'.repeat(width - full) + ']'
}

/** One line per priority class: progress, files, bytes, rate, ETA. */
export function formatClass(c: ClassStatus, bars: boolean): string {
  const fraction = c.pendingFiles === 0 && c.complete ? 1 : classFraction(c)
  const name = (c.name + (c.requiredForReady ? '*' : '')).padEnd(10)
  const state = c.complete ? 'complete' : c.pendingFiles > 0 ? `${c.pendingFiles} files (${formatBytes(c.pendingBytes)}) left` : 'waiting for the index'
  const bar = bars ? progressBar(fraction, 20) + ' ' : ''
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4)
  const rate = c.pendingFiles > 0 ? `  ${formatBytes(c.bytesPerSecond)}/s ${c.filesPerSecond} files/s  ETA ${formatDuration(c.etaSeconds)}` : ''
  return `  ${name} ${bar}${pct}  ${state}${rate}`
}

/** One line per peer: state, device, address, how it was found and its proven role, last exchange or error. */
export function formatPeer(p: PeerStatus): string {
  const who = p.deviceId ? p.deviceId.slice(0, 7) : '-------'
  const role = p.role ? `, ${ROLE[p.role]}${p.roleVerified ? '' : ' (unverified)'}` : ''
  const last = p.notServingSince
    ? `NOT SERVING what it claims since ${new Date(p.notServingSince).toISOString()}`
    : p.lastExchangeAt
      ? `last exchange ${new Date(p.lastExchangeAt).toISOString()}`
      : ''
  const traffic = p.connected && p.receivedBytes != null && p.sentBytes != null ? `  received ${formatBytes(p.receivedBytes)}, sent ${formatBytes(p.sentBytes)}` : ''
  return `  ${p.connected ? 'connected   ' : 'disconnected'} ${who} ${p.address} (${p.source}${role}) ${p.lastError && !p.connected ? `error ${p.lastError}` : last}`.trimEnd() + traffic
}

/** One line on DHT discovery: where it looks, what it found, the connections it made. */
export function formatDiscovery(d: DiscoveryStatus): string {
  const where = d.dht === 'public' ? 'public DHT' : `DHT ${d.dht.join(', ')}`
  const node = d.node ? ` (runs the node ${d.node})` : ''
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  const found = `${plural(d.devicesFound, 'device')} found in ${plural(d.lookupsDone, 'lookup')}`
  const connects = `connects ${d.connectsOpened}/${d.connectsAttempted} opened, ${d.connectsAccepted} accepted`
  return `discover ${where}${node}, ${d.network}: ${found}, ${connects}${d.lastError ? `, last error ${d.lastError}` : ''}`
}

/** The human summary of `sync-agent status`; `bars`: draw progress bars (a terminal). */
/** Bytes per second received and sent between two status snapshots (`status --watch`). */
export interface TransferRates {
  inPerSecond: number
  outPerSecond: number
}

export function transferRates(before: TransferStatus, after: TransferStatus, elapsedMs: number): TransferRates | null {
  if (!(elapsedMs > 0)) return null
  const per = (delta: number) => Math.max(0, delta) / (elapsedMs / 1000)
  return { inPerSecond: per(after.receivedBytes - before.receivedBytes), outPerSecond: per(after.sentBytes - before.sentBytes) }
}

/** One line on the peer traffic since the start and the bandwidth limits (and the rates now, when watched). */
export function formatTransfer(t: TransferStatus, rates: TransferRates | null = null): string {
  const limit = (kib: number): string => (kib === 0 ? 'no limit' : `at most ${kib} KiB/s`)
  const now = rates ? `; now ${formatBytes(rates.inPerSecond)}/s in, ${formatBytes(rates.outPerSecond)}/s out` : ''
  const lan = !t.limitLan && (t.maxSendKiBps > 0 || t.maxRecvKiBps > 0) ? ', LAN peers not limited' : ''
  const reused = t.reusedBytes > 0 ? `, ${formatBytes(t.reusedBytes)} of changed files reused from their older versions here` : ''
  return `network  received ${formatBytes(t.receivedBytes)} (${limit(t.maxRecvKiBps)}), sent ${formatBytes(t.sentBytes)} (${limit(t.maxSendKiBps)})${lan}${reused}${now}`
}

export function formatStatus(s: StatusReport, opts: { bars?: boolean; rates?: TransferRates | null } = {}): string {
  const lines: string[] = []
  const flag = (b: boolean) => (b ? 'yes' : 'no')
  lines.push(`device   ${s.deviceId.slice(0, 7)} (${s.deviceId})`)
  lines.push(`folder   ${s.folder} [${s.folderId}]`)
  lines.push(`state    ${s.state}   ready: ${flag(s.ready)}   in sync: ${flag(s.inSync)}   role: ${ROLE[s.role]}`)
  lines.push(`ready    ${s.readyReason}`)
  if (s.classes.length > 0) {
    lines.push('classes  (* needed for ready)')
    for (const c of s.classes) lines.push(formatClass(c, opts.bars ?? false))
  }
  const dataDir = s.dataDirBytes == null ? '' : `   data dir ${formatBytes(s.dataDirBytes)}`
  lines.push(`files    ${s.files} (${formatBytes(s.bytes)})${dataDir}   members: ${s.members}   conflicts: ${s.conflicts}`)
  if (s.pending > 0) {
    lines.push(`pending  ${s.pending} paths, ${formatBytes(s.pendingBytes)}`)
    for (const [dir, p] of Object.entries(s.pendingByDir).sort((a, b) => b[1].bytes - a[1].bytes)) {
      lines.push(`           ${dir.padEnd(20)} ${String(p.files).padStart(7)} files  ${formatBytes(p.bytes)}`)
    }
  }
  if (s.localChanges) {
    lines.push(`LOCAL    ${s.localChanges.count} local changes not shared (read-only): ${s.localChanges.sample.slice(0, 5).join(', ')}`)
    lines.push('           run `sync-agent revert` to restore the shared state')
  }
  if (s.pausedSince != null) {
    lines.push(`PAUSED   since ${new Date(s.pausedSince).toISOString()}: nothing is applied or published (but files pages ask for)`)
    lines.push('           run `sync-agent resume` to go on')
  }
  if (s.heldDeletes) {
    const h = s.heldDeletes
    lines.push(`HELD     ${h.count} remote deletes (more than ${Math.round(h.share * 100)}% of ${h.folderPaths} paths) since ${new Date(h.since).toISOString()}`)
    lines.push(`           e.g. ${h.sample.slice(0, 5).join(', ')}`)
    lines.push('           run `sync-agent accept-deletes` to apply them')
  }
  if (Math.abs(s.clockOffsetMs) >= 1_000) {
    lines.push(`clock    peers are ${(Math.abs(s.clockOffsetMs) / 1000).toFixed(0)} s ${s.clockOffsetMs > 0 ? 'ahead of' : 'behind'} this device (publish times follow them)`)
  }
  if (s.versions) {
    const { dir, keepDays, keptSinceStart } = s.versions
    lines.push(`versions ${keptSinceStart} kept since start in ${dir} (${keepDays === 0 ? 'kept for ever' : `kept ${keepDays} days`})`)
  }
  if (s.discovery) lines.push(formatDiscovery(s.discovery))
  lines.push(formatTransfer(s.transfer, opts.rates ?? null))
  lines.push(`peers    ${s.peers.length === 0 ? (s.discovery ? 'none yet' : 'none configured') : ''}`)
  for (const p of s.peers) lines.push(formatPeer(p))
  for (const e of s.errors.slice(-5)) lines.push(`error    ${e.code} ${e.message}`)
  return lines.join('\n')
}
