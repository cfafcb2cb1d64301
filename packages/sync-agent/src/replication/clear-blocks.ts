import type Hypercore from 'hypercore'

/**
 * Clears blocks `start`..`end - 1` of a core we write, without losing any node of its Merkle
 * tree. Returns the first block cleared (`end`: none).
 *
 * Hypercore's `clear` (hypercore 11.39, `SessionState.clear`) also deletes tree nodes: from the
 * first cleared block's leaf up, the node and its sibling, for as long as the sibling's blocks
 * are all cleared or not held. A peer that verified our core up to a length inside that range
 * then cannot be given an upgrade proof from its length (the nodes of its roots are gone): its
 * reads of any later block wait out their timeout, and a proof that needs such a node fails
 * the connection ("Expected tree node 18 from storage, got (nil)"). Found by the fault suite's
 * CI round (session 28, converged in 38–47 s): an author had released a replaced version's
 * blocks 8–9 and a peer held our blob core at length 9.
 *
 * The walk stops at once when the first cleared block's sibling is held and lies before it.
 * So the first one or two blocks of the range are kept when needed: an even first block (its
 * sibling is the next one, cleared too) is kept; an odd one whose sibling before it is not
 * held is kept, and the next (even) one with it.
 */
export function clearKeepingTree(core: Hypercore, start: number, end: number): Promise<number> {
  // one at a time per core: a release that cleared the sibling we found held, between our
  // look and our clear, would let Hypercore's walk delete nodes after all
  const run = (running.get(core) ?? Promise.resolve()).then(() => clearFrom(core, start, end))
  const settled = run.then(
    () => undefined,
    () => undefined
  )
  running.set(core, settled)
  void settled.then(() => {
    if (running.get(core) === settled) running.delete(core)
  })
  return run
}

const running = new WeakMap<Hypercore, Promise<void>>()

async function clearFrom(core: Hypercore, start: number, end: number): Promise<number> {
  let from = start
  while (from < end) {
    const sibling = from ^ 1
    if (sibling < from && (await core.has(sibling))) break
    from++
  }
  if (from < end) await core.clear(from, end)
  return from
}
