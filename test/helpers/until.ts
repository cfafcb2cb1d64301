import { setTimeout as delay } from 'node:timers/promises'
import { inspect } from 'node:util'

/** Thrown by a condition to stop `until` at once: waiting longer cannot help (e.g. the agent died). */
export class GiveUpError extends Error {
  override name = 'GiveUpError'
}

/** T without its falsy members: what `until` hands back once the condition holds. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>

export interface UntilOptions {
  timeoutMs: number
  intervalMs?: number
  /** What we were waiting for, e.g. 'B has all of A's files'. */
  message: string
}

function describeObserved(observed: unknown): string {
  if (observed instanceof Error) return `threw: ${observed.message}`
  return `returned: ${inspect(observed, { depth: 6, breakLength: 120, maxStringLength: 4000 })}`
}

/**
 * Polls `condition` until it returns a truthy value without throwing, and returns that
 * value. A condition can explain why it is not met yet by throwing (e.g. a tree diff); the
 * last thrown error or returned value is put in the timeout error.
 */
export async function until<T>(
  condition: () => T | Promise<T>,
  { timeoutMs, intervalMs = 200, message }: UntilOptions
): Promise<Truthy<T>> {
  const startedAt = Date.now()
  const deadline = startedAt + timeoutMs
  let observed: unknown = undefined
  let attempts = 0
  for (;;) {
    attempts++
    try {
      const value = await condition()
      if (value) return value as Truthy<T>
      observed = value
    } catch (error) {
      if (error instanceof GiveUpError) throw error
      observed = error
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${Date.now() - startedAt} ms (${attempts} attempts) waiting until ${message}; last check ${describeObserved(observed)}`
      )
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())))
  }
}

export interface StaysOptions {
  durationMs: number
  intervalMs?: number
  /** What must stay true, e.g. 'B's copy of f is not rewritten'. */
  message: string
}

/**
 * Checks that `condition` holds (truthy, no throw) at every poll during `durationMs`.
 * This is an observation window, not a sleep: it fails as soon as the condition breaks.
 */
export async function stays(
  condition: () => unknown | Promise<unknown>,
  { durationMs, intervalMs = 250, message }: StaysOptions
): Promise<void> {
  const startedAt = Date.now()
  const end = startedAt + durationMs
  for (;;) {
    let observed: unknown
    try {
      observed = await condition()
    } catch (error) {
      observed = error
    }
    if (!observed || observed instanceof Error) {
      throw new Error(
        `expected that ${message} for ${durationMs} ms, but it broke after ${Date.now() - startedAt} ms; check ${describeObserved(observed)}`
      )
    }
    if (Date.now() >= end) return
    await delay(Math.min(intervalMs, Math.max(0, end - Date.now())))
  }
}
