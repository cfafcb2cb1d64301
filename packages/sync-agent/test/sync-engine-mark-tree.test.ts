import { describe, expect, it } from 'vitest'
import { engineWith } from './helpers/engine.js'
import { until } from './helpers/until.js'

// fault suite seed 39514: a file renamed into plugins/p1 was being published for the first time
// (not in the index yet) when plugins/p1 was moved away; the move's markTree went by the index
// only, the publish went through with what it had read, and the deletion waited 55 s for a rescan
/** An engine whose first run of `path` is held until `release()`; returns once that run started. */
async function firstRunHeld(path: string) {
  let release!: () => void
  const held = new Promise<'done'>((resolve) => (release = () => resolve('done')))
  const { engine, runs } = engineWith((p, run) => (p === path && run === 1 ? held : 'done'))
  engine.mark(path)
  await until(() => runs.get(path) === 1, 'the first run started')
  return { engine, runs, release }
}

describe('SyncEngine.markTree', () => {
  it('marks a path under the directory that is being reconciled now, so it runs once more', async () => {
    const { engine, runs, release } = await firstRunHeld('plugins/p1/new.json')

    engine.markTree('plugins/p1')
    await until(() => runs.get('plugins/p1') === 1, 'the directory itself was reconciled')
    expect(runs.get('plugins/p1/new.json')).toBe(1) // still running: not run twice at once
    release()
    await until(() => runs.get('plugins/p1/new.json') === 2 && engine.isIdle, 'the path ran once more after its first run')
    await engine.close()
  })

  it('leaves running paths outside the directory alone', async () => {
    const { engine, runs, release } = await firstRunHeld('plugins/p10/a.json')
    engine.markTree('plugins/p1')
    release()
    await until(() => engine.isIdle, 'idle')
    expect(runs.get('plugins/p10/a.json')).toBe(1)
    await engine.close()
  })
})
