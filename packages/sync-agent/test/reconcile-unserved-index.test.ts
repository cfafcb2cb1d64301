import { describe, expect, it } from 'vitest'
import type Hyperdrive from 'hyperdrive'
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

/**
 * A victim that holds and has diffed the writer's first entry (`/f.txt`, {W: 1}), then learns
 * the signed length of what `append` writes and, of that, only the blocks from `served` on
 * (none by default), and a reconciler over that drive.
 */
async function victimBehind(append: (writer: Hyperdrive) => Promise<void>, { served, indexUnserved = false }: { served?: (length: number) => number; indexUnserved?: boolean } = {}) {
  const writer = await stores.open()
  await writer.putEntry('/f.txt', { metadata: meta({ [W]: 1 }, 'deleted') })
  const victim = await stores.open(writer.key)
  const stop = stores.replicate(writer, victim)
  await victim.core.download({ start: 0, end: writer.core.length }).done()
  const diffed = victim.core.length
  stop()
  await append(writer)
  await writer.core.clear(diffed, served ? served(writer.core.length) : writer.core.length)
  stores.replicate(writer, victim)
  while (victim.core.length < writer.core.length) await victim.core.update({ wait: true })
  const member = { hex: victim.key.toString('hex'), author: W, isOwn: false, shortId: 'WRITER1', member: {}, drive: victim } as unknown as MemberDrive
  const reconciler = new PathReconciler({
    drives: { all: () => [member] },
    appliedVersion: () => diffed,
    indexUnserved: () => indexUnserved,
    log: { debug: () => undefined, warn: () => undefined }
  } as unknown as ReconcileDeps)
  return { victim, reconciler }
}

/** The engine's diff of the drive meanwhile: a Hyperbee read of `key` with a longer bound (10 s); `settled()` says whether it ended. */
function diffReading(victim: Hyperdrive, key: string): { settled(): boolean } {
  let settled = false
  victim
    .entry(key, { timeout: 10_000 })
    .catch(() => undefined)
    .finally(() => (settled = true))
  return { settled: () => settled }
}

describe('PathReconciler.gather, a member drive whose newest index blocks no peer serves', () => {
  it('reads it as diffed after one wait, side by side, not behind a read of that drive that waits longer', async () => {
    const { victim, reconciler } = await victimBehind(async (writer) => {
      await writer.putEntry('/f.txt', { metadata: meta({ [W]: 2 }, 'deleted') })
      await writer.putEntry('/themes/t/style.css', { metadata: meta({ [W]: 3 }, 'deleted') })
    })
    expect(await victim.core.has(victim.core.length - 1)).toBe(false)
    const diff = diffReading(victim, '/themes/t/style.css')
    // paths reconciled meanwhile (each waits ENTRY_TIMEOUT_MS, 3 s, for the newest block)
    const gathered = await Promise.all(['f.txt', 'f.txt', 'f.txt', 'f.txt'].map((p) => reconciler.gather(p)))
    // one after the other (12 s) or behind the diff's read (10 s), they would end after it
    expect(diff.settled(), 'the paths were read before the diff\'s read gave up').toBe(false)
    for (const versions of gathered) expect(versions.map((v) => (v as { vv: EntryMeta['vv'] }).vv)).toEqual([{ [W]: 1 }])
  }, 30_000) // a failing run waits 10 s + 4 × 3 s

  it('once the engine gave up on that index, reads the diffed view at once, even where the newest block is served and older ones are not', async () => {
    // withholds what it appended but the newest block (the root the reads start at)
    const { victim, reconciler } = await victimBehind(
      async (writer) => {
        for (let i = 2; i <= 6; i++) await writer.putEntry(`/f${i}.txt`, { metadata: meta({ [W]: i }, 'deleted') })
      },
      { served: (length) => length - 1, indexUnserved: true }
    )
    await victim.core.get(victim.core.length - 1, { timeout: 10_000 })
    expect(await victim.core.has(victim.core.length - 2)).toBe(false)
    const diff = diffReading(victim, '/f.txt')
    const gathered = await Promise.all(['f.txt', 'f.txt', 'f.txt'].map((p) => reconciler.gather(p)))
    // through the live index each would wait 3 s inside Hyperbee's lock, behind the diff's read
    expect(diff.settled(), "the paths were read before the diff's read gave up").toBe(false)
    for (const versions of gathered) expect(versions.map((v) => (v as { vv: EntryMeta['vv'] }).vv)).toEqual([{ [W]: 1 }])
  }, 30_000)
})

