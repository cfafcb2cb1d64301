import { describe, expect, it, vi } from 'vitest'
import { pino } from 'pino'
import type { IndexStore } from '../src/index-store.js'
import type { Outcome, PathReconciler } from '../src/reconcile-path.js'
import type { DriveSet, MemberDrive } from '../src/replication/drive-set.js'
import { SyncEngine } from '../src/sync-engine.js'
import { PriorityClasses } from '../src/priority/priority-classes.js'
import { meta } from './helpers/fake-drives.js'
import { useDrives } from './helpers/replicated-drives.js'

/**
 * A member drive whose signed length we know and whose index blocks no connected peer serves
 * (a compromised writer that withholds them, or the only peer that had them gone): the diff
 * waited for them for good, with nothing in status. Each attempt now gives up after the index
 * read timeout (REQUEST_TIMEOUT, logged with the drive, in status), is tried again with a
 * growing backoff, and at once when a peer connects, which gets the entries from a peer that
 * has the blocks.
 */
const stores = useDrives('engine-unserved-index-')

interface Record {
  level: number
  msg: string
  [key: string]: unknown
}

describe('SyncEngine, a member drive whose index no peer serves', () => {
  it('gives up each attempt after the read timeout, says so, backs off, and reads the index once a peer that has it connects', async () => {
    // the writer signs three entries; the victim learns the length, never a block of it
    const writer = await stores.open()
    await writer.putEntry('/themes/t/style.css', { metadata: meta({ w: 1 }, 'deleted') })
    await writer.putEntry('/uploads/2026/11/photo.jpg', { metadata: meta({ w: 2 }, 'deleted') })
    // a keeper that synced the whole index before the writer stopped serving it
    const keeper = await stores.open(writer.key)
    stores.replicate(writer, keeper)
    await keeper.core.download({ start: 0, end: writer.core.length }).done()
    const victim = await stores.open(writer.key)
    stores.replicate(writer, victim)
    while (victim.core.length < writer.core.length) await victim.core.update({ wait: true })
    await writer.core.clear(0, writer.core.length)
    expect(await victim.core.has(victim.core.length - 1), 'the victim holds none of the index').toBe(false)

    const records: Record[] = []
    const log = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as Record) })
    const reconciled: string[] = []
    const reconciler = {
      reconcile: async (path: string): Promise<Outcome> => {
        reconciled.push(path)
        return 'done'
      }
    } as unknown as PathReconciler
    const member = { hex: victim.key.toString('hex'), author: 'w', isOwn: false, shortId: 'WRITER1', member: {}, drive: victim } as unknown as MemberDrive
    const index = { entries: () => [][Symbol.iterator](), checkpoint: () => 0, setCheckpoint: () => undefined, get: () => undefined } as unknown as IndexStore
    const drives = { all: () => [member], get: () => member, followIndex: () => undefined, keepFullCopy: () => undefined } as unknown as DriveSet
    const engine = new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, log)
    engine.indexReadTimeoutMs = 300
    engine.ready()
    stores.also(() => engine.close())
    engine.onDriveAppend(member)

    const timeouts = () => records.filter((r) => r.code === 'REQUEST_TIMEOUT')
    // without the bound: no record ever, the diff waits for the blocks for good
    await vi.waitFor(() => expect(timeouts().length).toBeGreaterThanOrEqual(3), { timeout: 15_000, interval: 20 })
    expect(timeouts()[0]).toMatchObject({ level: 40, drive: 'WRITER1', from: 0, to: writer.core.length, attempts: 1, retryMs: 1_000 })
    expect(timeouts().slice(1, 3)).toMatchObject([{ attempts: 2, retryMs: 2_000 }, { attempts: 3, retryMs: 4_000 }])
    expect(engine.lastError).toMatchObject({ code: 'REQUEST_TIMEOUT' })
    expect(engine.isIndexUnserved(member.hex), 'paths read the drive as diffed meanwhile').toBe(true)
    // a diff, but not one getting anywhere: bulk mode does not keep the watcher paused for it
    expect(engine.isDiffing).toBe(true)
    expect(engine.isDiffingServed).toBe(false)
    // not also reported as stalled work: each attempt is reported already
    expect(engine.stalled(0, 1_000).map((st) => st.what)).not.toContain('drive:' + member.hex)
    expect(engine.lastError?.message).toContain('WRITER1')
    // the drive is not done: not idle (inSync stays false), nothing applied, nothing skipped
    expect(engine.isIdle).toBe(false)
    expect(engine.appliedVersion(member.hex)).toBe(0)
    expect(reconciled).toEqual([])

    // a peer that has the blocks connects (the daemon then calls retryNow): the waiting diff is
    // tried again at once, not after its 4 s backoff, and gets them
    stores.replicate(keeper, victim)
    const connectedAt = Date.now()
    engine.retryNow()
    await vi.waitFor(() => expect(engine.isIdle).toBe(true), { timeout: 10_000, interval: 20 })
    expect(Date.now() - connectedAt, 'ms until the diff ended').toBeLessThan(3_000)
    expect(timeouts()).toHaveLength(3)
    expect(reconciled.sort()).toEqual(['themes/t/style.css', 'uploads/2026/11/photo.jpg'])
    expect(engine.appliedVersion(member.hex)).toBe(writer.core.length)
    expect(records.some((r) => r.msg === 'drive diffed')).toBe(true)
    expect(engine.isIndexUnserved(member.hex)).toBe(false)
    expect(engine.isDiffingServed).toBe(false)
  }, 30_000)
})
