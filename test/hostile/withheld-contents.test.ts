import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { keeperServes, MARK, readIn, useSceneWithKeeper, waitLoad } from '../helpers/hostile-scene.ts'
import { until } from '../helpers/until.ts'

/**
 * A compromised read-write peer publishes valid, signed entries (a theme file and an upload)
 * and never serves their contents: it cleared them from its blob core after a keeper, a good
 * read-write peer, had synced them. The victim must not hang, crash or spin (it retries with a
 * backoff), must show the files as pending, must keep applying the good peer's changes, and
 * must get the files as soon as a peer that has them (the keeper, back online) connects.
 */
const THEME = `themes/${MARK}-theme/style.css`
const UPLOAD = `uploads/2026/11/${MARK}-photo.jpg`
const MAX_RSS_BYTES = 450 * 1024 * 1024
const REQUEST_TIMEOUT_S = 8
/** the victim's CPU use while it waits for the withheld contents: well below a busy loop */
const MAX_CPU_SHARE = 0.2

describe('a signed writer that withholds its contents', () => {
  // the victim gives up on a read no peer serves after 8 s (requestTimeoutS; 30 s by default):
  // the waits below are for those timeouts
  const stage = useSceneWithKeeper({ SYNC_AGENT_REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S) })

  it('the victim waits without spinning, shows the files pending, keeps syncing, and gets them from a peer that has them', async () => {
    const { scene, keeper } = stage()
    const h = await scene.hostile()
    const theme = Buffer.from('body { color: red }\n')
    const photo = randomBytes(200 * 1024) // several blocks
    await h.putFile(THEME, theme)
    await h.putFile(UPLOAD, photo)
    // the keeper syncs them while the peer still serves them, then goes offline
    const toKeeper = h.connect(keeper.address)
    await until(async () => (await readIn(keeper, THEME))?.equals(theme) && (await readIn(keeper, UPLOAD))?.equals(photo), { timeoutMs: 30_000, message: 'the keeper has both files' })
    toKeeper.destroy()
    await keeper.stop()
    await h.withholdContents()
    const blobs = await h.drive.getBlobs()
    expect(await blobs.core.has(0), 'the hostile peer no longer holds its contents').toBe(false)

    h.connect(scene.victim.address)
    // shown as pending (by top-level directory), not dropped
    await until(async () => {
      const s = await scene.victim.status()
      const byDir = s.pendingByDir as Record<string, { files: number }>
      return byDir.themes?.files === 1 && byDir.uploads?.files === 1
    }, { timeoutMs: 20_000, message: 'the victim lists the withheld files as pending' })
    const load = await waitLoad(scene.victim, { maxCpuShare: MAX_CPU_SHARE, maxRssBytes: MAX_RSS_BYTES })
    // meanwhile the good peer's changes arrive, a theme file included (the withheld theme file
    // holds neither the workers nor the later classes)
    await scene.assertUnharmed('withheld contents', { maxRssBytes: MAX_RSS_BYTES, syncTimeoutMs: 30_000 })
    await fs.mkdir(path.join(scene.good.folder, 'themes', 'good'), { recursive: true })
    await fs.writeFile(path.join(scene.good.folder, 'themes', 'good', 'style.css'), 'good\n')
    await until(async () => (await readIn(scene.victim, 'themes/good/style.css'))?.toString() === 'good\n', { timeoutMs: 30_000, message: "the good peer's theme file reaches the victim" })
    // the fetch times out and is retried with a backoff, logged once per attempt
    const failed = await scene.waitRecord((r) => r.code === 'REQUEST_TIMEOUT' && r.path === THEME, 'that the theme file\'s content did not come', 60_000)
    expect(failed).toMatchObject({ level: 'warn', attempts: 1, retryMs: expect.any(Number) })
    const status = await scene.victim.status()
    expect(status.pending, 'the withheld files are still pending').toBeGreaterThanOrEqual(2)
    expect(await readIn(scene.victim, THEME)).toBeNull()
    expect(await readIn(scene.victim, UPLOAD)).toBeNull()
    await load.measure('WITHHELD', { pending: status.pending, errors: (status.errors as Array<{ code: string }>).map((e) => e.code) })

    // the keeper comes back and connects to the victim: it has the contents, so they arrive
    const arrivedMs = await keeperServes(stage(), { [THEME]: theme, [UPLOAD]: photo }, 'the withheld files')
    console.log(`WITHHELD the files arrived ${arrivedMs} ms after the keeper started again`)
    await until(async () => {
      const byDir = (await scene.victim.status()).pendingByDir as Record<string, unknown>
      return byDir.themes === undefined && byDir.uploads === undefined
    }, { timeoutMs: 20_000, message: 'nothing of them is pending any more' })
    await scene.assertUnharmed('contents from the keeper', { maxRssBytes: MAX_RSS_BYTES })
  })
})
