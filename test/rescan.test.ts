import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { newSecret, runCli } from './helpers/cli.ts'
import { useHarness } from './helpers/harness.ts'
import { waitConverged } from './helpers/sync.ts'
import { stays, until } from './helpers/until.ts'

/** daemon.ts's UNREPORTED_BY_WATCHER */
const UNREPORTED = 'the periodic rescan found changes the watcher did not report'

/**
 * `sync-agent rescan`: a change the watcher cannot see (written through a hard link outside the
 * folder: inotify reports events on the directory a file was reached through) is found when an
 * admin asks, not at the periodic rescan (10 min by default).
 */
describe('sync-agent rescan', () => {
  const harness = useHarness()

  it('finds a change the watcher missed and publishes it; says what it found', async () => {
    const [a, b] = await harness.startPair({ seedA: async (folder) => fs.writeFile(path.join(folder, 'index.php'), '<?php // v1\n') })
    await waitConverged([a, b])
    const outside = path.join(await harness.tmpDir(), 'index-link.php')
    await fs.link(path.join(a.folder, 'index.php'), outside)
    await fs.appendFile(outside, '// edited through a link outside the folder\n')
    const edited = '<?php // v1\n// edited through a link outside the folder\n'
    const onB = () => fs.readFile(path.join(b.folder, 'index.php'), 'utf8')
    // the precondition: the watcher does not see it (else this test would prove nothing)
    await stays(async () => (await onB()) !== edited, { durationMs: 2_000, message: 'the edit is not seen without a rescan' })

    const r = await runCli(['rescan', '--control', a.control])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^rescanned \d+ entries in \d+ ms: 1 changed, 0 gone: being published\n$/)
    await until(async () => (await onB()) === edited, { timeoutMs: 20_000, message: 'B gets the edit the rescan found' })
    await waitConverged([a, b])
    const again = await runCli(['rescan', '--json', '--control', a.control])
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: 0, gone: 0, entries: expect.any(Number), durationMs: expect.any(Number) })
    expect((await runCli(['rescan', 'extra', '--control', a.control])).code).toBe(2)
  })

  // the periodic rescan names what it finds that the watcher did not report (for the next look
  // at a watcher that missed a change: fault suite seed 4213), and nothing the watcher did report
  it('the periodic rescan names a change the watcher did not report, and only such a change', async () => {
    const secret = await newSecret()
    const a = await harness.agent({ name: 'a', secret, env: { SYNC_AGENT_RESCAN_INTERVAL_S: '1' } })
    const b = await harness.agent({ name: 'b', secret, peers: [a.address] })
    await fs.writeFile(path.join(a.folder, 'index.php'), '<?php // v1\n')
    await a.start()
    await b.start()
    await waitConverged([a, b])
    const rescansOf = (agent: typeof a) => agent.stdout.split('\n').filter((l) => l.includes('"rescan done"') && l.includes('"why":"periodic"'))
    const unreported = (agent: typeof a) => agent.stdout.split('\n').filter((l) => l.includes(UNREPORTED))
    // an edit the watcher sees: published, then two periodic rescans pass without naming it
    await fs.appendFile(path.join(a.folder, 'index.php'), '// seen by the watcher\n')
    await waitConverged([a, b])
    const before = rescansOf(a).length
    await until(() => rescansOf(a).length >= before + 2, { timeoutMs: 10_000, message: 'two more periodic rescans on A' })
    expect(unreported(a)).toEqual([])
    // an edit it cannot see (through a hard link outside the folder): the next periodic rescan
    // finds it, says so with the path, and B gets it
    const outside = path.join(await harness.tmpDir(), 'index-link.php')
    await fs.link(path.join(a.folder, 'index.php'), outside)
    await fs.appendFile(outside, '// edited through a link outside the folder\n')
    const line = await until(() => unreported(a)[0], { timeoutMs: 10_000, message: 'A names the change its watcher did not report' })
    expect(JSON.parse(line)).toMatchObject({ count: 1, paths: ['index.php'] })
    const edited = '<?php // v1\n// seen by the watcher\n// edited through a link outside the folder\n'
    await until(async () => (await fs.readFile(path.join(b.folder, 'index.php'), 'utf8')) === edited, { timeoutMs: 20_000, message: 'B gets the edit the rescan found' })
  })
})
