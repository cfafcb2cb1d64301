import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import type { Agent } from './agent.ts'
import { newSecret } from './cli.ts'
import { useHarness, type Harness } from './harness.ts'
import { cpuMs, HostilePeer, rssBytes } from './hostile-peer.ts'
import { until } from './until.ts'

/**
 * The stage of the hostile-peer suite: a victim agent V whose folder sits deep inside a test
 * root (so `../` escapes would still land where the test can see them), a good agent G that
 * dials V, and hostile peers made on demand. `assertUnharmed` is the check every case ends
 * with: V still answers status, nothing named with the attack marker exists anywhere under
 * the test root outside V's folder, and a new file from G still reaches V.
 */
export const MARK = 'HOSTILEMARK'

export interface LogRecord {
  level: string
  msg: string
  code?: string
  problem?: string
  [key: string]: unknown
}

export interface Scene {
  secret: string
  root: string
  victim: Agent
  good: Agent
  hostile(secret?: string): Promise<HostilePeer>
  /** V's structured log records so far */
  records(agent?: Agent): LogRecord[]
  /** waits for a V log record matching `match` */
  waitRecord(match: (r: LogRecord) => boolean, what: string, timeoutMs?: number): Promise<LogRecord>
  assertUnharmed(label: string, options?: { maxRssBytes?: number; syncTimeoutMs?: number }): Promise<void>
  close(): Promise<void>
}

export function parseRecords(stdout: string): LogRecord[] {
  const out: LogRecord[] = []
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line) as LogRecord)
    } catch {
      // a line cut by the log buffer: not a record
    }
  }
  return out
}

/** Every path under `dir` whose name contains MARK, except inside `skip`. */
export async function findMarked(dir: string, skip: string[]): Promise<string[]> {
  const found: string[] = []
  const walk = async (d: string): Promise<void> => {
    let names: string[]
    try {
      names = await fs.readdir(d)
    } catch {
      return
    }
    for (const name of names) {
      const p = path.join(d, name)
      if (skip.includes(p)) continue
      if (name.includes(MARK)) found.push(p)
      const st = await fs.lstat(p).catch(() => null)
      if (st?.isDirectory()) await walk(p)
    }
  }
  await walk(dir)
  return found
}

export async function startScene(harness: Harness, env: Record<string, string> = {}): Promise<Scene> {
  const secret = await newSecret()
  const root = await harness.tmpDir()
  const victimFolder = path.join(root, 'deep', 'er', 'victim')
  const victim = await harness.agent({ name: 'victim', secret, folder: victimFolder, data: path.join(root, 'victim.data'), env })
  const good = await harness.agent({ name: 'good', secret, folder: path.join(root, 'good'), data: path.join(root, 'good.data'), peers: [] })
  await victim.start()
  good.peers = [victim.address]
  await good.start()
  const hostiles: HostilePeer[] = []
  let goodFiles = 0
  const scene: Scene = {
    secret,
    root,
    victim,
    good,
    async hostile(withSecret = secret) {
      const peer = await HostilePeer.create(withSecret)
      hostiles.push(peer)
      return peer
    },
    records(agent = victim) {
      return parseRecords(agent.stdout)
    },
    waitRecord(match, what, timeoutMs = 20_000) {
      return until(() => parseRecords(victim.stdout).find(match), { timeoutMs, message: `victim logs ${what}` })
    },
    async assertUnharmed(label, { maxRssBytes = 400 * 1024 * 1024, syncTimeoutMs = 30_000 } = {}) {
      // still running and answering
      const status = await victim.status()
      expect(status.deviceId).toBeTruthy()
      // nothing written outside its folder (the data dirs hold only ciphertext)
      const outside = await findMarked(root, [victimFolder, path.join(root, 'good')])
      expect(outside, `${label}: files named with the attack marker outside the victim's folder`).toEqual([])
      // a good peer's change still arrives
      const name = `good-${++goodFiles}-${label.replace(/[^\w-]+/g, '_').slice(0, 40)}.txt`
      await fs.writeFile(path.join(good.folder, name), `from the good peer after ${label}\n`)
      await until(
        async () => (await fs.readFile(path.join(victim.folder, name), 'utf8').catch(() => null)) === `from the good peer after ${label}\n`,
        { timeoutMs: syncTimeoutMs, message: `${label}: a good peer's file ${name} reaches the victim` }
      )
      // memory bounded
      const rss = await rssBytes(victim.pid as number)
      expect(rss, `${label}: victim RSS ${Math.round(rss / 2 ** 20)} MiB`).toBeLessThan(maxRssBytes)
    },
    async close() {
      await Promise.all(hostiles.splice(0).map((h) => h.close()))
    }
  }
  return scene
}

