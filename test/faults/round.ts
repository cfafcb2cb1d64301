import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { VersionArchive } from '../../packages/sync-agent/dist/version-archive.js'
import { Agent } from '../helpers/agent.ts'
import { newSecret, runCli } from '../helpers/cli.ts'
import { readTree, type Tree } from '../helpers/tree.ts'
import { waitConverged } from '../helpers/sync.ts'
import { until } from '../helpers/until.ts'
import { ClusterNet, removeLeftoverNamespaces } from './cluster-net.ts'
import { OpsClock } from './ops-clock.ts'
import { Oracle } from './oracle.ts'
import { unheldOwnBlocks } from './own-drive-blocks.ts'
import { Prng } from './prng.ts'
import { fillDisk, mountTmpfs, recordPid, removeLeftoverDirs, removeRunDir, runDirOf, unmount } from './run-dirs.ts'
import { describeStuckAgent } from './stuck-agent.ts'
import { NodeWorkload, runPaced } from './workload.ts'

/**
 * One round of the fault suite: N agents in their own network namespaces, a seeded workload
 * on every node at once, faults injected meanwhile (isolate a node, split the cluster, kill -9
 * and restart agents, fill the disk of one node), then heal, wait for quiescence and judge
 * the result: folders identical, no version lost, no delete resurrected, no temp files.
 *
 * Faults are scheduled in workload operations, not milliseconds (OpsClock); the only timed
 * pause is the workload's own think time between two operations. Every wait for the system
 * uses a condition with a deadline.
 */
export interface RoundOptions {
  seed: number
  nodes?: number
  /** workload operations on each node (the round's length) */
  opsPerNode?: number
  convergeTimeoutMs?: number
  /** run one node with its clock off by this much (libfaketime); null = pick from the seed */
  skewMs?: number | null
  /** the agents' log level (kept, and written out, only when the round fails) */
  logLevel?: string
  /**
   * After the round has converged and passed the oracle, rebuild one node as a fresh one (see
   * `rebuildPhase`): 'seeded' (the default) in most rounds, picked from the seed; 'always';
   * 'never'. The fault of the rebuild ('none', 'kill', 'isolate', 'sourceKill') comes from the
   * seed unless given.
   */
  rebuild?: 'seeded' | 'always' | 'never'
  rebuildFault?: RebuildFault
  /**
   * The rebuild's fault waits, besides its file count, for the rebuilt node's log line that it
   * read the bulk author's index as a verified snapshot (the CI round, which asserts that
   * path). Without it a kill -9 can land between the snapshot being stored and that line
   * reaching the pipe (the logger writes asynchronously): the restarted node then finds the
   * index stored and reads it where it is, and the round cannot tell which path was taken.
   */
  rebuildFaultAfterSnapshot?: boolean
}

/**
 * What happens while a rebuilt node catches up: nothing; it is killed (kill -9) and started
 * again; it is cut off from the cluster for a while; or the node that wrote the bulk (whose
 * index the fresh node reads as a snapshot) is killed and started again.
 */
export type RebuildFault = 'none' | 'kill' | 'isolate' | 'sourceKill'
const REBUILD_FAULTS: RebuildFault[] = ['none', 'kill', 'isolate', 'sourceKill']

