import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
import { writeFiles } from './helpers/files.ts'
import { useHarness, type Harness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { sha256, sha256File, STAGING_DIR } from './helpers/tree.ts'

/** every file under `dir` with its content, paths relative, sorted */
/** A, and B dialling it with a versions dir (`versions`); neither started. */
async function pairKeepingVersionsOnB(harness: Harness) {
  const secret = await newSecret()
  const versions = path.join(await harness.tmpDir(), 'versions')
  const a = await harness.agent({ name: 'a', secret })
  const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_VERSIONS_DIR: versions } })
  return { a, b, versions }
}

async function contents(dir: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const abs = path.join(entry.parentPath, entry.name)
    out.push([path.relative(dir, abs), await fs.readFile(abs, 'utf8')])
  }
  return out.sort((x, y) => x[0].localeCompare(y[0]))
}

/**
 * Versions (Syncthing's trash can, Resilio's Archive): what a peer's change replaces or deletes
 * on B is kept in B's versions dir, named `name~YYYYMMDD-HHMMSS.ext`; what B's user changes
 * is not (it is theirs), and the folders stay equal.
 */
describe('versionsDir', () => {
  const harness = useHarness()

  it('keeps on B what A replaced or deleted, not what B changed itself', async () => {
    const { a, b, versions } = await pairKeepingVersionsOnB(harness)
    await writeFiles(a.folder, {
      'uploads/2026/11/cat.jpg': 'cat v1',
      'themes/t/style.css': 'body { color: red }',
      'index.php': '<?php // v1'
    })
    await a.start()
    await b.start()
    await b.waitForLog(/keeping what peers replace or delete/)
    await waitConverged([a, b])
    // a fresh node's first sync replaces nothing
    expect(await contents(versions)).toEqual([])

    await fs.writeFile(path.join(a.folder, 'uploads/2026/11/cat.jpg'), 'cat v2')
    await fs.rm(path.join(a.folder, 'themes/t/style.css'))
    await waitConverged([a, b])
    const kept = await contents(versions)
    expect(kept).toEqual([
      [expect.stringMatching(/^themes\/t\/style~\d{8}-\d{6}\.css$/), 'body { color: red }'],
      [expect.stringMatching(/^uploads\/2026\/11\/cat~\d{8}-\d{6}\.jpg$/), 'cat v1']
    ])

    // status says so, in JSON and in words; A keeps none
    expect((await b.status()).versions).toEqual({ dir: await fs.realpath(versions), keepDays: 30, keptSinceStart: 2 })
    expect((await a.status()).versions).toBeNull()
    expect((await runCli(['status', '--control', b.control])).stdout).toMatch(/^versions 2 kept since start in .*versions \(kept 30 days\)$/m)
    // B's own edit is published, not kept; A's copy is replaced, but A keeps no versions
    await fs.writeFile(path.join(b.folder, 'index.php'), '<?php // v2 from B')
    await waitConverged([a, b])
    expect(await fs.readFile(path.join(a.folder, 'index.php'), 'utf8')).toBe('<?php // v2 from B')
    expect(await contents(versions)).toEqual(kept)
    // the versions dir is not synced: A's folder has none of it (beside the staging directory)
    expect((await fs.readdir(a.folder)).filter((n) => !n.startsWith('.syncagent-tmp')).sort()).toEqual(['index.php', 'themes', 'uploads'])
  })
})

/**
 * `sync-agent versions` lists what B keeps and `versions restore` puts one back: written by
 * B's folder writer, published like an edit (A gets it), the file it replaced kept in turn.
 */
