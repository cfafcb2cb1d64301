import { beforeAll, describe, expect, it } from 'vitest'
import fs from 'node:fs/promises'
import path from 'node:path'
import { newSecret } from './helpers/cli.ts'
import { exists } from './helpers/files.ts'
import { useHarness } from './helpers/harness.ts'
import { freePorts } from './helpers/ports.ts'
import { waitConverged } from './helpers/sync.ts'
import { readTree, sha256, sha256File } from './helpers/tree.ts'
import { until } from './helpers/until.ts'
import { writeWpCorpus, type WpCorpus } from './helpers/wp-corpus.ts'
import type { Agent } from './helpers/agent.ts'
import type { Harness } from './helpers/harness.ts'

interface ClassJson {
  name: string
  complete: boolean
  pendingFiles: number
  requiredForReady: boolean
}
interface ReadyJson {
  ready: boolean
  reason: string
  readyAt: number | null
  classes: ClassJson[]
}

async function readyz(port: number): Promise<{ status: number; body: ReadyJson }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: res.status, body: (await res.json()) as ReadyJson }
}

/** A with the corpus, fully indexed; both tests take a fresh B from it (A is only a source). */
async function seededA(harness: Harness): Promise<{ a: Agent; corpus: WpCorpus; secret: string }> {
  const secret = await newSecret()
  const [aHttp] = (await freePorts(1)) as [number]
  const a = await harness.agent({ name: 'a', secret, env: { SYNC_AGENT_HTTP: String(aHttp) } })
  const corpus = await writeWpCorpus(a.folder)
  const total = corpus.critical.length + corpus.uploads.length + corpus.other.length
  await a.start()
  await until(
    async () => {
      const s = await a.status()
      return s.inSync && s.files === total
    },
    { timeoutMs: 90_000, intervalMs: 500, message: `A has indexed its ${total} files` }
  )
  return { a, corpus, secret }
}

/** A fresh B (empty folder and data dir) that dials A and serves HTTP. */
async function freshB(harness: Harness, a: Agent, secret: string): Promise<{ b: Agent; bHttp: number }> {
  const [bHttp] = (await freePorts(1)) as [number]
  const b = await harness.agent({ name: 'b', secret, peers: [a.address], env: { SYNC_AGENT_HTTP: String(bHttp) } })
  await b.start()
  return { b, bHttp }
}

async function presentUploads(b: Agent, corpus: WpCorpus): Promise<WpCorpus['uploads']> {
  const present = await Promise.all(corpus.uploads.map((u) => exists(path.join(b.folder, u.path))))
  return corpus.uploads.filter((_, i) => present[i])
}

