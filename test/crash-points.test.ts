import fs from 'node:fs/promises'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Agent } from './helpers/agent.ts'
import { exists, writeFiles } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { sha256 } from './helpers/tree.ts'

/**
 * A kill -9 in each window of an apply, a delete and a publish, visited on purpose (the
 * agent kills itself at the named step: SYNC_AGENT_CRASH_AT, src/crash-points.ts), then what
 * a program does to the path while the agent is down, then a restart: nothing lost, nothing
 * deleted on purpose comes back. The fault suite reaches these windows only by chance.
 *
 * One pair for the file, B armed with every case's crash point at once (a fresh pair per case,
 * and a restart to arm each, cost three times the agent starts); each case has its own paths,
 * disarms its point once it fired, and ends converged.
 */

const CRASH_EXIT_MS = 20_000
const BODY = 'the moved file\n'

/** every case's crash point (`<point>@<path>`), armed on B until it fired */
const armed = new Set([
  ...['linked', 'placed', 'intended', 'staged'].map((dir) => `apply-${dir}@${dir}/e/x.txt`),
  'delete-intended@del-intended/d/x.txt',
  'delete-removed@del-removed/d/x.txt',
  'publish-intended@publish-intended/new.txt',
  'publish-put@publish-put/new.txt',
  'publish-put@publish-edited/new.txt'
])
const arm = (b: Agent) => b.setEnv({ SYNC_AGENT_CRASH_AT: [...armed].join(',') })

/** `act` run on the armed B; returns once B has killed itself at `point` for `at`, which is disarmed. */
async function crashAt(b: Agent, point: string, at: string, act: () => Promise<void>): Promise<void> {
  const spec = `${point}@${at}`
  expect(armed.has(spec), `${spec} is armed`).toBe(true)
  await act()
  expect(await b.waitExit({ timeoutMs: CRASH_EXIT_MS }), `B reached crash point ${spec}`).toEqual({ code: null, signal: 'SIGKILL' })
  armed.delete(spec)
  arm(b)
}

describe('a kill -9 at each step of an apply, a delete and a publish', () => {
  const harness = useHarness()
  let a: Agent
  let b: Agent

  beforeAll(async () => {
    ;[a, b] = await harness.startPair()
    await b.stop()
    arm(b)
    await b.start()
  })

  /**
   * `<dir>/d/x.txt` on A and B; A moves `<dir>/d` to `<dir>/e` (fault suite seed 3901's round:
   * a directory moved on a peer) and B crashes at `point` of its apply at `crashPath(dir)`.
   */
  async function movedOnA(dir: string, point: string, crashPath: (dir: string) => string): Promise<{ moved: string; old: string }> {
    const old = `${dir}/d/x.txt`
    await writeFiles(a.folder, { [old]: BODY })
    await waitConverged([a, b])
    await crashAt(b, point, crashPath(dir), () => fs.rename(path.join(a.folder, dir, 'd'), path.join(a.folder, dir, 'e')))
    return { moved: `${dir}/e/x.txt`, old }
  }

  it.each([['linked', 'apply-linked'], ['placed', 'apply-placed']])('a peer\'s file %s, crash, deleted here while down: the delete reaches every node', async (dir, point) => {
    const { moved, old } = await movedOnA(dir, point, (d) => `${d}/e/x.txt`)
    expect(await exists(path.join(b.folder, moved)), 'placed before the crash').toBe(true)
    await fs.rm(path.join(b.folder, moved))
    await b.start()
    const { trees } = await waitConverged([a, b])
    for (const tree of trees) {
      expect(tree.has(moved), 'deleted on purpose, not back').toBe(false)
      expect(tree.has(old)).toBe(false)
    }
  })

  it.each([['intended', 'apply-intended'], ['staged', 'apply-staged']])('a peer\'s file %s, not placed, crash: it arrives after the restart, no temp file left', async (dir, point) => {
    const { moved, old } = await movedOnA(dir, point, (d) => `${d}/e/x.txt`)
    expect(await exists(path.join(b.folder, moved)), 'not placed before the crash').toBe(false)
    await b.start()
    const { trees } = await waitConverged([a, b])
    for (const tree of trees) {
      expect(tree.get(moved)).toMatchObject({ type: 'file', sha256: sha256(BODY) })
      expect(tree.has(old)).toBe(false)
    }
  })

  it('a peer\'s delete being applied, crash once its intent is journaled, the file edited here while down: the edit is kept', async () => {
    const { old } = await movedOnA('del-intended', 'delete-intended', (d) => `${d}/d/x.txt`)
    expect(await exists(path.join(b.folder, old)), 'not removed before the crash').toBe(true)
    await fs.writeFile(path.join(b.folder, old), 'edited while the agent was down\n')
    await b.start()
    const { trees } = await waitConverged([a, b])
    for (const tree of trees) expect(tree.get(old), 'modify beats delete').toMatchObject({ type: 'file', sha256: sha256('edited while the agent was down\n') })
  })

  it('a peer\'s delete applied, crash before its record goes, a new file made there while down: the new file is published, the delete stands for the old one', async () => {
    const { old, moved } = await movedOnA('del-removed', 'delete-removed', (d) => `${d}/d/x.txt`)
    expect(await exists(path.join(b.folder, old)), 'removed before the crash').toBe(false)
    await writeFiles(b.folder, { [old]: 'made anew while the agent was down\n' })
    await b.start()
    const { trees } = await waitConverged([a, b])
    for (const tree of trees) {
      expect(tree.get(old)).toMatchObject({ type: 'file', sha256: sha256('made anew while the agent was down\n') })
      expect(tree.get(moved)).toMatchObject({ type: 'file', sha256: sha256(BODY) })
    }
  })

  it.each(['publish-intended', 'publish-put'])('a new local file, crash at %s, deleted here while down: it reaches no node', async (point) => {
    const file = `${point}/new.txt`
    await crashAt(b, point, file, () => writeFiles(b.folder, { [file]: 'short-lived\n' }))
    await fs.rm(path.join(b.folder, file))
    await b.start()
    const { trees } = await waitConverged([a, b])
    for (const tree of trees) expect(tree.has(file), 'deleted on purpose, not back').toBe(false)
  })

  it('a new local file, crash once it is put in our drive, edited here while down: the edit reaches every node', async () => {
    const file = 'publish-edited/new.txt'
    await crashAt(b, 'publish-put', file, () => writeFiles(b.folder, { [file]: 'first\n' }))
    await fs.writeFile(path.join(b.folder, file), 'second, while the agent was down\n')
    await b.start()
    const { trees } = await waitConverged([a, b])
    for (const tree of trees) expect(tree.get(file)).toMatchObject({ type: 'file', sha256: sha256('second, while the agent was down\n') })
  })
})
