import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { keeperServes, MARK, readIn, useSceneWithKeeper, waitLoad, type LogRecord } from '../helpers/hostile-scene.ts'
import { until } from '../helpers/until.ts'
import type { IndexRequest } from '../../packages/sync-agent/dist/protocol.js'
import { shortIdOf } from '../../packages/sync-agent/dist/device-id.js'

/**
 * A compromised read-write peer, a member the victim already follows, appends valid, signed
 * entries (a theme file and an upload) and never serves their index: it cleared their blocks
 * of its drive's Hyperbee core after a keeper, a good read-write peer, had synced them, so it
 * still proves the signed length and gives nobody a block of it; it announces that it serves
 * index blocks and never answers such a request. (The contents stay served: this is the index core,
 * withheld-contents.test.ts covers the blob core.) The victim must not hang, crash or spin, must
 * say what it waits for (each read of the drive's index times out: REQUEST_TIMEOUT with the
 * drive, in status errors, retried with a backoff; inSync false meanwhile), must keep applying
 * the good peer's changes, and must get the entries and their files as soon as a peer that has
 * the blocks (the keeper, back online) connects.
 */
const EARLIER = `${MARK}-earlier.txt`
const THEME = `themes/${MARK}-theme/style.css`
const UPLOAD = `uploads/2026/11/${MARK}-photo.jpg`
const MAX_RSS_BYTES = 450 * 1024 * 1024
const REQUEST_TIMEOUT_S = 8
/** withheld entries in the second case: more than bulk mode's threshold (BULK_MODE_PATHS, 2,000) */
const WITHHELD_MANY = 2_100
/** the victim's CPU use while it waits for the withheld index: well below a busy loop */
const MAX_CPU_SHARE = 0.2

