import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveEncrypted, deriveFolderKeys, deriveReadOnly, formatSecret, parseSecret } from '../../packages/shared/dist/index.js'
import { ownCapability } from '../../packages/sync-agent/dist/peers/capability-proof.js'
import { CAPABILITY_READ, CAPABILITY_WRITE } from '../../packages/sync-agent/dist/protocol.js'
import { deviceIdOf } from '../../packages/sync-agent/dist/device-id.js'
import { MAX_UNAUTHENTICATED } from '../../packages/sync-agent/dist/peers/peer-manager.js'
import type { PeerStatus } from '../../packages/shared/dist/index.js'
import { newSecret, runCli } from '../helpers/cli.ts'
import { useHarness } from '../helpers/harness.ts'
import { encodeUint, openRawSocket, type HostilePeer } from '../helpers/hostile-peer.ts'
import { MARK, startScene, type LogRecord, type Scene } from '../helpers/hostile-scene.ts'
import { stays, until } from '../helpers/until.ts'

/**
 * Peers that speak our protocol badly on purpose: without the secret, with a forged or
 * replayed proof, with forged writers, with bytes that do not decode, or never finishing the
 * handshake. Each must be dropped with a clear log line while the good peer keeps syncing.
 */
const NOT_SERVING_AFTER_S = 5

describe('hostile connections', () => {
  const harness = useHarness()
  let scene: Scene

  beforeAll(async () => {
    scene = await startScene(harness, { SYNC_AGENT_NOT_SERVING_AFTER_S: String(NOT_SERVING_AFTER_S) })
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

  it.each<[string, 'ro' | 'en', (hash: Buffer) => { kind: 1 | 2; proof: Buffer }]>([
    ['a read-only peer claiming write with a random signature', 'ro', () => ({ kind: CAPABILITY_WRITE, proof: randomBytes(64) })],
    ['a read-only peer replaying a writer\'s signature from another connection', 'ro', () => ownCapability(deriveFolderKeys(parseSecret(scene.secret)), randomBytes(64), true) as { kind: 2; proof: Buffer }],
    ['an encrypted peer claiming read with a guessed proof', 'en', () => ({ kind: CAPABILITY_READ, proof: randomBytes(32) })]
  ])('a forged role proof is refused (E_AUTH): %s', async (name, kind, forge) => {
    const rw = parseSecret(scene.secret)
    const weaker = kind === 'ro' ? deriveReadOnly(rw) : deriveEncrypted(rw)
    const h = await scene.hostile(formatSecret(weaker))
    const conn = h.connect(scene.victim.address, { capability: forge, members: null })
    await scene.waitRecord(fromPeer(h, 'E_AUTH', /read-write proof is not signed by the folder's writer key|read-only proof does not match the folder's read key/), `E_AUTH for ${name}`)
    await conn.closed
    expect((await scene.victim.status()).peers.filter((p) => p.deviceId?.startsWith(shortOf(h)) && p.connected)).toEqual([])
    await scene.assertUnharmed(name)
  })

  it('a peer that holds the secret shows the role it proved, not more', async () => {
    const h = await scene.hostile(formatSecret(deriveReadOnly(parseSecret(scene.secret))))
    // it proves only the folder secret (no capability): it is seen as encrypted, however it behaves
    const conn = h.connect(scene.victim.address, { capability: () => null, members: null })
    await conn.opened
    const peer = await until(async () => (await scene.victim.status()).peers.find((p) => p.connected && p.deviceId?.startsWith(shortOf(h))), { timeoutMs: 10_000, message: 'the peer is listed' })
    expect(peer).toMatchObject({ role: 'en', roleVerified: true })
    conn.destroy()
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

  it('a peer claiming lengths it never serves: no bulk mode, and after notServingAfterS it no longer holds back inSync', async () => {
    const h = await scene.hostile()
    // its hello already claims its own drive, which is no member
    const claimedAt = Date.now()
    const conn = h.connect(scene.victim.address, { members: null, replicate: false })
    await conn.opened
    await until(() => conn.membersReceived.length >= 2, { timeoutMs: 10_000, message: 'the victim sent its member list' })
    const from = scene.records().length
    // an absurd length of every real drive (the good peer's included), and a drive that is no member
    conn.sendHave([...conn.membersReceived.map((m) => ({ driveKey: m.driveKey, length: 2 ** 50 })), { driveKey: randomBytes(32), length: 7 }])
    const peerOfH = async () => (await scene.victim.status()).peers.find((p) => p.connected && p.deviceId?.startsWith(shortOf(h))) as unknown as PeerStatus | undefined
    // first its claims count: the victim is not in sync with it
    await until(async () => (await scene.victim.status()).inSync === false, { timeoutMs: 5_000, message: 'the victim is behind the claims' })
    expect((await peerOfH())?.notServingSince).toBeNull()
    await stays(() => !scene.records().slice(from).some((r) => /bulk sync: pausing the watcher/.test(r.msg)), { durationMs: 2_000, message: 'no bulk mode' })
    // then it is reported, once, and no longer holds the victim hostage
    const record = await scene.waitRecord(fromPeer(h, 'E_PEER_NOT_SERVING', /claims data nobody has served for 5 s/), 'the peer reported as not serving', 30_000)
    expect(record.level).toBe('warn')
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(NOT_SERVING_AFTER_S * 1000)
    expect((record.unserved as Array<{ member: boolean }>).map((u) => u.member).sort()).toEqual([false, true]) // the good peer's drive and the stranger (the victim's own drive is no claim on it)
    await until(async () => (await scene.victim.status()).inSync, { timeoutMs: 15_000, message: 'the victim in sync again despite the claims' })
    const peer = await peerOfH()
    expect(peer?.notServingSince).toBeGreaterThanOrEqual(claimedAt)
    expect((await runCli(['status', '--control', scene.victim.control])).stdout).toMatch(new RegExp(`${shortOf(h)} .*NOT SERVING what it claims since`))
    // new data from the good peer still flows meanwhile
    await scene.assertUnharmed('claims never served')
    // claims it can back (nothing) end it: serving again
    conn.sendHave(conn.membersReceived.map((m) => ({ driveKey: m.driveKey, length: 0 })))
    await scene.waitRecord((r) => r.device === shortOf(h) && /serves what it claims again/.test(r.msg), 'the peer serving again')
    expect((await peerOfH())?.notServingSince).toBeNull()
    expect(scene.records().filter(fromPeer(h, 'E_PEER_NOT_SERVING', /./))).toHaveLength(1)
    conn.destroy()
  })
})
