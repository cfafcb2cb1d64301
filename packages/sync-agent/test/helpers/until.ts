/**
 * Resolves once `condition` holds, checking after each turn of the event loop (in-process
 * tests: the engine's work is promises and immediates, no timers); throws after `timeoutMs`.
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}
