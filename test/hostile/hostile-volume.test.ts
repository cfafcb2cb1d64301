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
 * SYNC_AGENT_IT_HOSTILE_ENTRIES=1000000 runs the full million (~22 minutes on a loaded 2-core
 * machine: the hostile peer writes ~3,000 entries/s, the victim applies ~750/s).
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
    const startedAt = Date.now()
    // tombstones of paths that never existed: every one is read, diffed and reconciled (by
    // the good peer too: the compromised peer is a signed writer, relayed to it by the victim)
    await h.putMany(ENTRIES, (i) => ({
      key: `/${MARK}-many/${i % 100}/${i}`,
      value: { metadata: { v: 1, vv: h.nextVector(), ts: Date.now(), kind: 'deleted', size: 0, mtime: Date.now(), mode: 0, hash: null } }
    }), 10_000)
    await h.putFile(`${MARK}-after-many.txt`, Buffer.from('last\n'))
    const writtenMs = Date.now() - startedAt
    // while the victim works through them, a good peer's file still arrives (fresh changes run
    // before a large diff's paths, and lookups in the drive being caught up never wait for it)
    const goodAt = Date.now()
    await scene.assertUnharmed('many entries', { maxRssBytes: MAX_RSS_BYTES, syncTimeoutMs: 60_000 + ENTRIES / 20 })
    const goodFileMs = Date.now() - goodAt
    await until(async () => (await fs.readFile(path.join(scene.victim.folder, `${MARK}-after-many.txt`), 'utf8').catch(() => null)) === 'last\n', {
      timeoutMs: 60_000 + ENTRIES,
      message: 'the hostile peer’s last (valid) file arrives'
    })
    await until(async () => (await scene.victim.status()).pending === 0, { timeoutMs: 60_000 + ENTRIES, message: 'the victim worked through every entry' })
    const doneMs = Date.now() - startedAt
    // the kernel's high-water mark: the true peak, not only the 200 ms samples
    const peak = { victim: await rssBytes(scene.victim.pid as number, 'VmHWM'), good: await rssBytes(scene.good.pid as number, 'VmHWM') }
    const mib = (n: number) => Math.round(n / 2 ** 20)
    console.log(`VOLUME ${JSON.stringify({ entries: ENTRIES, writtenS: writtenMs / 1000, goodFileMs, allAppliedS: doneMs / 1000, peakRssMiB: { victim: mib(peak.victim), good: mib(peak.good), victimSampled: mib(peakRss) } })}`)
    // the good peer may still be working through the drive (it gets it through the victim):
    // its watcher is paused then, and a rescan finds its new file (BULK_RESCAN_MS)
    const afterAt = Date.now()
    await scene.assertUnharmed('after many entries', { maxRssBytes: MAX_RSS_BYTES, syncTimeoutMs: 60_000 })
    console.log(`VOLUME after: the good peer's next file arrived in ${Date.now() - afterAt} ms`)
    expect(peak.victim, `victim peak RSS ${mib(peak.victim)} MiB`).toBeLessThan(MAX_RSS_BYTES)
    expect(peak.good, `good peer peak RSS ${mib(peak.good)} MiB`).toBeLessThan(MAX_RSS_BYTES)
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
