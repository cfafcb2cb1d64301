import { describe, expect, it } from 'vitest'
import type { ClassStatus, DiscoveryStatus, PeerStatus } from '@sync-agent/shared'
import { classFraction, formatClass, formatDiscovery, formatDuration, formatPeer, formatTransfer, progressBar, transferRates } from '../src/cli/format-status.js'

const MiB = 1024 * 1024
const uploads: ClassStatus = {
  name: 'uploads',
  requiredForReady: false,
  complete: false,
  pendingFiles: 30,
  pendingBytes: 75 * MiB,
  doneFiles: 10,
  doneBytes: 25 * MiB,
  filesPerSecond: 2,
  bytesPerSecond: 5 * MiB,
  etaSeconds: 15
}

describe('status formatting', () => {
  it('draws a bar of the share done, by bytes', () => {
    expect(classFraction(uploads)).toBe(0.25)
    expect(progressBar(0.25, 20)).toBe('[#####...............]')
    expect(progressBar(2, 4)).toBe('[####]')
    expect(formatClass(uploads, true)).toBe('  uploads    [#####...............]  25%  30 files (75.0 MiB) left  5.0 MiB/s 2 files/s  ETA 15s')
    expect(formatClass(uploads, false)).not.toContain('[')
  })

  it('counts files when a class has no bytes, and marks the classes needed for ready', () => {
    const critical: ClassStatus = { ...uploads, name: 'critical', requiredForReady: true, complete: true, pendingFiles: 0, pendingBytes: 0, doneFiles: 4, doneBytes: 0 }
    expect(classFraction({ ...critical, complete: false, pendingFiles: 4 })).toBe(0.5)
    expect(formatClass(critical, true)).toBe('  critical*  [####################] 100%  complete')
  })

  it('shows the peer traffic and the bandwidth limits', () => {
    expect(formatTransfer({ receivedBytes: 3 * MiB, sentBytes: 512, maxSendKiBps: 0, maxRecvKiBps: 0, limitLan: true, reusedBytes: 0 })).toBe('network  received 3.0 MiB (no limit), sent 512 B (no limit)')
    expect(formatTransfer({ receivedBytes: 0, sentBytes: 0, maxSendKiBps: 512, maxRecvKiBps: 64, limitLan: true, reusedBytes: 0 })).toBe('network  received 0 B (at most 64 KiB/s), sent 0 B (at most 512 KiB/s)')
    expect(formatTransfer({ receivedBytes: 0, sentBytes: 0, maxSendKiBps: 512, maxRecvKiBps: 0, limitLan: false, reusedBytes: 0 })).toBe('network  received 0 B (no limit), sent 0 B (at most 512 KiB/s), LAN peers not limited')
    // changed files fetched as the blocks that differ
    expect(formatTransfer({ receivedBytes: MiB, sentBytes: 0, maxSendKiBps: 0, maxRecvKiBps: 0, limitLan: true, reusedBytes: 2 * MiB })).toBe('network  received 1.0 MiB (no limit), sent 0 B (no limit), 2.0 MiB of changed files reused from their older versions here')
    // --watch: the rates since the previous snapshot
    const before = { receivedBytes: MiB, sentBytes: 4096, maxSendKiBps: 0, maxRecvKiBps: 0, limitLan: true, reusedBytes: 0 }
    const after = { ...before, receivedBytes: 4 * MiB, sentBytes: 4096 }
    const rates = transferRates(before, after, 2000)
    expect(rates).toEqual({ inPerSecond: 1.5 * MiB, outPerSecond: 0 })
    expect(formatTransfer(after, rates)).toBe('network  received 4.0 MiB (no limit), sent 4.0 KiB (no limit); now 1.5 MiB/s in, 0 B/s out')
    // an agent restarted between two snapshots counts from 0 again: no negative rate
    expect(transferRates(after, before, 1000)).toEqual({ inPerSecond: 0, outPerSecond: 0 })
    expect(transferRates(before, after, 0)).toBeNull()
  })

  it('formats durations', () => {
    expect(formatDuration(null)).toBe('--')
    expect(formatDuration(42)).toBe('42s')
    expect(formatDuration(125)).toBe('2m05s')
    expect(formatDuration(7260)).toBe('2h01m')
  })

  const peer: PeerStatus = {
    address: '10.0.0.2:7657',
    connected: true,
    deviceId: 'ABCDEFGHIJKLMNOP',
    source: 'configured',
    role: 'rw',
    roleVerified: true,
    lastError: null,
    notServingSince: null,
    lastExchangeAt: Date.UTC(2026, 10, 29, 1, 2, 3)
  }

  it.each<[string, Partial<PeerStatus>, string]>([
    ['a read-write peer', {}, '  connected    ABCDEFG 10.0.0.2:7657 (configured, read-write) last exchange 2026-11-29T01:02:03.000Z'],
    ['a peer with the traffic on its connection', { receivedBytes: 3 * MiB, sentBytes: 2048 }, '  connected    ABCDEFG 10.0.0.2:7657 (configured, read-write) last exchange 2026-11-29T01:02:03.000Z  received 3.0 MiB, sent 2.0 KiB'],
    ['a read-only peer found on the DHT', { role: 'ro', source: 'dht' }, '  connected    ABCDEFG 10.0.0.2:7657 (dht, read-only) last exchange 2026-11-29T01:02:03.000Z'],
    ['an encrypted peer that dialled us', { role: 'en', source: 'inbound', lastExchangeAt: null }, '  connected    ABCDEFG 10.0.0.2:7657 (inbound, encrypted)'],
    ['a read-only proof an encrypted agent cannot check', { role: 'ro', roleVerified: false }, '  connected    ABCDEFG 10.0.0.2:7657 (configured, read-only (unverified)) last exchange 2026-11-29T01:02:03.000Z'],
    ['a peer not serving what it claims', { notServingSince: Date.UTC(2026, 10, 29, 1, 5, 0) }, '  connected    ABCDEFG 10.0.0.2:7657 (configured, read-write) NOT SERVING what it claims since 2026-11-29T01:05:00.000Z'],
    ['a peer never reached', { connected: false, deviceId: null, role: null, roleVerified: false, lastError: 'ECONNREFUSED', lastExchangeAt: null }, '  disconnected ------- 10.0.0.2:7657 (configured) error ECONNREFUSED']
  ])('one line per peer: %s', (_name, change, line) => {
    expect(formatPeer({ ...peer, ...change })).toBe(line)
  })

  const discovery: DiscoveryStatus = {
    dht: ['10.0.0.1:49737'],
    node: null,
    network: 'online',
    lookupsStarted: 3,
    lookupsDone: 3,
    lastLookupAt: Date.UTC(2026, 10, 29, 1, 2, 3),
    devicesFound: 1,
    connectsAttempted: 2,
    connectsOpened: 1,
    connectsAccepted: 0,
    lastError: 'HOLEPUNCH_ABORTED'
  }

  it.each<[string, Partial<DiscoveryStatus>, string]>([
    ['on bootstrap nodes, after a failed attempt', {}, 'discover DHT 10.0.0.1:49737, online: 1 device found in 3 lookups, connects 1/2 opened, 0 accepted, last error HOLEPUNCH_ABORTED'],
    ['running the node itself, nothing found yet', { node: '10.0.0.1:49737', lookupsDone: 1, devicesFound: 0, connectsAttempted: 0, connectsOpened: 0, lastError: null }, 'discover DHT 10.0.0.1:49737 (runs the node 10.0.0.1:49737), online: 0 devices found in 1 lookup, connects 0/0 opened, 0 accepted'],
    ['on the public DHT, offline', { dht: 'public', network: 'offline', lastError: null }, 'discover public DHT, offline: 1 device found in 3 lookups, connects 1/2 opened, 0 accepted']
  ])('one line on discovery: %s', (_name, change, line) => {
    expect(formatDiscovery({ ...discovery, ...change })).toBe(line)
  })
})
