import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { removeFile } from './state-file.js'

/**
 * What the event-loop watchdog of an earlier run wrote before it ended that run
 * (event-loop-watchdog.ts): a restart that followed a stall says so in the log and in
 * `sync-agent status` (errors), not only in an old run's log lines, as Syncthing keeps its
 * `panic-*.log` files.
 */
export interface PreviousStall {
  /** when the run ended itself (ISO time) */
  at: string
  stalledS: number
  /** the main thread's stack samples (`fn file:line:col < caller …`), maybe none */
  samples: string[]
  /** why there are fewer samples than asked, if so */
  note?: string
}

/** The file in the data dir (mode 0600). */
export const STALL_FILE = 'last-stall.json'

/** The stall an earlier run left, removed so it is reported once; null if none. */
export async function takePreviousStall(dataDir: string): Promise<PreviousStall | null> {
  const file = join(dataDir, STALL_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  await removeFile(file)
  return parseStall(text)
}

function parseStall(text: string): PreviousStall {
  const unreadable: PreviousStall = { at: 'unknown', stalledS: 0, samples: [], note: `${STALL_FILE} could not be read` }
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return unreadable
  }
  if (typeof v !== 'object' || v === null) return unreadable
  const o = v as Record<string, unknown>
  if (typeof o.at !== 'string' || typeof o.stalledS !== 'number' || !Array.isArray(o.samples) || !o.samples.every((s) => typeof s === 'string')) return unreadable
  const stall: PreviousStall = { at: o.at, stalledS: o.stalledS, samples: o.samples as string[] }
  if (typeof o.note === 'string') stall.note = o.note
  return stall
}
