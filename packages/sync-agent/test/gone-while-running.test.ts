import { describe, expect, it } from 'vitest'
import { goneWhileRunning } from '../src/gone-while-running.js'

/** A disk holding `onDisk`, an engine that will reconcile `marked` again. */
function deps(onDisk: string[], marked: string[] = []) {
  return { willReconcile: (p: string) => marked.includes(p), exists: async (p: string) => onDisk.includes(p) }
}

describe('goneWhileRunning', () => {
  // fault suite seed 4501: published as it was deleted, the delete's event lost in a watch
  // restart, and the restart's rescan (before the publish ended) had no record to miss
  it('names a running path the walk did not see and that is not on disk', async () => {
    expect(await goneWhileRunning(['docs/d0/r2x67-page.php'], new Set(), deps([]))).toEqual(['docs/d0/r2x67-page.php'])
  })

  it('leaves out what the walk saw, what is on disk now, and what will run again anyway', async () => {
    const running = ['seen.php', 'back.php', 'marked.php', 'gone.php', 'gone.php']
    expect(await goneWhileRunning(running, new Set(['seen.php']), deps(['back.php'], ['marked.php']))).toEqual(['gone.php'])
  })

  it('names nothing when nothing runs', async () => {
    expect(await goneWhileRunning([], new Set(['a']), deps([]))).toEqual([])
  })
})