export interface RoundResult {
  seed: number
  nodes: number
  ops: number
  failedOps: number
  racedWrites: number
  faults: Record<string, number>
  convergeMs: number
  /** mass deletes held by a node's guard that the operator accepted (`accept-deletes`) */
  acceptedHolds: number
  conflictCopies: number
  extraCopies: number
  files: number
  skew: string
  /** oracle findings by kind (LOST, RESURRECTED, STALE, UNKNOWN; UNHELD: own-drive-blocks.ts); empty when the round passed */
  problems: Record<string, number>
  /**
   * member drives an agent started without because their open did not settle in time
   * (E_STALLED, see DriveSet.openSaved); such a round keeps its logs and data dirs
   */
  stalledOpens: number
  /** member drives read as one verified index snapshot (a fresh view of a drive of 256 entries or more), all agents together */
  indexSnapshots: number
  /** the rebuild phase: `n2 kill after 140 files (bulk 400 by n0)`, or 'none' */
  rebuild: string
  /** index snapshots the rebuilt node read after its rebuild (its starts after a fault too) */
  rebuildSnapshots: number
  /** how long the rebuilt node took to converge with the cluster again (0 without a rebuild) */
  rebuildConvergeMs: number
  /** the restore after the round: `n2 docs/d0/a.txt~20261201-021645`, 'refused: …' or 'none (…)' */
  restore: string
  /** the node under bandwidth limits (both ways), e.g. `n1 2048 KiB/s`, or 'none' */
  limits: string
  /** files fetched as the blocks that differ from the version a node had (all agents together) */
  deltaFetches: number
  /**
   * paths a periodic rescan found changed with no watcher event on its way (all agents
   * together; daemon.ts UNREPORTED_BY_WATCHER): a change the watcher missed, found up to 60 s late
   */
  watcherMissed: number
}

/**
 * One node per round runs under bandwidth limits both ways (maxSendKiBps, maxRecvKiBps), so
 * kills, cut links and rebuilds also hit rate-limited sockets; from the seed alone (not the
 * round's generator), so a seed's other choices stay what they were.
 */
const LIMIT_KIBPS = [0, 2048, 8192] as const
function limitsOf(seed: number, nodes: number): { node: number; kibps: number } | null {
  const kibps = LIMIT_KIBPS[seed % LIMIT_KIBPS.length] as number
  return kibps === 0 ? null : { node: Math.floor(seed / LIMIT_KIBPS.length) % nodes, kibps }
}

const STALLED_OPEN = 'a member drive did not open in time'
const INDEX_SNAPSHOT = 'read the index as a verified snapshot'
/** daemon.ts's UNREPORTED_BY_WATCHER (a log line with the `count` of paths) */
const UNREPORTED_BY_WATCHER = 'the periodic rescan found changes the watcher did not report'
/** The paths the periodic rescans of one agent's log found changed with no watcher event on its way. */
function watcherMissedIn(logs: string): number {
  return logs
    .split('\n')
    .filter((line) => line.includes(UNREPORTED_BY_WATCHER))
    .reduce((n, line) => {
      try {
        return n + ((JSON.parse(line) as { count?: number }).count ?? 1)
      } catch {
        return n + 1
      }
    }, 0)
}
/** content-fetcher.ts's DELTA_FETCHED */
const DELTA_FETCHED = 'fetched a changed file as the blocks that differ from the version here'

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1'
const DISK_BYTES = 96 * 1024 * 1024
const PORT = 7657
/** a fault lane waits at most this long for the workload to make the progress it waits for */
const PACE_DEADLINE_MS = 60_000

export class RoundFailure extends Error {
  /** the round's figures when it got as far as converging (the oracle then found problems) */
  result: RoundResult | null = null
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false
  )
}

interface RebuildPlan {
  /** the node rebuilt */
  node: number
  /** the node that writes the bulk */
  source: number
  bulkFiles: number
  fault: RebuildFault
  /** the fault hits once the rebuilt node has this many files (or has caught up) */
  afterFiles: number
  /** …and has logged that it read an index as a verified snapshot */
  afterSnapshot: boolean
  /** operations each other node does while it catches up */
  opsDuring: number
}

/**
 * The round's rebuild phase, from its own random stream (the main phase's draws are as
 * before). Neither the full-disk node (its folder is a small tmpfs) nor the skewed one (its
 * store must be made with a good clock, see below) is rebuilt.
 */