describe('sync-agent versions', () => {
  const harness = useHarness()
  const CAT = 'uploads/2026/11/cat.jpg'

  it('lists the versions kept, restores one (newest or by stamp) that then reaches the peer, and says clearly what it cannot do', async () => {
    const { a, b, versions } = await pairKeepingVersionsOnB(harness)
    await writeFiles(a.folder, { [CAT]: 'cat v1', 'themes/t/style.css': 'body { color: red }' })
    await a.start()
    await b.start()
    await waitConverged([a, b])
    const v1Mtime = (await fs.stat(path.join(b.folder, CAT))).mtimeMs
    for (const content of ['cat v2', 'cat v3']) {
      await fs.writeFile(path.join(a.folder, CAT), content)
      await waitConverged([a, b])
    }
    await fs.rm(path.join(a.folder, 'themes/t/style.css'))
    await waitConverged([a, b])

    // the listing: by path, newest first, with the stamps restore takes
    const listed = await runCli(['versions', '--json', '--control', b.control])
    expect(listed.code, listed.stderr).toBe(0)
    const all = JSON.parse(listed.stdout) as { dir: string; versions: Array<{ path: string; name: string; stamp: string; size: number; mtimeMs: number }>; truncated: boolean }
    expect(all.dir).toBe(await fs.realpath(versions))
    expect(all.truncated).toBe(false)
    expect(all.versions.map((v) => v.path)).toEqual(['themes/t/style.css', CAT, CAT])
    const [v2, v1] = all.versions.slice(1) as [(typeof all.versions)[number], (typeof all.versions)[number]]
    expect(await fs.readFile(path.join(versions, v2.name), 'utf8')).toBe('cat v2')
    expect(await fs.readFile(path.join(versions, v1.name), 'utf8')).toBe('cat v1')
    expect(v1).toMatchObject({ size: 6, mtimeMs: v1Mtime })
    // a file's own, a directory's, an absolute path inside the folder, nothing under another
    for (const asked of [CAT, 'uploads', './uploads/', path.join(b.folder, 'uploads/2026')]) {
      const r = await runCli(['versions', asked, '--json', '--control', b.control])
      expect((JSON.parse(r.stdout) as typeof all).versions.map((v) => v.name), asked).toEqual([v2.name, v1.name])
    }
    expect((JSON.parse((await runCli(['versions', 'plugins', '--json', '--control', b.control])).stdout) as typeof all).versions).toEqual([])
    const human = await runCli(['versions', CAT, '--control', b.control])
    expect(human.stdout).toContain(`${CAT}\n  ${v2.stamp}`)
    expect(human.stdout).toMatch(/^2 versions of 1 file of uploads\/2026\/11\/cat\.jpg in .*versions$/m)

    // restore the older one by its stamp: B has it back (bytes and mtime), A gets it, and the
    // file it replaced (v3) is kept in turn
    const restored = await runCli(['versions', 'restore', CAT, '--version', v1.stamp, '--control', b.control])
    expect(restored.code, restored.stderr).toBe(0)
    expect(restored.stdout).toMatch(new RegExp(`^restored ${CAT} from its version of .* \\(${v1.stamp}\\); the file it replaced is kept as uploads/2026/11/cat~\\d{8}-\\d{6}(-\\d+)?\\.jpg\\n$`))
    await waitConverged([a, b])
    expect(await fs.readFile(path.join(a.folder, CAT), 'utf8')).toBe('cat v1')
    // its mtime back (to the millisecond: utimes takes seconds as a double)
    expect(Math.abs((await fs.stat(path.join(b.folder, CAT))).mtimeMs - v1Mtime)).toBeLessThan(1)
    const after = (JSON.parse((await runCli(['versions', CAT, '--json', '--control', b.control])).stdout) as typeof all).versions
    expect(after).toHaveLength(3)
    expect(await fs.readFile(path.join(versions, (after[0] as (typeof after)[number]).name), 'utf8')).toBe('cat v3')
    // a deleted file, its newest version by default: back on both
    expect((await runCli(['versions', 'restore', 'themes/t/style.css', '--control', b.control])).code).toBe(0)
    await waitConverged([a, b])
    expect(await fs.readFile(path.join(a.folder, 'themes/t/style.css'), 'utf8')).toBe('body { color: red }')

    // what it cannot do, each one line naming the problem; nothing in the folder changes
    const cases: Array<[string[], number, RegExp]> = [
      [['versions', 'restore', 'uploads/none.jpg'], 1, /^sync-agent: no version of uploads\/none\.jpg is kept in /],
      [['versions', 'restore', CAT, '--version', '19990101-000000'], 1, new RegExp(`^sync-agent: no version "19990101-000000" of ${CAT}; kept: \\d{8}-\\d{6}`)],
      [['versions', 'restore', '../outside.txt'], 2, /^sync-agent: unsafe path "\.\.\/outside\.txt": the path has a "\." or "\.\." segment/],
      [['versions', 'restore', '/etc/passwd'], 2, /^sync-agent: \/etc\/passwd is not inside the folder /],
      [['versions', 'restore'], 2, /^sync-agent: versions restore: give the PATH of the file to restore/],
      [['versions', 'restore', 'uploads'], 1, /^sync-agent: no version of uploads is kept/]
    ]
    const before = await fs.readFile(path.join(b.folder, CAT), 'utf8')
    for (const [args, code, message] of cases) {
      const r = await runCli([...args, '--control', b.control])
      expect({ args, code: r.code, stderr: r.stderr }).toMatchObject({ code, stderr: expect.stringMatching(message) })
      // one line naming the problem (the usage text only for a malformed command line)
      if (args.length > 2) expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1)
    }
    expect(await fs.readFile(path.join(b.folder, CAT), 'utf8')).toBe(before)
    // A keeps none: it says so, and fails
    const none = await runCli(['versions', '--control', a.control])
    expect({ code: none.code, stdout: none.stdout }).toEqual({ code: 1, stdout: 'this agent keeps no versions (versionsDir is not set)\n' })
    expect((await runCli(['versions', 'restore', CAT, '--control', a.control])).stderr).toBe('sync-agent: this agent keeps no versions (versionsDir is not set)\n')
  })
})

