import { describe, expect, it } from 'vitest'
import type { EntryMeta } from '../src/entry-format.js'
import { PathReconciler, type ReconcileDeps } from '../src/reconcile-path.js'
import type { MemberDrive } from '../src/replication/drive-set.js'
import { meta } from './helpers/fake-drives.js'
import { useDrives } from './helpers/replicated-drives.js'

/**
 * A member drive whose signed length we know and whose newest index blocks no peer serves (a
 * writer withholding them). Hyperbee holds a block's lock while it waits for that block: every
 * path's read of the drive waited behind the engine's diff of it (which waited for good), then
 * behind each other; no peer's change got through. The newest block is now waited for in
 * Hypercore first, side by side, and the drive read as diffed when it does not come.
 */
const W = 'WWWWWWWWWWWWWWWW' // the writer's version-vector key
const stores = useDrives('reconcile-unserved-index-')

describe('PathReconciler.gather, a member drive whose newest index blocks no peer serves', () => {
  it('reads it as diffed after one wait, side by side, not behind a read of that drive that waits longer', async () => {
    // the victim holds the writer's first entry (diffed up to there), then learns the signed
    // length of two more and gets none of their blocks
    const writer = await stores.open()
    await writer.putEntry('/f.txt', { metadata: meta({ [W]: 1 }, 'deleted') })
    const victim = await stores.open(writer.key)
    const stop = stores.replicate(writer, victim)
    await victim.core.download({ start: 0, end: writer.core.length }).done()
    const diffed = victim.core.length
    stop()
    await writer.putEntry('/f.txt', { metadata: meta({ [W]: 2 }, 'deleted') })
    await writer.putEntry('/themes/t/style.css', { metadata: meta({ [W]: 3 }, 'deleted') })
    await writer.core.clear(diffed, writer.core.length)
    stores.replicate(writer, victim)
    while (victim.core.length < writer.core.length) await victim.core.update({ wait: true })
    expect(await victim.core.has(victim.core.length - 1)).toBe(false)

    const member = { hex: victim.key.toString('hex'), author: W, isOwn: false, shortId: 'WRITER1', member: {}, drive: victim } as unknown as MemberDrive
    const reconciler = new PathReconciler({
      drives: { all: () => [member] },
      appliedVersion: () => diffed,
      log: { debug: () => undefined, warn: () => undefined }
    } as unknown as ReconcileDeps)
    // the engine's diff of the drive: a Hyperbee read of its newest block, with a longer bound
    let diffSettled = false
    const diffRead = victim.entry('/themes/t/style.css', { timeout: 10_000 }).finally(() => (diffSettled = true))
    diffRead.catch(() => undefined)
    // paths reconciled meanwhile (each waits ENTRY_TIMEOUT_MS, 3 s, for the newest block)
    const gathered = await Promise.all(['f.txt', 'f.txt', 'f.txt', 'f.txt'].map((p) => reconciler.gather(p)))
    // one after the other (12 s) or behind the diff's read (10 s), they would end after it
    expect(diffSettled, 'the paths were read before the diff\'s read gave up').toBe(false)
    for (const versions of gathered) expect(versions.map((v) => (v as { vv: EntryMeta['vv'] }).vv)).toEqual([{ [W]: 1 }])
  }, 30_000) // a failing run waits 10 s + 4 × 3 s

  it('once the engine gave up on that index, reads the diffed view at once, even where the newest block is served and older ones are not', async () => {
    const writer = await stores.open()
    await writer.putEntry('/f.txt', { metadata: meta({ [W]: 1 }, 'deleted') })
    const victim = await stores.open(writer.key)
    const stop = stores.replicate(writer, victim)
    await victim.core.download({ start: 0, end: writer.core.length }).done()
    const diffed = victim.core.length
    stop()
    for (let i = 2; i <= 6; i++) await writer.putEntry(`/f${i}.txt`, { metadata: meta({ [W]: i }, 'deleted') })
    // withholds what it appended but the newest block (the root the reads start at)
    await writer.core.clear(diffed, writer.core.length - 1)
    stores.replicate(writer, victim)
    while (victim.core.length < writer.core.length) await victim.core.update({ wait: true })
    await victim.core.get(victim.core.length - 1, { timeout: 10_000 })
    expect(await victim.core.has(victim.core.length - 2)).toBe(false)

    const member = { hex: victim.key.toString('hex'), author: W, isOwn: false, shortId: 'WRITER1', member: {}, drive: victim } as unknown as MemberDrive
    const reconciler = new PathReconciler({
      drives: { all: () => [member] },
      appliedVersion: () => diffed,
      indexUnserved: () => true,
      log: { debug: () => undefined, warn: () => undefined }
    } as unknown as ReconcileDeps)
    let diffSettled = false
    const diffRead = victim.entry('/f.txt', { timeout: 10_000 }).finally(() => (diffSettled = true))
    diffRead.catch(() => undefined)
    const gathered = await Promise.all(['f.txt', 'f.txt', 'f.txt'].map((p) => reconciler.gather(p)))
    // through the live index each would wait 3 s inside Hyperbee's lock, behind the diff's read
    expect(diffSettled, "the paths were read before the diff's read gave up").toBe(false)
    for (const versions of gathered) expect(versions.map((v) => (v as { vv: EntryMeta['vv'] }).vv)).toEqual([{ [W]: 1 }])
  }, 30_000)
})