/** A scene for the tests of one describe block: started before them, closed after. */
export function useScene(env: Record<string, string> = {}): () => Scene {
  const harness = useHarness()
  let scene: Scene | null = null
  beforeAll(async () => {
    scene = await startScene(harness, env)
  })
  afterAll(async () => {
    await scene?.close()
  })
  return () => scene as Scene
}

export interface SceneWithKeeper {
  scene: Scene
  /**
   * A good read-write agent, started with no peers: it syncs what a hostile peer publishes
   * (the peer connects to it) before the peer withholds it, goes offline, and comes back to
   * serve it. Its folder lies outside the scene's root: its copies of marked files are
   * legitimate, not an escape.
   */
  keeper: Agent
}

/**
 * A scene and a keeper for the tests of one describe block: started before them, closed after.
 * `env`: the victim's.
 */
export function useSceneWithKeeper(env: Record<string, string> = {}): () => SceneWithKeeper {
  const harness = useHarness()
  let stage: SceneWithKeeper | null = null
  beforeAll(async () => {
    const scene = await startScene(harness, env)
    const keeperRoot = await harness.tmpDir()
    const keeper = await harness.agent({ name: 'keeper', secret: scene.secret, folder: path.join(keeperRoot, 'keeper'), data: path.join(keeperRoot, 'keeper.data') })
    await keeper.start()
    stage = { scene, keeper }
  })
  afterAll(async () => {
    await stage?.scene.close()
  })
  return () => stage as SceneWithKeeper
}

/** A file of an agent's folder, or null while it is not there. */
export async function readIn(agent: Agent, rel: string): Promise<Buffer | null> {
  return fs.readFile(path.join(agent.folder, rel)).catch(() => null)
}

/**
 * What an agent spends while it waits on a withholding peer, from this call on: `measure`
 * prints `LABEL {cpuMs, wallMs, cpuShare, peakRssMiB, ...extra}` (the figures the README
 * quotes), then checks the CPU share and the peak RSS against the bounds (no busy loop,
 * memory bounded).
 */
export async function waitLoad(agent: Agent, bounds: { maxCpuShare: number; maxRssBytes: number }): Promise<{ measure(label: string, extra: Record<string, unknown>): Promise<void> }> {
  const pid = agent.pid as number
  const fromMs = await cpuMs(pid)
  const fromWall = Date.now()
  return {
    async measure(label, extra) {
      const used = (await cpuMs(pid)) - fromMs
      const wallMs = Date.now() - fromWall
      const rss = await rssBytes(pid, 'VmHWM')
      console.log(`${label} ${JSON.stringify({ cpuMs: used, wallMs, cpuShare: Math.round((used / wallMs) * 1000) / 1000, peakRssMiB: Math.round(rss / 2 ** 20), ...extra })}`)
      expect(used / wallMs, `${agent.name} CPU ${used} ms over ${wallMs} ms`).toBeLessThan(bounds.maxCpuShare)
      expect(rss).toBeLessThan(bounds.maxRssBytes)
    }
  }
}

/**
 * The keeper comes back, dialling the victim, and serves what it synced before the peer
 * withheld it: resolves with the ms until every one of `files` is on the victim with its bytes.
 */
export async function keeperServes({ scene, keeper }: SceneWithKeeper, files: Record<string, Buffer>, what: string): Promise<number> {
  const backAt = Date.now()
  keeper.peers = [scene.victim.address]
  await keeper.start()
  await until(async () => {
    for (const [rel, bytes] of Object.entries(files)) if (!(await readIn(scene.victim, rel))?.equals(bytes)) return false
    return true
  }, { timeoutMs: 30_000, message: `${what} reach the victim once the keeper is back` })
  return Date.now() - backAt
}

