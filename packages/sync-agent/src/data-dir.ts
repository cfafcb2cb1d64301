import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SyncError } from '@sync-agent/shared'

/**
 * The state directory: created 0700, and stamped with its format version. A data dir of a
 * newer format, or of an unknown one, is refused, never overwritten.
 */
export const DATA_FORMAT = 1
const FORMAT_FILE = 'FORMAT'

export async function prepareDataDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  let text: string | null = null
  try {
    text = await readFile(join(dir, FORMAT_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text === null) {
    await writeFile(join(dir, FORMAT_FILE), `sync-agent data format ${DATA_FORMAT}\n`, { mode: 0o600 })
    return
  }
  const match = /^sync-agent data format (\d+)\s*$/.exec(text)
  if (!match) throw new SyncError('E_DATA_DIR', `${dir} is not a sync-agent data dir or is damaged (bad ${FORMAT_FILE} file); refusing to touch it`)
  const format = Number(match[1])
  if (format > DATA_FORMAT) {
    throw new SyncError('E_DATA_DIR', `${dir} was written by a newer sync-agent (format ${format}, this one reads ${DATA_FORMAT}); upgrade sync-agent`)
  }
}
