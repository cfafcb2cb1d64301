import { describe, expect, it } from 'vitest'
import type { ClassStatus, StatusReport } from '@sync-agent/shared'
import { AgentMetrics } from '../src/metrics/agent-metrics.js'

/** `name{a="x",b="y"}` → value, from the Prometheus text format (comments skipped). */
function samples(body: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`)
    out.set(m[1] as string, Number(m[2]))
  }
  return out
}

function classStatus(name: string, pendingFiles: number, pendingBytes: number): ClassStatus {
  return { name, requiredForReady: name === 'themes', complete: pendingFiles === 0, pendingFiles, pendingBytes, doneFiles: 0, doneBytes: 0, filesPerSecond: 0, bytesPerSecond: 0, etaSeconds: null }
}

function report(overrides: Partial<StatusReport> = {}): StatusReport {
  return {
    version: '0.1.0',
    deviceId: 'DEVICEA',
    shortId: 'DEVICEA',
    folder: '/srv/wp-content',
    folderId: 'abcd1234',
    role: 'rw',
    localChanges: null,
    heldDeletes: null,
    clockOffsetMs: 0,
    state: 'syncing',
    ready: false,
    readyReason: 'waiting for a peer',
    readyAt: null,
    inSync: false,
    files: 12,
    bytes: 3456,
    pending: 4,
    pendingBytes: 700,
    pendingByDir: {},
    classes: [classStatus('themes', 3, 600), classStatus('uploads', 1, 100), classStatus('other', 0, 0)],
    peers: [
      { address: '10.0.0.2:7657', connected: true, deviceId: 'DEVICEB', source: 'configured', role: 'rw', roleVerified: true, notServingSince: null, lastError: null, lastExchangeAt: 1_700_000_000_500 },
      { address: '10.0.0.3:7657', connected: false, deviceId: null, source: 'configured', role: null, roleVerified: false, notServingSince: null, lastError: 'ECONNREFUSED', lastExchangeAt: null }
    ],
    discovery: null,
    transfer: { receivedBytes: 5_000, sentBytes: 70_000, maxSendKiBps: 0, maxRecvKiBps: 0, limitLan: true, reusedBytes: 3_000_000 },
    pausedSince: null,
    versions: null,
    members: 2,
    dataDirBytes: 123_456_789,
    conflicts: 0,
    errors: [],
    startedAt: 1_699_999_000_000,
    ...overrides
  }
}

describe('AgentMetrics', () => {
  it('renders the status snapshot as gauges in the Prometheus text format', async () => {
    const metrics = new AgentMetrics(() => report())
    const { contentType, body } = await metrics.render()
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/)
    const s = samples(body)
    expect(s.get('sync_agent_ready')).toBe(0)
    expect(s.get('sync_agent_in_sync')).toBe(0)
    expect(s.get('sync_agent_paused')).toBe(0)
    expect(s.get('sync_agent_peers_connected')).toBe(1)
    expect(s.get('sync_agent_members')).toBe(2)
    expect(s.get('sync_agent_folder_files')).toBe(12)
    expect(s.get('sync_agent_folder_bytes')).toBe(3456)
    expect(s.get('sync_agent_data_dir_bytes')).toBe(123_456_789)
    expect(s.get('sync_agent_pending_files{class="themes"}')).toBe(3)
    expect(s.get('sync_agent_pending_bytes{class="themes"}')).toBe(600)
    expect(s.get('sync_agent_pending_files{class="uploads"}')).toBe(1)
    expect(s.get('sync_agent_class_complete{class="other"}')).toBe(1)
    expect(s.get('sync_agent_peer_connected{peer="10.0.0.3:7657",device=""}')).toBe(0)
    // last exchange per peer, unix seconds; a peer never exchanged with has no sample
    expect(s.get('sync_agent_peer_last_exchange_timestamp_seconds{peer="10.0.0.2:7657",device="DEVICEB"}')).toBe(1_700_000_000.5)
    expect([...s.keys()].filter((k) => k.includes('10.0.0.3') && k.startsWith('sync_agent_peer_last_exchange'))).toEqual([])
    expect(s.get('sync_agent_start_time_seconds')).toBe(1_699_999_000)
    expect(s.get('sync_agent_network_bytes_total{direction="in"}')).toBe(5_000)
    expect(s.get('sync_agent_network_bytes_total{direction="out"}')).toBe(70_000)
    expect(s.get('sync_agent_reused_bytes_total')).toBe(3_000_000)
    expect(s.get('sync_agent_info{version="0.1.0",device="DEVICEA",folder_id="abcd1234"}')).toBe(1)
    // counters start at 0 for both directions, so rate() works from the first scrape
    expect(s.get('sync_agent_files_total{direction="in"}')).toBe(0)
    expect(s.get('sync_agent_bytes_total{direction="out"}')).toBe(0)
    expect(s.get('sync_agent_conflicts_total')).toBe(0)
    // Node's process metrics come along
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(0)
  })

  it('counts files and bytes in and out, conflicts and errors by code', async () => {
    const metrics = new AgentMetrics(() => report())
    metrics.fileIn(100)
    metrics.fileIn(0)
    metrics.fileOut(2048)
    metrics.conflict()
    metrics.error('E_AUTH')
    metrics.error('E_AUTH')
    metrics.error('E_IO')
    metrics.error('not a code "}\n')
    const s = samples((await metrics.render()).body)
    expect(s.get('sync_agent_files_total{direction="in"}')).toBe(2)
    expect(s.get('sync_agent_bytes_total{direction="in"}')).toBe(100)
    expect(s.get('sync_agent_files_total{direction="out"}')).toBe(1)
    expect(s.get('sync_agent_bytes_total{direction="out"}')).toBe(2048)
    expect(s.get('sync_agent_conflicts_total')).toBe(1)
    expect(s.get('sync_agent_errors_total{code="E_AUTH"}')).toBe(2)
    expect(s.get('sync_agent_errors_total{code="E_IO"}')).toBe(1)
    // a code that is not one keeps the label set small and the output parseable
    expect(s.get('sync_agent_errors_total{code="OTHER"}')).toBe(1)
  })

  it('each scrape reads a fresh snapshot: a peer or class that went away leaves no stale series', async () => {
    let current = report()
    const metrics = new AgentMetrics(() => current)
    await metrics.render()
    current = report({ ready: true, peers: [], classes: [classStatus('themes', 0, 0)], pausedSince: 1_700_000_000_000, dataDirBytes: 5_000 })
    const s = samples((await metrics.render()).body)
    expect(s.get('sync_agent_data_dir_bytes')).toBe(5_000)
    expect(s.get('sync_agent_ready')).toBe(1)
    expect(s.get('sync_agent_paused')).toBe(1)
    expect(s.get('sync_agent_peers_connected')).toBe(0)
    expect([...s.keys()].filter((k) => k.startsWith('sync_agent_peer_'))).toEqual([])
    expect(s.get('sync_agent_pending_files{class="themes"}')).toBe(0)
    expect(s.has('sync_agent_pending_files{class="uploads"}')).toBe(false)
  })

  it('two agents in one process keep separate registries', async () => {
    const a = new AgentMetrics(() => report())
    const b = new AgentMetrics(() => report())
    a.fileIn(5)
    expect(samples((await b.render()).body).get('sync_agent_files_total{direction="in"}')).toBe(0)
    expect(samples((await a.render()).body).get('sync_agent_files_total{direction="in"}')).toBe(1)
  })
})