describe('themes first: readiness of a fresh node', () => {
  const harness = useHarness()
  // A and its corpus (~150 MiB) are made once for the file: each test starts its own fresh B
  let seeded: { a: Agent; corpus: WpCorpus; secret: string }
  beforeAll(async () => {
    seeded = await seededA(harness)
  }, 120_000)

  it('B is ready only once every critical file is on disk, well before the uploads finish, and fetches the newest uploads first', async () => {
    const { a, corpus, secret } = seeded
    const { b, bHttp } = await freshB(harness, a, secret)
    const aTree = await readTree(a.folder)

    // before ready, /readyz says 503 with the progress
    const first = await readyz(bHttp)
    if (first.status === 503) expect(first.body).toMatchObject({ ready: false, classes: expect.any(Array) })

    const atReady = await until(
      async () => {
        const r = await readyz(bHttp)
        return r.status === 200 ? r.body : undefined
      },
      { timeoutMs: 120_000, intervalMs: 25, message: 'B reports ready on /readyz' }
    )
    // what B holds at that moment
    const uploadsAtReady = await presentUploads(b, corpus)
    b.note(`ready; ${uploadsAtReady.length}/${corpus.uploads.length} uploads on disk`)
    for (const rel of corpus.critical) {
      const expected = aTree.get(rel)
      expect(expected?.type, rel).toBe('file')
      const got = await sha256File(path.join(b.folder, rel)).catch(() => 'missing')
      expect(got, `critical file ${rel} on B when B became ready`).toBe(expected?.type === 'file' ? expected.sha256 : '')
    }
    const critical = atReady.classes.find((c) => c.name === 'critical')
    const uploads = atReady.classes.find((c) => c.name === 'uploads')
    expect(critical).toMatchObject({ requiredForReady: true, complete: true, pendingFiles: 0 })
    // not `complete: false`: the body is B's state when it answered, which a loaded test
    // process asks late (a full suite run: 2.7 s after B's "node is ready", every upload
    // placed by then); the uploads placed before ready are counted below by their ctimes
    expect(uploads).toMatchObject({ requiredForReady: false })

    const { statuses } = await waitConverged([a, b], { timeoutMs: 180_000, intervalMs: 1_000 })
    expect(statuses[1]).toMatchObject({ ready: true, inSync: true })

    // uploads arrive newest first: the first quarter B finished is (nearly) all from the newest
    // months. Read from the disk, not sampled while it runs: each file's ctime is when its
    // atomic write finished (its mtime is set, then it is renamed into place), and a busy
    // test process samples late (it hashed the critical files first), not in another order
    const months = [...new Set(corpus.uploads.map((u) => u.month))].sort((x, y) => x - y)
    const newestHalf = new Set(months.slice(Math.floor(months.length / 2)))
    const finished = await Promise.all(
      corpus.uploads.map(async (u) => ({ u, at: (await fs.stat(path.join(b.folder, u.path), { bigint: true })).ctimeNs }))
    )
    finished.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0))
    // the uploads in place when B became ready, by the same clock (readyAt is ms since the
    // epoch); sampling the disk once /readyz says 200 counted what B placed while the loaded
    // test process was still asking (a full suite run: 34 of 96)
    expect(atReady.readyAt).toEqual(expect.any(Number))
    const readyNs = BigInt(atReady.readyAt as number + 1) * 1_000_000n
    const placedBeforeReady = finished.filter((f) => f.at <= readyNs).length
    b.note(`${placedBeforeReady} uploads placed before B became ready (ctimes)`)
    expect(placedBeforeReady, 'uploads on disk when B became ready').toBeLessThanOrEqual(corpus.uploads.length / 4)
    const early = finished.slice(0, Math.ceil(corpus.uploads.length / 4)).map((f) => f.u)
    const fromNewestHalf = early.filter((u) => newestHalf.has(u.month)).length
    b.note(`first ${early.length} uploads finished on B: ${fromNewestHalf} from the newest half of the months`)
    expect(fromNewestHalf / early.length).toBeGreaterThanOrEqual(0.9)

    const logLine = b.stdout.split('\n').find((l) => l.includes('"node is ready"'))
    expect(logLine).toBeDefined()
  })

  it('serves an upload that is not synced yet on demand, and refuses what it must not serve', async () => {
    const { a, corpus, secret } = seeded
    const { b, bHttp } = await freshB(harness, a, secret)
    await until(async () => (await readyz(bHttp)).status === 200, { timeoutMs: 120_000, intervalMs: 50, message: 'B is ready' })
    // the oldest upload comes last in the uploads class: ask for it now
    const oldest = corpus.uploads[0]!
    expect(await exists(path.join(b.folder, oldest.path))).toBe(false)
    const res = await fetch(`http://127.0.0.1:${bHttp}/files/${oldest.path}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/jpeg')
    expect(res.headers.get('x-sync-agent')).toBe('fetched')
    const body = Buffer.from(await res.arrayBuffer())
    expect(sha256(body)).toBe(await sha256File(path.join(a.folder, oldest.path)))
    // it jumped the queue: the uploads class was still being fetched
    const after = await readyz(bHttp)
    expect(after.body.classes.find((c) => c.name === 'uploads')?.complete).toBe(false)
    // served again, now from disk
    const again = await fetch(`http://127.0.0.1:${bHttp}/files/${oldest.path}`)
    expect(again.headers.get('x-sync-agent')).toBe('disk')
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(sha256(body))

    const refused: Array<[string, number]> = [
      ['themes/theme0/f0.php', 403], // PHP source, and not in the served classes
      ['uploads/evil.php', 403], // PHP is never served
      ['uploads/.htaccess', 403], // dotfiles never
      ['plugins/plugin0/assets/f1.css', 403], // not in the served classes
      ['uploads/..%2F..%2Fetc%2Fpasswd', 400], // an encoded traversal
      ['uploads/a%00b.jpg', 400], // NUL
      ['uploads/%E0%A4%A.jpg', 400], // bad percent-encoding
      ['uploads/2099/01/nobody-has-this.jpg', 404]
    ]
    for (const [rel, status] of refused) {
      const r = await fetch(`http://127.0.0.1:${bHttp}/files/${rel}`)
      expect(r.status, rel).toBe(status)
      await r.arrayBuffer()
    }
    // nothing was written outside B's folder, and /healthz still answers
    expect((await fetch(`http://127.0.0.1:${bHttp}/healthz`)).status).toBe(200)
    await fs.access(path.join(b.folder, oldest.path))
    await waitConverged([a, b], { timeoutMs: 180_000, intervalMs: 1_000 })
  })
})
