import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { freePorts } from './helpers/ports.ts'
import { scrape } from './helpers/metrics.ts'
import { waitConverged } from './helpers/sync.ts'
import { until } from './helpers/until.ts'

describe('GET /metrics with two real agents', () => {
  const harness = useHarness()

  it('files and bytes in/out, readiness, peers and the last exchange follow a sync; a wrong secret shows as E_AUTH', async () => {
    const secret = await newSecret()
    const [httpA, httpB] = (await freePorts(2)) as [number, number]
    const a = await harness.agent({ name: 'a', secret, env: { SYNC_AGENT_HTTP: `127.0.0.1:${httpA}` } })
    const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_HTTP: `127.0.0.1:${httpB}` } })
    await a.start()
    await b.start()
    await waitConverged([a, b])

    const before = { a: await scrape(httpA), b: await scrape(httpB) }
    for (const s of [before.a, before.b]) {
      expect(s.get('sync_agent_ready')).toBe(1)
      expect(s.get('sync_agent_peers_connected')).toBe(1)
      expect(s.get('sync_agent_files_total{direction="in"}')).toBe(0)
      expect(s.get('sync_agent_files_total{direction="out"}')).toBe(0)
    }
    const exchangeKey = [...before.b.keys()].find((k) => k.startsWith(`sync_agent_peer_last_exchange_timestamp_seconds{peer="${a.address}"`))
    expect(exchangeKey).toBeDefined()

    const writtenAt = Date.now() / 1000
    await fs.mkdir(path.join(a.folder, 'uploads'))
    await fs.writeFile(path.join(a.folder, 'uploads', 'cat.jpg'), Buffer.alloc(5000, 7))
    await waitConverged([a, b])
    // the exchange that brought the file is recorded after it
    const after = await until(
      async () => {
        const s = { a: await scrape(httpA), b: await scrape(httpB) }
        return (s.b.get(exchangeKey!) ?? 0) >= writtenAt ? s : undefined
      },
      { timeoutMs: 10_000, message: "B's last exchange with A is later than the write" }
    )
    expect(after.a.get('sync_agent_files_total{direction="out"}')).toBeGreaterThanOrEqual(1)
    expect(after.a.get('sync_agent_bytes_total{direction="out"}')).toBeGreaterThanOrEqual(5000)
    expect(after.b.get('sync_agent_files_total{direction="in"}')).toBeGreaterThanOrEqual(1)
    expect(after.b.get('sync_agent_bytes_total{direction="in"}')).toBeGreaterThanOrEqual(5000)
    // read from A's folder over our channel, not from A's Hypercore blocks (content/)
    expect(after.b.get('sync_agent_bytes_in_by_source_total{source="peer-folder"}')).toBe(after.b.get('sync_agent_bytes_total{direction="in"}'))
    expect(after.b.get('sync_agent_bytes_in_by_source_total{source="hypercore"}')).toBe(0)
    // no echo: B published nothing, A received nothing
    expect(after.b.get('sync_agent_files_total{direction="out"}')).toBe(0)
    expect(after.a.get('sync_agent_files_total{direction="in"}')).toBe(0)
    expect(after.b.get('sync_agent_folder_files')).toBe(1)
    expect(after.b.get('sync_agent_folder_bytes')).toBe(5000)
    for (const [key, value] of after.b) if (key.startsWith('sync_agent_pending_files{')) expect([key, value]).toEqual([key, 0])
    expect(after.b.get('sync_agent_conflicts_total')).toBe(0)

    // a device with another secret dials A: refused, counted by code
    const [httpC] = (await freePorts(1)) as [number]
    const intruder: Agent = await harness.agent({ name: 'c', secret: await newSecret(), peers: [a.address], env: { SYNC_AGENT_HTTP: `127.0.0.1:${httpC}` } })
    await intruder.start()
    // whichever side checks the other's proof first reports it (as test/auth.test.ts says)
    const authErrors = async () => ((await scrape(httpA)).get('sync_agent_errors_total{code="E_AUTH"}') ?? 0) + ((await scrape(httpC)).get('sync_agent_errors_total{code="E_AUTH"}') ?? 0)
    await until(async () => (await authErrors()) >= 1, { timeoutMs: 20_000, message: 'A or C counts the E_AUTH failure' })
    expect((await scrape(httpA)).get('sync_agent_peers_connected')).toBe(1)
  })
})
