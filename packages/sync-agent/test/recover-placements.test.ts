import { createHash } from 'node:crypto'
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { STAGING_DIR, TEMP_PREFIX } from '@sync-agent/shared'
import { FolderWriter } from '../src/folder-writer.js'
import { IndexStore, type ApplyIntent, type LocalRecord, type Placing } from '../src/index-store.js'
import { createLogger } from '../src/log.js'
import { placingOf, recoverPlacements } from '../src/recover-placements.js'
import { useTempDirs } from './helpers/temp-dirs.js'
import { until } from './helpers/until.js'

const KEY = Buffer.alloc(32, 7)
const VV = { PEERPEERPEERPEER: 3 }
const tempDir = useTempDirs('sa-recover-')
const log = createLogger('silent')

/** A node's folder and data dir; `crash()` opens the index again as a restarted process would. */
async function node() {
  const folder = tempDir()
  const data = tempDir()
  const index = new IndexStore(data, KEY)
  await index.ready()
  const restarted = async () => {
    const again = new IndexStore(data, KEY)
    await again.ready()
    return again
  }
  return { folder, index, restarted }
}

/** Applies `bytes` at `path` as the reconciler does: the intent, with the temp file, journaled before the rename. */
async function apply(folder: string, index: IndexStore, path: string, bytes: Buffer): Promise<void> {
  const hash = createHash('sha256').update(bytes).digest('hex')
  const intent = { hash, size: bytes.length, vv: VV }
  index.intend(path, intent)
  await new FolderWriter(folder).writeFile(path, [bytes], { mtimeMs: 1_700_000_000_000, mode: 0o644, size: bytes.length, hash }, undefined, {
    beforeRename: async ({ tmp, st, byLink }) => {
      index.intend(path, { ...intent, placing: placingOf(tmp, st, byLink) })
      await index.flush()
    }
  })
  // the kill -9 comes here: the record of the apply is never journaled
}

