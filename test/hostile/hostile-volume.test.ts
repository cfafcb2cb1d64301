import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useHarness } from '../helpers/harness.ts'
import { rssBytes } from '../helpers/hostile-peer.ts'
import { MARK, startScene, type Scene } from '../helpers/hostile-scene.ts'
import { until } from '../helpers/until.ts'

/**
 * Volume attacks from a compromised read-write peer: a drive with a huge number of entries,
 * and a flood of tiny updates. The victim's memory must stay bounded (RSS sampled from /proc
 * all along), it must keep answering and keep syncing with the good peer, and it must end
 * with the peer's last word. The entry count defaults to 10,000 so `pnpm test` stays quick;
 * SYNC_AGENT_IT_HOSTILE_ENTRIES=1000000 runs the full million (a few minutes: the hostile
 * peer writes ~5,000 entries/s).
 */
const ENTRIES = Number(process.env.SYNC_AGENT_IT_HOSTILE_ENTRIES ?? 10_000)
const FLOOD_UPDATES = 1_000
const MAX_RSS_BYTES = 450 * 1024 * 1024

describe('volume attacks', () => {
  const harness = useHarness()
  let scene: Scene
  let peakRss = 0
  let sampler: NodeJS.Timeout | undefined

  beforeAll(async () => {
    scene = await startScene(harness)
    sampler = setInterval(() => {
      rssBytes(scene.victim.pid as number).then((rss) => (peakRss = Math.max(peakRss, rss)), () => undefined)
    }, 200)
  })

  afterAll(async () => {
    clearInterval(sampler)
    await scene?.close()
  })

  it(`a drive of ${ENTRIES.toLocaleString('en')} entries: memory bounded, the good peer unaffected`, async () => {
    const h = await scene.hostile()
    h.connect(scene.victim.address)
    // tombstones of paths that never existed: every one is read, diffed and reconciled
    await h.putMany(ENTRIES, (i) => ({
      key: `/${MARK}-many/${i % 100}/${i}`,
      value: { metadata: { v: 1, vv: h.nextVector(), ts: Date.now(), kind: 'deleted', size: 0, mtime: Date.now(), mode: 0, hash: null } }
    }), 10_000)
    await h.putFile(`${MARK}-after-many.txt`, Buffer.from('last\n'))
    // while the victim works through them, a good peer's file still arrives; today it queues
    // behind the flood (FIFO), so it is delayed by about the time the flood takes, not lost
    const startedAt = Date.now()
    await scene.assertUnharmed('many entries', { maxRssBytes: MAX_RSS_BYTES, syncTimeoutMs: 60_000 + ENTRIES / 20 })
    console.log(`good peer's file arrived ${Date.now() - startedAt} ms into the flood of ${ENTRIES} entries`)
    await until(async () => (await fs.readFile(path.join(scene.victim.folder, `${MARK}-after-many.txt`), 'utf8').catch(() => null)) === 'last\n', {
      timeoutMs: 30_000 + ENTRIES / 100,
      message: 'the hostile peer’s last (valid) file arrives'
    })
    await until(async () => (await scene.victim.status()).pending === 0, { timeoutMs: 30_000 + ENTRIES / 50, message: 'the victim worked through every entry' })
    expect(peakRss, `victim peak RSS ${Math.round(peakRss / 2 ** 20)} MiB`).toBeLessThan(MAX_RSS_BYTES)
    console.log(`victim peak RSS ${Math.round(peakRss / 2 ** 20)} MiB after ${ENTRIES} entries`)
    await scene.assertUnharmed('after many entries', { maxRssBytes: MAX_RSS_BYTES })
  }, 120_000 + ENTRIES * 4)

  it(`a flood of ${FLOOD_UPDATES.toLocaleString('en')} tiny updates of one file: the last one wins, memory bounded`, async () => {
    const h = await scene.hostile()
    h.connect(scene.victim.address)
    let last = ''
    for (let i = 0; i < FLOOD_UPDATES; i++) {
      last = `update ${i}\n`
      await h.putFile(`${MARK}-flood.txt`, Buffer.from(last))
    }
    await until(async () => (await fs.readFile(path.join(scene.victim.folder, `${MARK}-flood.txt`), 'utf8').catch(() => null)) === last, {
      timeoutMs: 60_000,
      message: 'the victim ends with the last update'
    })
    expect(peakRss, `victim peak RSS ${Math.round(peakRss / 2 ** 20)} MiB`).toBeLessThan(MAX_RSS_BYTES)
    await scene.assertUnharmed('update flood', { maxRssBytes: MAX_RSS_BYTES })
  })
})
