import { SyncError } from '@sync-agent/shared'

/**
 * Scale overrides, for tests: a few of the engine's size thresholds can be lowered through the
 * environment so a test reaches them with hundreds of files instead of thousands, and runs the
 * same code in a fraction of the time (a fresh node's bulk sync, the bound on queued paths).
 * Not settings: not in the config schema, the README's table or `status`; a deployment never
 * sets them. Read once when the module loads; a malformed value stops the process with a
 * message naming the variable (E_CONFIG: a test that meant to lower a threshold must not
 * silently run with the default).
 */

/**
 * `process.env[name]` as a whole number in [min, fallback], or `fallback` when unset. An
 * override may only lower a threshold: raising one is not what it is for.
 */
export function scaleOverride(name: string, fallback: number, min: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(value) || value < min || value > fallback) {
    throw new SyncError('E_CONFIG', `${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${fallback} (a test-only override)`, { details: { variable: name } })
  }
  return value
}