describe('a signed writer that withholds its index', () => {
  // the victim gives up on a read no peer serves after 8 s (requestTimeoutS; 30 s by default):
  // the waits below are for those timeouts
  const stage = useSceneWithKeeper({ SYNC_AGENT_REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S) })

  it('the victim waits without spinning, says so, keeps syncing, and gets the entries from a peer that has them', async () => {
    const { scene, keeper } = stage()
    const h = await scene.hostile()
    const drive = shortIdOf(h.keyPair.publicKey)
    // a member the victim follows: its first file arrives the ordinary way
    await h.putFile(EARLIER, Buffer.from('earlier\n'))
    const first = h.connect(scene.victim.address)
    await until(async () => (await readIn(scene.victim, EARLIER))?.toString() === 'earlier\n', { timeoutMs: 30_000, message: 'the victim has the peer\'s earlier file' })
    first.destroy()
    const appliedLength = h.drive.core.length

    // then it appends, the keeper syncs the entries (index and files) while they are served, goes offline
    const theme = Buffer.from('body { color: red }\n')
    const photo = randomBytes(200 * 1024)
    await h.putFile(THEME, theme)
    await h.putFile(UPLOAD, photo)
    const signedLength = h.drive.core.length
    const toKeeper = h.connect(keeper.address)
    await h.waitUploaded()
    await until(async () => (await readIn(keeper, THEME))?.equals(theme) && (await readIn(keeper, UPLOAD))?.equals(photo), { timeoutMs: 30_000, message: 'the keeper has both files' })
    toKeeper.destroy()
    await keeper.stop()
    // what it appended: the victim holds the rest, and is upgraded from there
    await h.withholdIndex(appliedLength)
    expect(await h.drive.core.has(appliedLength), 'the hostile peer no longer holds its new index blocks').toBe(false)
    expect(await h.drive.core.has(signedLength - 1)).toBe(false)
    expect(h.drive.core.length).toBe(signedLength)

    // back to the victim: it proves the signed length, and answers no index request
    const asked: IndexRequest[] = []
    const conn = h.connect(scene.victim.address, { index: (request) => void asked.push(request) })
    const load = await waitLoad(scene.victim, { maxCpuShare: MAX_CPU_SHARE, maxRssBytes: MAX_RSS_BYTES })
    await until(() => h.drive.core.peers.some((p: { remoteLength: number }) => p.remoteLength >= signedLength), { timeoutMs: 20_000, message: 'the victim knows the signed length' })
    // meanwhile the good peer's changes arrive, a theme file included (the withheld index
    // holds neither the workers nor the other drives' diffs)
    await scene.assertUnharmed('withheld index', { maxRssBytes: MAX_RSS_BYTES, syncTimeoutMs: 30_000 })
    await fs.mkdir(path.join(scene.good.folder, 'themes', 'good'), { recursive: true })
    const goodAt = Date.now()
    await fs.writeFile(path.join(scene.good.folder, 'themes', 'good', 'style.css'), 'good\n')
    await until(async () => (await readIn(scene.victim, 'themes/good/style.css'))?.toString() === 'good\n', { timeoutMs: 30_000, message: "the good peer's theme file reaches the victim" })
    const goodThemeMs = Date.now() - goodAt

    // the read of the index times out and is retried with a backoff, logged once per attempt
    const failed = await scene.waitRecord((r) => r.code === 'REQUEST_TIMEOUT' && r.drive === drive, "that the peer's index did not come", 60_000)
    expect(failed).toMatchObject({ level: 'warn', attempts: 1, retryMs: expect.any(Number), from: appliedLength, to: signedLength })
    const status = await scene.victim.status()
    expect(status.deviceId).toBeTruthy()
    expect(status.inSync, 'not in sync while a member drive\'s signed entries cannot be read').toBe(false)
    const errors = status.errors as Array<{ code: string; message: string }>
    expect(errors.some((e) => e.code === 'REQUEST_TIMEOUT' && e.message.includes(drive)), 'status names the drive whose index does not come').toBe(true)
    expect(await readIn(scene.victim, THEME)).toBeNull()
    expect(await readIn(scene.victim, UPLOAD)).toBeNull()
    expect(conn.isClosed(), 'the victim keeps the peer connected (it may serve the blocks later)').toBe(false)
    await load.measure('WITHHELD-INDEX', { inSync: status.inSync, state: status.state, goodThemeMs, indexRequests: asked.length, errors: errors.map((e) => e.code) })

    // the keeper comes back and connects to the victim: it has the index, so the entries and
    // their files arrive, and the victim is in sync again (the hostile peer still connected)
    const arrivedMs = await keeperServes(stage(), { [THEME]: theme, [UPLOAD]: photo }, 'the withheld entries\' files')
    console.log(`WITHHELD-INDEX the files arrived ${arrivedMs} ms after the keeper started again`)
    await until(async () => (await scene.victim.status()).inSync, { timeoutMs: 30_000, message: 'the victim is in sync again' })
    await scene.assertUnharmed('index from the keeper', { maxRssBytes: MAX_RSS_BYTES })
  })

  it('thousands of withheld entries do not keep the victim\'s watcher paused: its own changes still go out at once', async () => {
    const { scene } = stage()
    const h = await scene.hostile()
    await h.putFile(`${MARK}-many-first.txt`, Buffer.from('first\n'))
    const first = h.connect(scene.victim.address)
    await until(async () => (await readIn(scene.victim, `${MARK}-many-first.txt`))?.toString() === 'first\n', { timeoutMs: 30_000, message: 'the victim has the peer\'s first file' })
    first.destroy()
    const appliedLength = h.drive.core.length
    // more entries than bulk mode's threshold (2,000 paths), then their index withheld
    const blob = await h.putBlob(Buffer.from('x'))
    const meta = h.fileMeta(Buffer.from('x'))
    await h.putMany(WITHHELD_MANY, (i) => ({ key: `/uploads/${MARK}-many/${String(i).padStart(5, '0')}.txt`, value: { blob, metadata: { ...meta, vv: h.nextVector() } } }))
    await h.withholdIndex(appliedLength)
    const since = Date.now()
    const after = (r: LogRecord) => typeof r.time === 'string' && Date.parse(r.time) >= since
    h.connect(scene.victim.address, { index: () => undefined })
    // it announces the signed length: that many paths look like a bulk sync, and the watcher is paused
    await scene.waitRecord((r) => after(r) && r.msg === 'bulk sync: pausing the watcher', 'that it pauses the watcher for the announced entries', 30_000)
    // once the diff gave up on the index (REQUEST_TIMEOUT_S), those entries are not work under way: the
    // watcher is back (before: paused for as long as the index was withheld, the victim's own
    // changes found by a rescan every 15 s)
    await scene.waitRecord((r) => after(r) && r.msg === 'bulk sync done: watching again', 'that it watches again once the index did not come', 90_000)
    const mine = path.join(scene.victim.folder, 'uploads', `${MARK}-victim-own.txt`)
    await fs.mkdir(path.dirname(mine), { recursive: true })
    await fs.writeFile(mine, 'written on the victim\n')
    await until(async () => (await readIn(scene.good, `uploads/${MARK}-victim-own.txt`))?.toString() === 'written on the victim\n', { timeoutMs: 30_000, message: 'the victim\'s own new file reaches the good peer' })
    expect((await scene.victim.status()).inSync, 'still not in sync: the withheld entries are not here').toBe(false)
  }, 150_000)
})