/**
 * A restore killed with SIGKILL while it copies: after a restart nothing is half-written, no
 * temp file stays, both nodes hold one whole version (the old or the restored one), the
 * version is still kept, and restoring it again works. B kills itself once the first piece of
 * the copy is in its temp file (crash point restore-partial): a kill timed from outside needed
 * 48 MiB files to land mid-copy (19 s alone, 44 s in a full `pnpm test`).
 */
describe('sync-agent versions restore, killed mid-copy', () => {
  const harness = useHarness()
  const BIG = 'uploads/2026/11/film.mp4'
  const MiB = 1024 * 1024

  it('leaves one whole version everywhere and the kept version intact', async () => {
    const { a, b, versions } = await pairKeepingVersionsOnB(harness)
    b.setEnv({ SYNC_AGENT_CRASH_AT: `restore-partial@${BIG}` })
    // 16 pieces of the read stream's 64 KiB
    const v1 = randomBytes(MiB)
    const v2 = randomBytes(MiB)
    await fs.mkdir(path.join(a.folder, 'uploads/2026/11'), { recursive: true })
    await fs.writeFile(path.join(a.folder, BIG), v1)
    await a.start()
    await b.start()
    await waitConverged([a, b])
    await fs.writeFile(path.join(a.folder, BIG), v2)
    await waitConverged([a, b])
    const listed = JSON.parse((await runCli(['versions', BIG, '--json', '--control', b.control])).stdout) as { versions: Array<{ stamp: string }> }
    expect(listed.versions).toHaveLength(1)

    // B kills itself once the restore's temp file holds the first piece
    const restoring = runCli(['versions', 'restore', BIG, '--control', b.control], { timeoutMs: 60_000 })
    expect(await b.waitExit({ timeoutMs: 30_000 }), 'B reached crash point restore-partial').toEqual({ code: null, signal: 'SIGKILL' })
    expect((await restoring).code).not.toBe(0)
    // the precondition: the copy was cut off (its temp file is there, part written, not renamed)
    const staging = path.join(b.folder, STAGING_DIR)
    const cut = await Promise.all((await fs.readdir(staging).catch(() => [] as string[])).map(async (n) => (await fs.stat(path.join(staging, n))).size))
    expect(cut, 'one temp file, cut off after its first piece').toEqual([64 * 1024])
    expect(await sha256File(path.join(b.folder, BIG))).toBe(sha256(v2))

    b.setEnv({ SYNC_AGENT_CRASH_AT: undefined })
    await b.start()
    const { trees } = await waitConverged([a, b])
    const onBoth = trees[0]!.get(BIG)
    expect(onBoth).toMatchObject({ type: 'file' })
    const hash = await sha256File(path.join(b.folder, BIG))
    expect([sha256(v1), sha256(v2)]).toContain(hash)
    expect(await sha256File(path.join(a.folder, BIG))).toBe(hash)
    // the version is still kept (a restore copies it), whole
    const after = JSON.parse((await runCli(['versions', BIG, '--json', '--control', b.control])).stdout) as { versions: Array<{ stamp: string; name: string; size: number }> }
    const kept = after.versions.find((v) => v.stamp === listed.versions[0]!.stamp)
    expect(kept?.size).toBe(v1.length)
    expect(await sha256File(path.join(versions, kept!.name))).toBe(sha256(v1))
    // and restoring it again works, to the peer too
    const again = await runCli(['versions', 'restore', BIG, '--version', kept!.stamp, '--control', b.control], { timeoutMs: 60_000 })
    expect(again.code, again.stderr).toBe(0)
    await waitConverged([a, b])
    expect(await sha256File(path.join(a.folder, BIG))).toBe(sha256(v1))
  })
})
