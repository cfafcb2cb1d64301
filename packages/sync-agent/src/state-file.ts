import { rename, rm, writeFile } from 'node:fs/promises'

/**
 * Small state files in the data dir (the member list, the clock offsets, the pause flag):
 * replaced through a temp file and a rename, so a crash leaves the old file or the new one,
 * never a torn one; mode 0600. Writes and removals of one file run one after the other, in the
 * order asked, so the last one asked is what stays (two saves at once shared the temp file:
 * one rename failed with ENOENT and the older content could win).
 */
const queues = new Map<string, Promise<void>>()

function inTurn(file: string, op: () => Promise<void>): Promise<void> {
  const next = (queues.get(file) ?? Promise.resolve()).catch(() => undefined).then(op)
  queues.set(file, next)
  void next
    .finally(() => {
      if (queues.get(file) === next) queues.delete(file)
    })
    .catch(() => undefined)
  return next
}

export function replaceFile(file: string, text: string): Promise<void> {
  return inTurn(file, async () => {
    await writeFile(`${file}.tmp`, text, { mode: 0o600 })
    await rename(`${file}.tmp`, file)
  })
}

export function removeFile(file: string): Promise<void> {
  return inTurn(file, () => rm(file, { force: true }))
}
