import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveReadOnly, formatSecret, parseSecret } from '../../packages/shared/dist/index.js'
import { deviceIdOf } from '../../packages/sync-agent/dist/device-id.js'
import { MAX_UNAUTHENTICATED } from '../../packages/sync-agent/dist/peers/peer-manager.js'
import { newSecret } from '../helpers/cli.ts'
import { useHarness } from '../helpers/harness.ts'
import { encodeUint, openRawSocket, type HostilePeer } from '../helpers/hostile-peer.ts'
import { MARK, startScene, type LogRecord, type Scene } from '../helpers/hostile-scene.ts'
import { stays, until } from '../helpers/until.ts'

/**
 * Peers that speak our protocol badly on purpose: without the secret, with a forged or
 * replayed proof, with forged writers, with bytes that do not decode, or never finishing the
 * handshake. Each must be dropped with a clear log line while the good peer keeps syncing.
 */
describe('hostile connections', () => {
  const harness = useHarness()
  let scene: Scene

  beforeAll(async () => {
    scene = await startScene(harness)
  })

  afterAll(async () => {
    await scene?.close()
  })

  const shortOf = (h: HostilePeer) => deviceIdOf(h.keyPair.publicKey).slice(0, 7)
  const fromPeer = (h: HostilePeer, code: string, msg: RegExp) => (r: LogRecord) => r.device === shortOf(h) && r.code === code && msg.test(r.msg)

  /** The hostile drive's files never show up at the victim. */
  async function assertNothingFrom(h: HostilePeer, name: string): Promise<void> {
    await stays(async () => !(await fs.access(path.join(scene.victim.folder, name)).then(() => true, () => false)), {
      durationMs: 1_500,
      message: `${name} from ${shortOf(h)} never reaches the victim`
    })
    const status = await scene.victim.status()
    expect(status.peers.filter((p) => p.connected && p.deviceId?.startsWith(shortOf(h)))).toEqual([])
  }

  it('a peer with another valid secret is refused (E_AUTH)', async () => {
    const h = await scene.hostile(await newSecret())
    await h.putFile(`${MARK}-other-secret.txt`, Buffer.from('x'))
    const conn = h.connect(scene.victim.address)
    await scene.waitRecord(fromPeer(h, 'E_AUTH', /could not prove it holds the folder secret/), 'E_AUTH for the other secret')
    await conn.closed
    await assertNothingFrom(h, `${MARK}-other-secret.txt`)
    await scene.assertUnharmed('other secret')
  })

  it('a forged (random) proof is refused', async () => {
    const h = await scene.hostile(await newSecret())
    const conn = h.connect(scene.victim.address, { proof: 'random' })
    await scene.waitRecord(fromPeer(h, 'E_AUTH', /could not prove/), 'E_AUTH for a random proof')
    await conn.closed
    await scene.assertUnharmed('random proof')
  })

  it('a proof replayed from an earlier connection is refused', async () => {
    // the first connection is genuine (the peer holds the secret): its proof is valid there
    const genuine = await scene.hostile()
    const first = genuine.connect(scene.victim.address, { members: null, replicate: false })
    await first.opened
    const captured = first.sentProof as Buffer
    first.destroy()
    // an eavesdropper without the secret replays it on its own connection
    const thief = await scene.hostile(await newSecret())
    const conn = thief.connect(scene.victim.address, { proof: { replay: captured } })
    await scene.waitRecord(fromPeer(thief, 'E_AUTH', /could not prove/), 'E_AUTH for a replayed proof')
    await conn.closed
    await scene.assertUnharmed('replayed proof')
  })

  it('a forged writer (member signed without the read-write secret) is rejected', async () => {
    const h = await scene.hostile()
    await h.putFile(`${MARK}-forged-writer.txt`, Buffer.from('x'))
    h.connect(scene.victim.address, { members: [h.forgedMember()] })
    await scene.waitRecord((r) => /rejected a member without a valid writer proof/.test(r.msg) && r.code === 'E_PEER_PROTOCOL', 'the forged member rejected')
    await assertNothingFrom(h, `${MARK}-forged-writer.txt`)
    expect((await scene.victim.status()).members).toBe(2)
    await scene.assertUnharmed('forged writer')
  })

  it('a read-only peer cannot make itself a writer', async () => {
    const ro = formatSecret(deriveReadOnly(parseSecret(scene.secret)))
    const h = await scene.hostile(ro)
    expect(h.ownMember()).toBeNull() // it cannot sign
    await h.putFile(`${MARK}-from-readonly.txt`, Buffer.from('x'))
    // it authenticates (every kind proves membership) but its drive is no member: a forged
    // signature, and a genuine member's signature moved onto its own drive, are both rejected
    const status = await scene.victim.status()
    expect(status.members).toBe(2)
    const conn = h.connect(scene.victim.address, { members: [h.forgedMember()] })
    await conn.opened
    await scene.waitRecord((r) => /rejected a member without a valid writer proof/.test(r.msg) && r.peer !== undefined && (r as { drive?: string }).drive === h.drive.key.toString('hex').slice(0, 16), 'the read-only peer rejected as a writer')
    await stays(async () => !(await fs.access(path.join(scene.victim.folder, `${MARK}-from-readonly.txt`)).then(() => true, () => false)), { durationMs: 1_500, message: 'the read-only peer writes nothing' })
    expect((await scene.victim.status()).members).toBe(2)
    await scene.assertUnharmed('read-only writer')
  })

  it.each([
    ['garbage bytes as a member list', 0, Buffer.from([0xfd, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['a member list longer than the limit', 0, encodeUint(1_000_000)],
    ['a truncated have list', 1, Buffer.from([0x02, 0x01, 0x02])]
  ])('malformed message: %s', async (name, type, bytes) => {
    const h = await scene.hostile()
    const conn = h.connect(scene.victim.address, { members: null, replicate: false })
    await conn.opened
    conn.sendRaw(type, bytes)
    const record = await scene.waitRecord((r) => r.device === shortOf(h) && r.code === 'E_PEER_PROTOCOL' && /malformed message/.test(r.msg), `E_PEER_PROTOCOL for ${name}`)
    expect(record.level).toBe('warn')
    expect(String(record.err)).toMatch(/malformed (member list|have list)/)
    await conn.closed
    await scene.assertUnharmed(name)
  })

  it('a hello with an unknown protocol version is refused', async () => {
    const h = await scene.hostile()
    const conn = h.connect(scene.victim.address, { version: 99 })
    await scene.waitRecord(fromPeer(h, 'E_PEER_PROTOCOL', /protocol version 99/), 'the version refused')
    await conn.closed
    await scene.assertUnharmed('unknown version')
  })

  it('junk instead of a Noise handshake is dropped with a log line', async () => {
    // a Noise frame is a 3-byte length and a payload: a short frame of junk fails to parse
    const socket = openRawSocket(scene.victim.address, Buffer.concat([Buffer.from([40, 0, 0]), Buffer.alloc(40, 0xa5)]))
    await scene.waitRecord((r) => r.code === 'E_PEER_PROTOCOL' && /before the peer proved/.test(r.msg), 'junk refused')
    await until(() => socket.destroyed || socket.readableEnded, { timeoutMs: 15_000, message: 'the victim closed the junk connection' })
    await scene.assertUnharmed('junk handshake')
  })

  it('connections that never finish their handshake time out, and a flood of them is capped', async () => {
    const sockets = Array.from({ length: MAX_UNAUTHENTICATED + 100 }, () => openRawSocket(scene.victim.address))
    await scene.waitRecord((r) => /too many connections still in their handshake/.test(r.msg), 'the flood refused beyond the limit')
    // the good peer keeps syncing meanwhile
    await scene.assertUnharmed('handshake flood', { maxRssBytes: 400 * 1024 * 1024 })
    await scene.waitRecord((r) => r.code === 'E_AUTH' && /did not finish the handshake in time/.test(r.msg), 'a stalled handshake timed out', 20_000)
    await until(() => sockets.every((s) => s.destroyed || s.readableEnded), { timeoutMs: 20_000, message: 'every stalled connection was closed by the victim' })
    for (const s of sockets) s.destroy()
    await scene.assertUnharmed('after the handshake flood')
  })

  it('a peer claiming an absurd length of a real drive does not push the victim into bulk mode', async () => {
    const h = await scene.hostile()
    const conn = h.connect(scene.victim.address, { members: null, replicate: false })
    await conn.opened
    await until(() => conn.membersReceived.length >= 2, { timeoutMs: 10_000, message: 'the victim sent its member list' })
    const from = scene.records().length
    conn.sendHave(conn.membersReceived.map((m) => ({ driveKey: m.driveKey, length: 2 ** 50 })))
    await stays(() => !scene.records().slice(from).some((r) => /bulk sync: pausing the watcher/.test(r.msg)), { durationMs: 2_000, message: 'no bulk mode' })
    conn.destroy()
    await scene.assertUnharmed('absurd have')
  })
})