function planRebuild(seed: number, nodes: number, notRebuilt: number[], options: RoundOptions): RebuildPlan | null {
  const r = new Prng(seed * 19 + 7)
  const wanted = options.rebuild === 'always' || (options.rebuild !== 'never' && r.chance(0.7))
  const all = Array.from({ length: nodes }, (_, i) => i)
  const eligible = all.filter((i) => !notRebuilt.includes(i))
  if (!wanted || eligible.length === 0) return null
  const node = r.pick(eligible)
  const bulkFiles = r.int(300, 600)
  return {
    node,
    source: r.pick(all.filter((i) => i !== node)),
    bulkFiles,
    fault: options.rebuildFault ?? r.pick(REBUILD_FAULTS),
    afterFiles: r.int(1, Math.floor(bulkFiles / 2)),
    afterSnapshot: options.rebuildFaultAfterSnapshot ?? false,
    opsDuring: r.int(5, 15)
  }
}

export async function runRound(options: RoundOptions): Promise<RoundResult> {
  const seed = options.seed
  const rng = new Prng(seed)
  const nodes = options.nodes ?? rng.int(3, 5)
  const opsPerNode = options.opsPerNode ?? rng.int(100, 175)
  const convergeTimeoutMs = options.convergeTimeoutMs ?? 180_000
  const skewNode = rng.int(0, nodes - 1)
  const skewMs = options.skewMs !== undefined && options.skewMs !== null ? options.skewMs : rng.pick([0, 2, -3, 5]) * 3_600_000
  const fullNode = (skewNode + 1 + rng.int(0, nodes - 2)) % nodes
  const rebuildPlan = planRebuild(seed, nodes, skewMs !== 0 ? [fullNode, skewNode] : [fullNode], options)
  const tag = `s${seed}`
  const runDir = runDirOf(tag)
  const oracle = new Oracle()
  const faults: Record<string, number> = {}
  const count = (name: string) => (faults[name] = (faults[name] ?? 0) + 1)

  await removeLeftoverNamespaces()
  await removeLeftoverDirs()
  await removeRunDir(runDir)
  await fs.mkdir(runDir, { recursive: true })
  const net = new ClusterNet(nodes, tag)
  const agents: Agent[] = []
  const workloads: NodeWorkload[] = []
  let failed = true
  const skew = skewMs === 0 ? 'none' : `n${skewNode} ${skewMs > 0 ? '+' : ''}${skewMs / 3_600_000}h`
  const limited = limitsOf(seed, nodes)
  const limits = limited ? `n${limited.node} ${limited.kibps} KiB/s` : 'none'
  oracle.note(`round seed=${seed} nodes=${nodes} opsPerNode=${opsPerNode} skew=${skew} fullDisk=n${fullNode} limits=${limits}`)
  try {
    await net.up()
    const secret = await newSecret()
    let skewEnv: Record<string, string> | null = null
    for (let i = 0; i < nodes; i++) {
      const folder = path.join(runDir, `n${i}`)
      if (i === fullNode) await mountTmpfs(folder, DISK_BYTES)
      else await fs.mkdir(folder, { recursive: true })
      const env: Record<string, string> = {
        SYNC_AGENT_LISTEN: `${net.address(i)}:${PORT}`,
        SYNC_AGENT_LOG_LEVEL: process.env.SYNC_AGENT_FAULTS_LOG_LEVEL ?? options.logLevel ?? 'info',
        // inotify misses events in a directory made and filled at once (a theme update): the
        // periodic rescan catches them; 60 s instead of the default, within the checker's deadline
        SYNC_AGENT_RESCAN_INTERVAL_S: '60'
      }
      // even nodes keep versions (beside their data dir; the full-disk node's folder is a tmpfs,
      // so its versions are copies across file systems), odd ones do not: both paths run
      if (i % 2 === 0) env.SYNC_AGENT_VERSIONS_DIR = path.join(runDir, `n${i}.versions`)
      if (limited?.node === i) env.SYNC_AGENT_MAX_SEND_KIBPS = env.SYNC_AGENT_MAX_RECV_KIBPS = String(limited.kibps)
      if (i === skewNode && skewMs !== 0) {
        skewEnv = env
      }
      agents.push(
        new Agent({
          name: `n${i}`,
          folder,
          data: path.join(runDir, `n${i}.data`),
          secret,
          peers: Array.from({ length: nodes }, (_, j) => j)
            .filter((j) => j !== i)
            .map((j) => `${net.address(j)}:${PORT}`),
          settleMs: 50,
          env,
          wrapper: ['ip', 'netns', 'exec', net.nodeNs[i] as string]
        })
      )
      workloads.push(
        new NodeWorkload(i, folder, new Prng(seed * 31 + i + 1), oracle, {
          maxLargeFiles: 3,
          largeMaxBytes: 2 * 1024 * 1024
        })
      )
    }
    const start = async (a: Agent) => {
      await a.start({ timeoutMs: 30_000 })
      if (a.pid) await recordPid(runDir, a.pid)
    }
    if (skewEnv) {
      // hypercore-storage's device file records Date.now() beside the file's real mtime and
      // refuses a store where they differ: the node is installed with a good clock, which
      // then goes wrong (libfaketime fakes the clock, not the kernel's file times)
      await start(agents[skewNode]!)
      await agents[skewNode]!.stop()
      Object.assign(skewEnv, {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME: `${skewMs > 0 ? '+' : '-'}${Math.abs(skewMs) / 1000}s`,
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
        NO_FAKE_STAT: '1'
      })
    }
    await Promise.all(agents.map(start))
    await waitConverged(agents, { timeoutMs: 60_000, message: 'the empty cluster is ready' })
    oracle.note('cluster ready; workload and faults start')

    // --- workload and faults, concurrently. Faults start after, and last for, a seeded number
    // of workload operations (OpsClock), so each overlaps the same work however loaded the
    // machine is; convergence is awaited with a deadline by the checker after the faults heal.
    const clock = new OpsClock()
    // operations of the whole cluster, per node of it
    const ops = (perNode: number) => perNode * nodes
    const allWritten = runPaced(workloads, opsPerNode, clock, seed * 97)
    // the operator: a mass delete held by a node's guard (a theme update while the folder is
    // still small can delete more than half of it) is accepted as a person would, noted in the
    // log and counted in the figures. It looks every few operations while the workload runs,
    // then before every convergence check; held deletes are otherwise left alone.
    let acceptedHolds = 0
    const acceptHeld = async (): Promise<void> => {
      for (const a of agents) {
        const held = (await a.tryStatus())?.heldDeletes
        if (!held || held.count === 0) continue
        oracle.note(`OPERATOR accept-deletes on ${a.name}: ${held.count} held (the folder had ${held.folderPaths} paths)`)
        const done = await runCli(['accept-deletes', '--control', a.control]).catch((err: Error) => ({ code: -1, stderr: err.message }))
        if (done.code === 0) acceptedHolds++
        else oracle.note(`OPERATOR accept-deletes on ${a.name} failed: ${done.stderr.trim()}`)
      }
    }
    const operator = (async () => {
      while ((await clock.after(ops(5), PACE_DEADLINE_MS)) === 'ops') await acceptHeld()
    })()
    const down = new Set<number>()
    let fillFile: string | null = null
    const netLane = (async () => {
      const r = new Prng(seed * 13 + 5)
      while ((await clock.after(ops(r.int(3, 15)), PACE_DEADLINE_MS)) === 'ops') {
        if (r.chance(0.5)) {
          const i = r.int(0, nodes - 1)
          oracle.note(`FAULT isolate n${i} (after op ${clock.ops})`)
          count('isolate')
          await net.isolate(i)
        } else {
          const order = Array.from({ length: nodes }, (_, i) => i).sort(() => r.next() - 0.5)
          const group = order.slice(0, r.int(1, Math.floor(nodes / 2)))
          oracle.note(`FAULT split [${group.map((i) => 'n' + i).join(',')}] | rest (after op ${clock.ops})`)
          count('split')
          await net.split(group)
        }
        await clock.after(ops(r.int(8, 30)), PACE_DEADLINE_MS)
        await net.heal()
        oracle.note(`heal network (after op ${clock.ops})`)
      }
    })()
    const procLane = (async () => {
      const r = new Prng(seed * 17 + 3)
      let fills = 0
      while ((await clock.after(ops(r.int(4, 20)), PACE_DEADLINE_MS)) === 'ops') {
        if (fills < 2 && r.chance(0.3)) {
          fills++
          oracle.note(`FAULT disk full on n${fullNode} (after op ${clock.ops})`)
          count('diskFull')
          fillFile = await fillDisk(agents[fullNode]!.folder)
          await clock.after(ops(r.int(10, 25)), PACE_DEADLINE_MS)
          await fs.rm(fillFile, { force: true })
          fillFile = null
          oracle.note(`disk freed on n${fullNode} (after op ${clock.ops})`)
        } else {
          const i = r.int(0, nodes - 1)
          oracle.note(`FAULT kill -9 n${i} (after op ${clock.ops})`)
          count('kill9')
          down.add(i)
          await agents[i]!.kill()
          await clock.after(ops(r.int(2, 20)), PACE_DEADLINE_MS)
          await start(agents[i]!)
          down.delete(i)
          oracle.note(`restarted n${i} (after op ${clock.ops})`)
        }
      }
    })()
    // a lane that throws (the workload stopped moving) fails the round, after the others end
    const lanes = await Promise.allSettled([allWritten, netLane, procLane, operator])
    for (const lane of lanes) if (lane.status === 'rejected') throw lane.reason
    /** The folders once converged (hashed), judged by the oracle; every agent must be inSync. */
    const judge = async (message: string) => {
      const { trees } = await waitConverged(agents, { timeoutMs: 30_000, intervalMs: 1_000, hash: true, beforeCheck: acceptHeld, message })
      const tree = trees[0] as Tree
      const findings = oracle.check(tree)
      const problems = [...findings.problems]
      for (const a of agents) {
        const st = await a.status()
        if (!st.inSync) problems.push(`${a.name} not inSync`)
      }
      // what a node kept of its peers' replacements and deletes: versions only, by name
      for (const a of agents) {
        const dir = path.join(runDir, `${a.name}.versions`)
        const kept = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
        const files = kept.filter((e) => e.isFile())
        const strays = files.filter((e) => VersionArchive.madeAt(e.name) === null)
        for (const e of strays.slice(0, 5)) problems.push(`versions: ${a.name} holds ${path.relative(dir, path.join(e.parentPath, e.name))}, not a version's name`)
        if (files.length > 0) oracle.note(`${a.name} kept ${files.length} versions`)
      }
      let files = 0
      let conflictCopies = 0
      for (const [p, e] of tree) {
        if (e.type !== 'file') continue
        files++
        if (p.includes('.sync-conflict-')) conflictCopies++
      }
      return { problems, extraCopies: findings.extraCopies, files, conflictCopies }
    }
    /**
     * After the round, a user's `versions restore` on a node that keeps versions (an even one):
     * a seeded version it kept is put back, and once converged every node holds its bytes at
     * its path. A refusal the command documents (a directory or link in the way) is an answer,
     * not a failure; anything else is.
     */
    const restorePhase = async (): Promise<{ restore: string; problems: string[] }> => {
      const r = new Prng(seed * 17 + 3)
      const a = r.pick(agents.filter((_, i) => i % 2 === 0)) as Agent
      const listed = await runCli(['versions', '--json', '--control', a.control])
      if (listed.code !== 0) return { restore: 'failed', problems: [`restore: versions on ${a.name} exited ${listed.code}: ${listed.stderr.trim()}`] }
      const { versions } = JSON.parse(listed.stdout) as { versions: Array<{ path: string; name: string; stamp: string }> }
      if (versions.length === 0) return { restore: 'none (no versions)', problems: [] }
      const v = r.pick(versions)
      const bytes = await fs.readFile(path.join(runDir, `${a.name}.versions`, v.name))
      const want = createHash('sha256').update(bytes).digest('hex')
      oracle.note(`restore on ${a.name}: ${v.path} from ${v.name}`)
      const done = await runCli(['versions', 'restore', v.path, '--version', v.stamp, '--control', a.control])
      if (done.code !== 0) {
        if (/is a directory here|is not a regular file here/.test(done.stderr)) return { restore: `refused: ${done.stderr.trim()}`, problems: [] }
        return { restore: 'failed', problems: [`restore: ${a.name} ${v.path} exited ${done.code}: ${done.stderr.trim()}`] }
      }
      const message = `the restore of ${v.path} on ${a.name} has reached every node`
      const { trees } = await waitConverged(agents, { timeoutMs: convergeTimeoutMs, intervalMs: 1_000, hash: true, beforeCheck: acceptHeld, message })
      const entry = (trees[0] as Tree).get(v.path)
      const got = entry?.type === 'file' ? entry.sha256 : entry?.type ?? 'nothing'
      return { restore: `${a.name} ${v.name}`, problems: got === want ? [] : [`restore: ${v.path} holds ${String(got).slice(0, 10)} everywhere after ${a.name} restored ${v.name} (${want.slice(0, 10)})`] }
    }
    /**
     * A node's container is rebuilt: a bulk of files is written on another node (so that
     * node's drive is large enough to be read as one verified index snapshot) and has reached
     * every node; then the rebuilt node is killed, its folder and data dir wiped, and it starts
     * again as a fresh node (a new device key, an empty folder) while the other nodes keep
     * working. At a seeded point of its catching up, the plan's fault hits (see RebuildFault).
     * Nothing is lost by the wipe: everything it held had reached the others first.
     */
    const rebuildPhase = async (plan: RebuildPlan): Promise<Pick<RoundResult, 'rebuild' | 'rebuildSnapshots' | 'rebuildConvergeMs'>> => {
      const target = agents[plan.node] as Agent
      const source = agents[plan.source] as Agent
      const label = `n${plan.node} ${plan.fault}${plan.fault === 'none' ? '' : ` after ${plan.afterFiles} files`} (bulk ${plan.bulkFiles} by n${plan.source})`
      oracle.note(`REBUILD phase: ${label}`)
      await (workloads[plan.source] as NodeWorkload).bulk(plan.bulkFiles)
      await waitConverged(agents, { timeoutMs: convergeTimeoutMs, intervalMs: 1_000, hash: false, beforeCheck: acceptHeld, message: 'the bulk has reached every node' })
      count('rebuild')
      oracle.note(`FAULT rebuild n${plan.node}: kill -9, folder and data dir wiped, started as a fresh node`)
      await target.kill()
      for (const name of await fs.readdir(target.folder)) await fs.rm(path.join(target.folder, name), { recursive: true, force: true })
      await fs.rm(target.data, { recursive: true, force: true })
      const logFrom = target.logs.length
      const stdoutFrom = target.stdout.length
      const startedAt = Date.now()
      await start(target)
      // the other nodes keep working while it catches up
      const during = new OpsClock()
      const others = workloads.filter((w) => w.node !== plan.node)
      const working = runPaced(others, plan.opsDuring, during, seed * 53)
      if (plan.fault !== 'none') {
        await until(
          async () => {
            if (plan.afterSnapshot && target.stdout.indexOf(INDEX_SNAPSHOT, stdoutFrom) === -1) return false
            const st = await target.tryStatus()
            return st !== undefined && (st.files >= plan.afterFiles || (st.ready && st.inSync))
          },
          {
            timeoutMs: 120_000,
            intervalMs: 50,
            message: `the rebuilt n${plan.node} has ${plan.afterFiles} files${plan.afterSnapshot ? ' and has read an index as a verified snapshot' : ''}`
          }
        )
        const hold = () => during.after(others.length * 2, PACE_DEADLINE_MS)
        if (plan.fault === 'kill') {
          oracle.note(`FAULT kill -9 the rebuilt n${plan.node} while it catches up`)
          count('rebuildKill')
          await target.kill()
          await hold()
          await start(target)
          oracle.note(`restarted n${plan.node}`)
        } else if (plan.fault === 'isolate') {
          oracle.note(`FAULT isolate the rebuilt n${plan.node} while it catches up`)
          count('rebuildIsolate')
          await net.isolate(plan.node)
          await hold()
          await net.heal()
          oracle.note('heal network')
        } else {
          oracle.note(`FAULT kill -9 n${plan.source}, the bulk's author, while n${plan.node} catches up`)
          count('rebuildSourceKill')
          await source.kill()
          await hold()
          await start(source)
          oracle.note(`restarted n${plan.source}`)
        }
      }
      await working
      await waitConverged(agents, { timeoutMs: convergeTimeoutMs, intervalMs: 1_000, hash: false, beforeCheck: acceptHeld, message: `the rebuilt n${plan.node} has caught up` })
      return {
        rebuild: label,
        rebuildSnapshots: target.logs.slice(logFrom).split(INDEX_SNAPSHOT).length - 1,
        rebuildConvergeMs: Date.now() - startedAt
      }
    }
    // --- heal everything
    await net.heal()
    if (fillFile) await fs.rm(fillFile, { force: true })
    for (const i of down) await start(agents[i]!)
    const opsDone = workloads.reduce((n, w) => n + Object.values(w.counts).reduce((a, b) => a + b, 0), 0)
    oracle.note(`workload done (${opsDone} ops); all healed; waiting for convergence`)
    const healedAt = Date.now()
    await waitConverged(agents, { timeoutMs: convergeTimeoutMs, intervalMs: 1_000, hash: false, beforeCheck: acceptHeld, message: 'the cluster has converged after healing' })
    const convergeMs = Date.now() - healedAt
    let judged = await judge('the cluster has converged (hashed)')
    let rebuilt: Pick<RoundResult, 'rebuild' | 'rebuildSnapshots' | 'rebuildConvergeMs'> = { rebuild: 'none', rebuildSnapshots: 0, rebuildConvergeMs: 0 }
    if (judged.problems.length === 0 && rebuildPlan) {
      rebuilt = await rebuildPhase(rebuildPlan)
      judged = await judge('the cluster has converged again after the rebuild (hashed)')
    }
    let restore = 'none (the round failed)'
    if (judged.problems.length === 0) {
      const restored = await restorePhase()
      restore = restored.restore
      judged.problems.push(...restored.problems)
    }
    if (judged.problems.length === 0) {
      // each node's data dir, its agent stopped: every block its own drive names still held
      for (const a of agents) await a.stop({ timeoutMs: 10_000 }).catch(() => a.kill())
      for (const a of agents) judged.problems.push(...(await unheldOwnBlocks(a.name, a.data, secret)))
    }
    const problems = judged.problems
    const kinds: Record<string, number> = {}
    for (const line of problems) {
      const kind = line.split(':')[0] as string
      kinds[kind] = (kinds[kind] ?? 0) + 1
    }
    const result: RoundResult = {
      seed,
      nodes,
      ops: workloads.reduce((n, w) => n + Object.values(w.counts).reduce((a, b) => a + b, 0), 0),
      failedOps: workloads.reduce((n, w) => n + w.failedOps, 0),
      racedWrites: oracle.racedWrites.length,
      faults,
      convergeMs,
      acceptedHolds,
      conflictCopies: judged.conflictCopies,
      extraCopies: judged.extraCopies,
      files: judged.files,
      skew,
      problems: kinds,
      stalledOpens: agents.reduce((n, a) => n + a.logs.split(STALLED_OPEN).length - 1, 0),
      indexSnapshots: agents.reduce((n, a) => n + a.logs.split(INDEX_SNAPSHOT).length - 1, 0),
      ...rebuilt,
      restore,
      limits,
      deltaFetches: agents.reduce((n, a) => n + a.logs.split(DELTA_FETCHED).length - 1, 0),
      watcherMissed: agents.reduce((n, a) => n + watcherMissedIn(a.logs), 0)
    }
    if (problems.length > 0) {
      const failure = new RoundFailure(problems.join('\n'))
      failure.result = result
      throw failure
    }
    failed = false
    if (process.env.SYNC_AGENT_FAULTS_DUMP) {
      await fs.mkdir(process.env.SYNC_AGENT_FAULTS_DUMP, { recursive: true })
      for (const a of agents) await fs.writeFile(path.join(process.env.SYNC_AGENT_FAULTS_DUMP, `${seed}-${a.name}.log`), a.logs)
      await fs.writeFile(path.join(process.env.SYNC_AGENT_FAULTS_DUMP, `${seed}-ops.log`), oracle.log.join('\n') + '\n')
    }
    // not a failure (the agent started without the drive, which joined later), but not
    // explained yet: keep what it takes to look at it
    if (result.stalledOpens > 0) {
      const keepDir = path.join(os.tmpdir(), 'sync-agent-faults-logs', `stalled-open-seed-${seed}-${Date.now()}`)
      await fs.mkdir(keepDir, { recursive: true })
      for (const a of agents) await fs.writeFile(path.join(keepDir, `${a.name}.log`), a.logs)
      // (not the control sockets: fs.cp stops at the first one)
      await fs
        .cp(runDir, path.join(keepDir, 'run'), { recursive: true, filter: async (src) => !(await fs.lstat(src)).isSocket() })
        .catch((err: Error) => fs.writeFile(path.join(keepDir, 'copy-failed.txt'), err.message))
    }
    return result
  } catch (err) {
    const logDir = path.join(os.tmpdir(), 'sync-agent-faults-logs', `seed-${seed}-${Date.now()}`)
    await fs.mkdir(logDir, { recursive: true })
    await fs.writeFile(path.join(logDir, 'ops.log'), oracle.log.join('\n') + '\n')
    for (const [i, a] of agents.entries()) {
      const status = await a.tryStatus()
      await fs.writeFile(path.join(logDir, `${a.name}.log`), a.logs + `\n--- final status\n${JSON.stringify(status, null, 1)}\n`)
      // running but not answering: what it is doing (its kernel state and JavaScript stack)
      if (status === undefined && a.pid && a.isRunning) {
        await fs.writeFile(path.join(logDir, `${a.name}.stuck`), await describeStuckAgent(a.pid, net.nodeNs[i] ?? null))
      }
    }
    for (const a of agents) {
      if (await exists(a.folder)) {
        const tree = await readTree(a.folder).catch(() => new Map())
        await fs.writeFile(path.join(logDir, `${a.name}.tree`), [...tree].map(([p, e]) => `${p} ${JSON.stringify(e)}`).join('\n') + '\n')
      }
    }
    // an agent that ended itself (event-loop watchdog): where its loop was, up front
    const stalls = agents.flatMap((a) => a.stdout.split('\n').filter((l) => l.includes('"E_LOOP_STALLED"')).map((l) => `${a.name}: ${l}`))
    const message =
      `fault round FAILED: seed=${seed} (replay: pnpm test:faults --rounds 1 --seed ${seed})\n` +
      `${(err as Error).message}\n` +
      (stalls.length > 0 ? `--- stalled event loops (the agent ended itself)\n${stalls.join('\n')}\n` : '') +
      `--- operation log (${oracle.log.length} lines; also in ${logDir}/ops.log, agent logs beside it)\n` +
      oracle.log.join('\n')
    await fs.writeFile(path.join(logDir, 'failure.txt'), message + '\n')
    const failure = new RoundFailure(message)
    failure.result = err instanceof RoundFailure ? err.result : null
    throw failure
  } finally {
    for (const a of agents) {
      await a.stop({ timeoutMs: 10_000 }).catch(() => a.kill())
    }
    await net.down()
    for (const a of agents) if (path.basename(a.folder) === `n${fullNode}`) await unmount(a.folder)
    if (!failed || process.env.SYNC_AGENT_FAULTS_KEEP !== '1') await removeRunDir(runDir)
  }
}
