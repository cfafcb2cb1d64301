import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import type { IndexStore } from '../src/index-store.js'
import type { Outcome, PathReconciler } from '../src/reconcile-path.js'
import type { DriveSet, MemberDrive } from '../src/replication/drive-set.js'
import { SyncEngine } from '../src/sync-engine.js'
import { PriorityClasses } from '../src/priority/priority-classes.js'
import { until } from './helpers/until.js'

const file = (seq: number, path: string) => ({
  left: { seq, key: '/' + path, value: Buffer.from(JSON.stringify({ metadata: { v: 1, kind: 'file', vv: { ME: seq }, ts: 1, size: 1, mtime: 0, mode: 0o644, hash: 'a'.repeat(64) } })) },
  right: null
})

/** Our own drive: entries 1–2 published by an earlier run, 3–9 by this one (after `ready()`). */
function ownDrive() {
  const entries = [file(1, 'old/a.txt'), file(2, 'old/b.txt')]
  const later = Array.from({ length: 7 }, (_, i) => file(3 + i, `new/${i}.txt`))
  const state = { version: 3, diffedUpTo: [] as number[] }
  const at = (length: number) => ({
    async *diff(from: number) {
      state.diffedUpTo.push(length)
      for (const e of [...entries, ...later]) if (e.left.seq >= from && e.left.seq < length) yield e
    },
    close: async () => undefined
  })
  const drive = {
    hex: 'own',
    shortId: 'ME',
    isOwn: true,
    drive: {
      get version() {
        return state.version
      },
      checkout: (length: number) => at(length),
      diff: (from: number) => at(state.version).diff(from)
    }
  } as unknown as MemberDrive
  return { drive, state }
}

describe('SyncEngine, our own drive at start', () => {
  it('diffs only what an earlier run published; what this run publishes is recorded already, and the checkpoint follows it', async () => {
    const { drive, state } = ownDrive()
    const checkpoints = new Map<string, number>()
    const index = {
      entries: () => [][Symbol.iterator](),
      checkpoint: (hex: string) => checkpoints.get(hex) ?? 0,
      setCheckpoint: (hex: string, v: number) => checkpoints.set(hex, v),
      get: () => undefined
    } as unknown as IndexStore
    const drives = { all: () => [drive], own: drive, keepFullCopy: () => undefined, followIndex: () => undefined } as unknown as DriveSet
    const reconciled: string[] = []
    const reconciler = { reconcile: async (path: string) => (reconciled.push(path), 'done' as Outcome) } as unknown as PathReconciler
    const engine = new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, pino({ level: 'silent' }))
    let idle = 0
    engine.onIdle(() => idle++)
    engine.ready() // the run begins: our drive holds 2 entries (length 3)

    state.version = 10 // the start-up scan published 7 files
    engine.onDriveAppend(drive)
    await until(() => idle > 0, 'the engine is idle')

    expect(state.diffedUpTo).toEqual([3])
    expect(reconciled.sort()).toEqual(['old/a.txt', 'old/b.txt'])
    expect(checkpoints.get('own')).toBe(10)
    await engine.close()
  })
})
