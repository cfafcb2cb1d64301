import type { StatusReport } from '@sync-agent/shared'

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

/** The human summary of `sync-agent status`. */
export function formatStatus(s: StatusReport): string {
  const lines: string[] = []
  const flag = (b: boolean) => (b ? 'yes' : 'no')
  lines.push(`device   ${s.deviceId.slice(0, 7)} (${s.deviceId})`)
  lines.push(`folder   ${s.folder} [${s.folderId}]`)
  lines.push(`state    ${s.state}   ready: ${flag(s.ready)}   in sync: ${flag(s.inSync)}`)
  lines.push(`files    ${s.files} (${formatBytes(s.bytes)})   members: ${s.members}   conflicts: ${s.conflicts}`)
  if (s.pending > 0) {
    lines.push(`pending  ${s.pending} paths, ${formatBytes(s.pendingBytes)}`)
    for (const [dir, p] of Object.entries(s.pendingByDir).sort((a, b) => b[1].bytes - a[1].bytes)) {
      lines.push(`           ${dir.padEnd(20)} ${String(p.files).padStart(7)} files  ${formatBytes(p.bytes)}`)
    }
  }
  if (Math.abs(s.clockOffsetMs) >= 1_000) {
    lines.push(`clock    peers are ${(Math.abs(s.clockOffsetMs) / 1000).toFixed(0)} s ${s.clockOffsetMs > 0 ? 'ahead of' : 'behind'} this device (publish times follow them)`)
  }
  lines.push(`peers    ${s.peers.length === 0 ? 'none configured' : ''}`)
  for (const p of s.peers) {
    const who = p.deviceId ? p.deviceId.slice(0, 7) : '-------'
    const last = p.lastExchangeAt ? `last exchange ${new Date(p.lastExchangeAt).toISOString()}` : ''
    lines.push(`  ${p.connected ? 'connected   ' : 'disconnected'} ${who} ${p.address} (${p.source}) ${p.lastError && !p.connected ? `error ${p.lastError}` : last}`.trimEnd())
  }
  for (const e of s.errors.slice(-5)) lines.push(`error    ${e.code} ${e.message}`)
  return lines.join('\n')
}
