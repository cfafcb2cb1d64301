import { describe, expect, it } from 'vitest'
import type { PeerStatus } from '../packages/shared/dist/index.js'
import type { Agent, AgentStatus } from './helpers/agent.ts'
import { newSecret, runCli } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { until } from './helpers/until.ts'

/**
 * Status shows each peer's role as the peer proved it in its hello, bound to the connection:
 * a read-write peer signs with the folder's writer key, a read-only one MACs with the read
 * key, an encrypted one proves only the folder secret. Four real agents of all three kinds:
 *
 *   B (rw) ─▶ A (rw) ◀─ R (ro) ─▶ E (en) ─▶ A
 *
 * (arrows: who dials whom). An encrypted agent has no read key, so it shows R's read-only
 * proof as unverified; every other role is verified.
 */
describe('peer roles in status', () => {
  const harness = useHarness()

  it('each agent shows how it found every peer and the role the peer proved (human and --json)', async () => {
    const secret = await newSecret()
    const ro = (await runCli(['secret', 'readonly', secret])).stdout.trim()
    const en = (await runCli(['secret', 'encrypted', secret])).stdout.trim()
    const a = await harness.agent({ name: 'a', secret })
    const b = await harness.agent({ name: 'b', secret, peers: [a.address] })
    const e = await harness.agent({ name: 'e', secret: en, peers: [a.address] })
    const r = await harness.agent({ name: 'r', secret: ro, peers: [a.address, e.address] })
    await a.start()
    await e.start()
    await Promise.all([b.start(), r.start()])
    const [sa, sb, sr, se] = (await Promise.all([a, b, r, e].map((x) => x.status()))) as [AgentStatus, AgentStatus, AgentStatus, AgentStatus]
    expect([sa.role, sb.role, sr.role, se.role]).toEqual(['rw', 'rw', 'ro', 'en'])
    // configured peers only: no DHT discovery, in either kind of daemon
    expect([sa.discovery, sb.discovery, sr.discovery, se.discovery]).toEqual([null, null, null, null])

    /** the peer entry `from` shows for `to`, once connected */
    const peerOf = (from: Agent, to: AgentStatus) =>
      until(async () => ((await from.status()).peers as unknown as PeerStatus[]).find((p) => p.connected && p.deviceId === to.deviceId), {
        timeoutMs: 20_000,
        message: `${from.name} is connected to ${to.deviceId.slice(0, 7)}`
      })

    expect(await peerOf(a, sb)).toMatchObject({ source: 'inbound', role: 'rw', roleVerified: true })
    expect(await peerOf(a, sr)).toMatchObject({ source: 'inbound', role: 'ro', roleVerified: true })
    expect(await peerOf(a, se)).toMatchObject({ source: 'inbound', role: 'en', roleVerified: true })
    expect(await peerOf(b, sa)).toMatchObject({ source: 'configured', role: 'rw', roleVerified: true })
    expect(await peerOf(r, sa)).toMatchObject({ source: 'configured', role: 'rw', roleVerified: true })
    expect(await peerOf(r, se)).toMatchObject({ source: 'configured', role: 'en', roleVerified: true })
    expect(await peerOf(e, sa)).toMatchObject({ source: 'configured', role: 'rw', roleVerified: true })
    expect(await peerOf(e, sr)).toMatchObject({ source: 'inbound', role: 'ro', roleVerified: false })

    // the human form says the same
    const human = async (x: Agent) => (await runCli(['status', '--control', x.control])).stdout
    const line = (text: string, deviceId: string) => text.split('\n').find((l) => l.includes(` ${deviceId.slice(0, 7)} `)) ?? ''
    const humanA = await human(a)
    expect(line(humanA, sb.deviceId)).toMatch(/^ {2}connected +\S+ 127\.0\.0\.1:\d+ \(inbound, read-write\)/)
    expect(line(humanA, sr.deviceId)).toMatch(/\(inbound, read-only\)/)
    expect(line(humanA, se.deviceId)).toMatch(/\(inbound, encrypted\)/)
    const humanE = await human(e)
    expect(line(humanE, sa.deviceId)).toMatch(/\(configured, read-write\)/)
    expect(line(humanE, sr.deviceId)).toMatch(/\(inbound, read-only \(unverified\)\)/)
    const humanR = await human(r)
    expect(line(humanR, se.deviceId)).toMatch(/\(configured, encrypted\)/)

    // the 'peer connected' log line names the role too
    const connected = a.stdout.split('\n').filter((l) => l.includes('"msg":"peer connected"')).map((l) => JSON.parse(l) as { device: string; role: string })
    expect(connected.find((rec) => rec.device === sr.deviceId.slice(0, 7))?.role).toBe('ro')
    expect(connected.find((rec) => rec.device === se.deviceId.slice(0, 7))?.role).toBe('en')
  })
})
