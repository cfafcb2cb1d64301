import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { removeFile, replaceFile } from './state-file.js'

/**
 * `sync-agent pause` survives a restart (a container rebuilt during a maintenance window must
 * not start syncing a half-done plugin update): the time it was paused, in `<data>/paused.json`.
 * Written through state-file.ts, so a crash leaves it paused or not, never unreadable.
 */
const FILE = 'paused.json'

export async function readPausedSince(dataDir: string): Promise<number | null> {
  try {
    const since = (JSON.parse(await readFile(join(dataDir, FILE), 'utf8')) as { since?: unknown }).since
    return typeof since === 'number' && Number.isFinite(since) ? since : Date.now()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    // there but unreadable (written by hand?): paused is the safe reading
    return Date.now()
  }
}

export function writePausedSince(dataDir: string, since: number | null): Promise<void> {
  const file = join(dataDir, FILE)
  return since === null ? removeFile(file) : replaceFile(file, JSON.stringify({ since }))
}