describe('recoverPlacements (an apply interrupted between its rename and its record)', () => {
  // fault suite seed 904: the version was placed, a theme update removed it at once, and the
  // node was killed before the record was journaled; after the restart the version was
  // applied again over the delete (RESURRECTED)
  it('a version placed and then deleted by a program is recorded, so the delete is seen as a local change', async () => {
    const { folder, index, restarted } = await node()
    await apply(folder, index, 'themes/t1/functions.php', Buffer.from('<?php // v2'))
    rmSync(join(folder, 'themes/t1/functions.php'))

    const after = await restarted()
    const outcomes = await recoverPlacements(after, folder, log)
    expect(outcomes.get('themes/t1/functions.php')).toBe('placed-then-changed')
    expect(after.get('themes/t1/functions.php')?.vv).toEqual(VV)
    expect(after.intent('themes/t1/functions.php')).toBeUndefined()
    await after.close()
    await index.close()
  })

  it('a version found in place is recorded as applied, without reading it again', async () => {
    const { folder, index, restarted } = await node()
    await apply(folder, index, 'uploads/a.jpg', Buffer.alloc(5000, 1))

    const after = await restarted()
    expect((await recoverPlacements(after, folder, log)).get('uploads/a.jpg')).toBe('placed')
    const st = lstatSync(join(folder, 'uploads/a.jpg'))
    expect(after.get('uploads/a.jpg')).toMatchObject({ kind: 'file', size: 5000, ino: st.ino, mtimeMs: st.mtimeMs, vv: VV })
    await after.close()
    await index.close()
  })

  it('a temp file still there means the rename never happened: nothing is recorded', async () => {
    const { folder, index, restarted } = await node()
    mkdirSync(join(folder, 'uploads'))
    const tmp = TEMP_PREFIX + 'c0ffee000000'
    writeFileSync(join(folder, 'uploads', tmp), 'new')
    const st = lstatSync(join(folder, 'uploads', tmp))
    index.intend('uploads/b.txt', { hash: 'ab'.repeat(32), size: 3, vv: VV, placing: placingOf(tmp, st, true) })
    await index.flush()

    const after = await restarted()
    expect((await recoverPlacements(after, folder, log)).get('uploads/b.txt')).toBe('not-placed')
    expect(after.get('uploads/b.txt')).toBeUndefined()
    expect(readdirSync(join(folder, 'uploads'))).toEqual([tmp]) // the start-up scan sweeps it
    await after.close()
    await index.close()
  })

  describe('with temp files in the staging directory', () => {
    /** A writer as the agent runs it: temp files staged at the folder's root. */
    async function stagedWriter(folder: string): Promise<FolderWriter> {
      const writer = new FolderWriter(folder)
      expect(await writer.prepareStaging()).toBeNull()
      return writer
    }

    /**
     * Starts a peer's version's apply at `path` (over `existing`, or a new file) that is
     * "killed" once its intent, naming the staged temp file, is journaled: the rename or link
     * never runs. `killed()` lets the writer's clean-up run, after the restart's recovery.
     */
    async function killedBeforeRename(folder: string, index: IndexStore, path: string, content: string, existing?: LocalRecord) {
      const bytes = Buffer.from(content)
      const hash = createHash('sha256').update(bytes).digest('hex')
      const intent = { hash, size: bytes.length, vv: VV }
      index.intend(path, intent)
      let killed!: () => void
      let staged = ''
      const write = (await stagedWriter(folder)).writeFile(path, [bytes], { mtimeMs: 1_700_000_000_000, mode: 0o644, size: bytes.length, hash }, existing, {
        beforeRename: async ({ tmp, st, byLink }) => {
          staged = tmp
          index.intend(path, { ...intent, placing: placingOf(tmp, st, byLink) })
          await index.flush()
          await new Promise<void>((_, reject) => (killed = () => reject(new Error('killed')))) // the kill -9
        }
      })
      await until(() => index.intent(path)?.placing !== undefined, 'the intent with its temp file is journaled')
      const writerKilled = async () => {
        killed()
        await expect(write).rejects.toThrow('killed')
      }
      return { hash, staged, killed: writerKilled }
    }

    /** An old version at `path`, on disk and recorded in the index (the file a peer's version replaces). */
    function oldVersionAt(folder: string, index: IndexStore, path: string) {
      mkdirSync(join(folder, path, '..'), { recursive: true })
      writeFileSync(join(folder, path), 'old version')
      const old = lstatSync(join(folder, path))
      const oldRecord = { kind: 'file' as const, size: old.size, mtimeMs: old.mtimeMs, ino: old.ino, mode: old.mode & 0o777, hash: 'aa'.repeat(32), target: null, vv: { HEREHEREHEREHERE: 1 } }
      index.set(path, oldRecord)
      return { old, oldRecord }
    }

    // fault suite seed 2107: the kill -9 came after the intent with its temp file reached the
    // journal and before the rename; a theme update then removed the theme's directory, the
    // old version and the temp file with it. "Neither left" was read as "placed, then deleted",
    // and the program's delete of the old version went out as a delete of the peer's new one,
    // which nobody here had seen.
    // A chown -R or chmod -R over the folder while the agent is down reaches the staging
    // directory too: for a rename the temp name alone tells, and its ctime is not journaled.
    it.each([
      ['a program removed the directory (seed 2107)', (folder: string) => rmSync(join(folder, 'themes/t1'), { recursive: true })],
      ['an admin\'s chmod -R changed its temp file\'s ctime', (folder: string, staged: string) => chmodSync(join(folder, staged), 0o600)]
    ])('a replacement killed before its rename stays "not placed" when, while the agent was down, %s', async (_what, whileDown) => {
      const { folder, index, restarted } = await node()
      const { old, oldRecord } = oldVersionAt(folder, index, 'themes/t1/screenshot.png')
      const { staged, killed } = await killedBeforeRename(folder, index, 'themes/t1/screenshot.png', 'the peer\'s version', oldRecord)
      expect(index.intent('themes/t1/screenshot.png')?.placing?.ctimeMs).toBeUndefined()
      whileDown(folder, staged)

      const after = await restarted()
      expect((await recoverPlacements(after, folder, log)).get('themes/t1/screenshot.png')).toBe('not-placed')
      // the old version stays recorded: the start-up scan publishes what happened to it, not a
      // delete of the new one
      expect(after.get('themes/t1/screenshot.png')).toMatchObject({ hash: 'aa'.repeat(32), ino: old.ino })
      await killed()
      await after.close()
      await index.close()
    })

    // fault suite seed 16007: killed before the rename of a conflict copy; the restart found the
    // temp file ("not placed") and swept it, and was killed again before it applied the copy.
    // The next restart read the same intent, found no temp file and took it for "placed, then
    // deleted": the copy was recorded, the scan saw it missing and published its delete (LOST)
    it('a rename that never happened stays "not placed" through a second crash before the apply', async () => {
      const { folder, index, restarted } = await node()
      const path = 'uploads/2026/02/img2.sync-conflict-20261129-232519-XHZPBNS.png'
      const { hash, killed } = await killedBeforeRename(folder, index, path, 'the conflict copy')

      // first restart: recovery, then the staging directory is emptied as the agent does at start
      const first = await restarted()
      expect((await recoverPlacements(first, folder, log)).get(path)).toBe('not-placed')
      expect(await stagedWriter(folder)).toBeInstanceOf(FolderWriter)
      expect(readdirSync(join(folder, STAGING_DIR))).toEqual([])
      // the intent stays for the reconcile, without the temp file it no longer has
      expect(first.intent(path)).toMatchObject({ hash, size: 'the conflict copy'.length, vv: VV })
      expect(first.intent(path)?.placing).toBeUndefined()
      await first.close()

      // killed again before the path was applied: the next restart must not record the copy
      const second = await restarted()
      expect((await recoverPlacements(second, folder, log)).has(path)).toBe(false)
      expect(second.get(path)).toBeUndefined()
      expect(second.intent(path)).toMatchObject({ hash, vv: VV })
      await killed()
      await second.close()
      await index.close()
    })

    /**
     * A new file's apply killed between the hard link into place and the unlink of its temp
     * name: the temp file stays in the staging directory, its intent journaled. `afterLink`
     * is what happens to the placed file while the agent is down.
     */
    async function killedAfterLink(afterLink: (abs: string) => void) {
      const { folder, index, restarted } = await node()
      const path = 'uploads/2026/11/photo.jpg'
      const { hash, staged, killed } = await killedBeforeRename(folder, index, path, 'the peer\'s photo')
      linkSync(join(folder, staged), join(folder, path)) // the link; the kill -9 comes before the unlink
      afterLink(join(folder, path))
      const stagedLeft = existsSync(join(folder, staged))
      const after = await restarted()
      const outcome = (await recoverPlacements(after, folder, log)).get(path)
      const record = after.get(path)
      await killed()
      await after.close()
      await index.close()
      return { outcome, record, hash, stagedLeft }
    }

    // fault suite seed 29501: the temp file left behind read as "never placed", and the version
    // was applied again over the program's delete (RESURRECTED)
    it('a version linked into place, then deleted by a program while the agent was down, is recorded as placed', async () => {
      const { outcome, record, hash, stagedLeft } = await killedAfterLink((abs) => rmSync(abs))
      expect(stagedLeft).toBe(true)
      expect(outcome).toBe('placed-then-changed')
      expect(record).toMatchObject({ hash, vv: VV }) // the start-up scan then publishes the delete
    })

    it('a version linked into place and left there is recorded as placed', async () => {
      const { outcome, record, hash } = await killedAfterLink(() => undefined)
      expect(outcome).toBe('placed')
      expect(record).toMatchObject({ hash, vv: VV })
    })

    it('a version linked into place, then replaced by a program, is recorded as placed (the scan publishes the new file on top)', async () => {
      const { outcome, record, hash } = await killedAfterLink((abs) => {
        rmSync(abs)
        writeFileSync(abs, 'a program\'s file')
      })
      expect(outcome).toBe('placed-then-changed')
      expect(record).toMatchObject({ hash, vv: VV })
    })

    it('an intent from a journal written before the ctime was kept reads a temp file left behind as "not placed", as it did', async () => {
      const { folder, index, restarted } = await node()
      const path = 'uploads/2026/11/older.jpg'
      const { killed } = await killedBeforeRename(folder, index, path, 'journaled by an older agent')
      const { ctimeMs: _, ...placing } = index.intent(path)?.placing as Placing
      index.intend(path, { ...(index.intent(path) as ApplyIntent), placing })
      await index.flush()
      const after = await restarted()
      expect(after.intent(path)?.placing?.ctimeMs).toBeUndefined()
      expect((await recoverPlacements(after, folder, log)).get(path)).toBe('not-placed')
      expect(after.get(path)).toBeUndefined()
      await killed()
      await after.close()
      await index.close()
    })

    it('a version placed and then deleted with its directory is still recorded as placed (seed 904)', async () => {
      const { folder, index, restarted } = await node()
      const bytes = Buffer.from('<?php // v2')
      const hash = createHash('sha256').update(bytes).digest('hex')
      const intent = { hash, size: bytes.length, vv: VV }
      index.intend('themes/t1/functions.php', intent)
      let tmp = ''
      await (await stagedWriter(folder)).writeFile('themes/t1/functions.php', [bytes], { mtimeMs: 1_700_000_000_000, mode: 0o644, size: bytes.length, hash }, undefined, {
        beforeRename: async ({ tmp: name, st, byLink }) => {
          tmp = name
          index.intend('themes/t1/functions.php', { ...intent, placing: placingOf(name, st, byLink) })
          await index.flush()
        }
      })
      expect(tmp.startsWith(`${STAGING_DIR}/`)).toBe(true)
      rmSync(join(folder, 'themes/t1'), { recursive: true })

      const after = await restarted()
      expect((await recoverPlacements(after, folder, log)).get('themes/t1/functions.php')).toBe('placed-then-changed')
      expect(after.get('themes/t1/functions.php')).toMatchObject({ hash, vv: VV })
      await after.close()
      await index.close()
    })
  })

  it('an intent journaled before the content was complete (no temp file named) is left to the reconcile', async () => {
    const { folder, index, restarted } = await node()
    index.intend('docs/x.txt', { hash: 'cd'.repeat(32), size: 9, vv: VV })
    await index.flush()
    const after = await restarted()
    expect((await recoverPlacements(after, folder, log)).size).toBe(0)
    expect(after.intent('docs/x.txt')).toBeDefined()
    await after.close()
    await index.close()
  })
})
