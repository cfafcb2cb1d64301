import type { Agent, AgentStatus } from './agent.ts'
import { assertTreesEqual, readTree, tempFiles, type DiffOptions, type Tree } from './tree.ts'
import { until } from './until.ts'

export interface ConvergeOptions {
  timeoutMs?: number
  intervalMs?: number
  /** Hash file contents on every poll (default true); off compares size/mode/mtime only. */
  hash?: boolean
  /** Paths left out of the tree comparison (e.g. an ignored file that exists on one side only). */
  ignore?: DiffOptions['ignore']
  message?: string
  /** Run before every check (the fault suite's operator accepts held deletes here). */
  beforeCheck?: () => Promise<void>
}

export interface Converged {
  trees: Tree[]
  statuses: AgentStatus[]
}

function describeStatus(agent: Agent, status: AgentStatus): string {
  const peers = status.peers.map((p) => `${p.address}:${p.connected ? 'up' : 'down'}`).join(',')
  return `${agent.name}: ready=${status.ready} inSync=${status.inSync} pending=${status.pending} files=${status.files} peers=[${peers}]`
}

/**
 * Waits until every agent reports `ready` and `inSync` with nothing pending, all folders are
 * equal (compared to the first agent's), and no folder holds a `.syncagent-tmp-*` file.
 */
export async function waitConverged(agents: Agent[], options: ConvergeOptions = {}): Promise<Converged> {
  const { timeoutMs = 30_000, intervalMs = 300, hash = true, ignore } = options
  const names = agents.map((agent) => agent.name).join(', ')
  return until(
    async () => {
      await options.beforeCheck?.()
      const statuses = await Promise.all(agents.map((agent) => agent.status()))
      const problems: string[] = []
      const settled = statuses.every((s) => s.ready && s.inSync && s.pending === 0)
      if (!settled) {
        problems.push(`not settled: ${agents.map((a, i) => describeStatus(a, statuses[i]!)).join('; ')}`)
      }
      // Hashing every file of every folder on every poll was a large share of the suite's CPU
      // on 2 cores; while an agent is not settled this poll fails anyway, so its trees are
      // compared by type, size, mode and mtime only (for the message). A poll that passes
      // has hashed them (when `hash`).
      const trees = await Promise.all(agents.map((agent) => readTree(agent.folder, { hash: hash && settled })))
      for (const [i, tree] of trees.entries()) {
        const temps = tempFiles(tree)
        if (temps.length > 0) problems.push(`${agents[i]!.name} has temp files: ${temps.slice(0, 10).join(', ')}`)
      }
      for (let i = 1; i < agents.length; i++) {
        try {
          assertTreesEqual(trees[0]!, trees[i]!, { labels: [agents[0]!.name, agents[i]!.name], ignore })
        } catch (error) {
          problems.push((error as Error).message)
        }
      }
      if (problems.length > 0) throw new Error(problems.join('\n'))
      return { trees, statuses }
    },
    { timeoutMs, intervalMs, message: options.message ?? `${names} have converged (ready, inSync, equal trees, no temp files)` }
  )
}

/** Waits until `check` passes on the given folder's tree (e.g. a file arrived). */
export async function waitTree(
  agent: Agent,
  check: (tree: Tree) => boolean | void,
  { timeoutMs = 30_000, message, hash = true }: { timeoutMs?: number; message: string; hash?: boolean }
): Promise<Tree> {
  return until(
    async () => {
      const tree = await readTree(agent.folder, { hash })
      return check(tree) === false ? undefined : tree
    },
    { timeoutMs, message: `${agent.name}: ${message}` }
  )
}

/** Waits until a running agent has taken in its own local changes (nothing pending, in sync): a seeded folder published. */
export async function waitLocalSettled(agent: Agent, timeoutMs = 15_000): Promise<void> {
  await until(
    async () => {
      const status = await agent.status()
      return status.pending === 0 && status.inSync
    },
    { timeoutMs, message: `${agent.name} has nothing pending` }
  )
}
