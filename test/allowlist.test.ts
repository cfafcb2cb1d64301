import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { parseRecords } from './helpers/hostile-scene.ts'
import { freePorts } from './helpers/ports.ts'
import { waitConverged } from './helpers/sync.ts'
import { stays, until } from './helpers/until.ts'

/** SYNC_AGENT_ALLOW: on top of the secret, only listed device ids may connect. */
describe('allow list', () => {
  const harness = useHarness()

  it('a device that holds the secret but is not listed is refused with a clear log line; a listed one syncs', async () => {
    const secret = await newSecret()
    const [portA] = await freePorts(1)
    const addressA = `127.0.0.1:${portA}`
    const allowed = await harness.agent({ name: 'allowed', secret, peers: [addressA] })
    const stranger = await harness.agent({ name: 'stranger', secret, peers: [addressA] })
    await Promise.all([allowed.start(), stranger.start()])
    const allowedId = (await allowed.status()).deviceId
    const strangerId = (await stranger.status()).deviceId

    const a = await harness.agent({ name: 'a', secret, listenPort: portA, env: { SYNC_AGENT_ALLOW: allowedId.toLowerCase() } })
    await fs.writeFile(path.join(a.folder, 'members-only.txt'), 'for the allowed device\n')
    await a.start()

    await waitConverged([a, allowed])
    const refusal = await until(() => parseRecords(a.stdout).find((r) => r.code === 'E_AUTH' && r.device === strangerId), {
      timeoutMs: 20_000,
      message: 'A logs the refused device'
    })
    expect(refusal.level).toBe('warn')
    expect(refusal.msg).toMatch(/not in the allow list \(SYNC_AGENT_ALLOW\)/)
    await stays(async () => (await fs.readdir(stranger.folder)).length === 0, { durationMs: 1_500, message: 'the stranger receives nothing' })
    const statusA = await a.status()
    expect(statusA.peers.filter((p) => p.connected).map((p) => p.deviceId)).toEqual([allowedId])
  })
})
