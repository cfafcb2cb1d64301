import { pino } from 'pino'
import type { IndexStore } from '../../src/index-store.js'
import type { Outcome, PathReconciler } from '../../src/reconcile-path.js'
import type { DriveSet } from '../../src/replication/drive-set.js'
import { SyncEngine } from '../../src/sync-engine.js'
import { PriorityClasses } from '../../src/priority/priority-classes.js'

/** An engine whose reconciler answers from `outcome(path, run)`; counts runs per path. */
export function engineWith(outcome: (path: string, run: number) => Outcome | Error | Promise<Outcome>): { engine: SyncEngine; runs: Map<string, number> } {
  const runs = new Map<string, number>()
  const reconciler = {
    reconcile: async (path: string) => {
      const n = (runs.get(path) ?? 0) + 1
      runs.set(path, n)
      const o = outcome(path, n)
      if (o instanceof Error) throw o
      return o
    }
  } as unknown as PathReconciler
  const index = { entries: () => [][Symbol.iterator](), checkpoint: () => 0, setCheckpoint: () => undefined } as unknown as IndexStore
  const drives = { all: () => [] } as unknown as DriveSet
  return { engine: new SyncEngine(index, drives, reconciler, new PriorityClasses('wordpress'), 1, pino({ level: 'silent' })), runs }
}

