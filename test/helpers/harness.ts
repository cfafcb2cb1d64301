import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeEach } from 'vitest'
import { Agent, type AgentOptions } from './agent.ts'
import { newSecret } from './cli.ts'
import { freePorts } from './ports.ts'

/** Full logs of failed tests are kept here (the temp dirs themselves are removed). */
export const failureLogDir = path.join(os.tmpdir(), 'sync-agent-it-logs')

const DUMP_TAIL_LINES = 120

interface Scope {
  agents: Agent[]
  dirs: string[]
}

export interface NewAgentOptions extends Partial<Omit<AgentOptions, 'name'>> {
  name: string
  /** Give it a listen port (default true). */
  listen?: boolean
}

export interface Harness {
  /** A new empty temp dir under os.tmpdir(), removed after the test (or after the file when made in beforeAll). */
  tmpDir(): Promise<string>
  /** An agent (not started) with folder `<tmp>/<name>`, data `<tmp>/<name>.data` and a free listen port. */
  agent(options: NewAgentOptions): Promise<Agent>
  /**
   * Two started agents with one fresh secret: `a` listens, `b` listens and dials `a`.
   * `seedA` is called with A's folder before A starts.
   */
  startPair(options?: { secret?: string; settleMs?: number; seedA?: (folder: string) => Promise<void> }): Promise<[Agent, Agent]>
  /** Every agent made so far in this file (for log dumps and ad-hoc checks). */
  allAgents(): Agent[]
}

/**
 * Registers vitest hooks for the current file/describe: agents and temp dirs made inside a
 * test are killed/removed after it; those made in beforeAll after the file. When a test
 * fails, every agent's log tail is printed and the full logs are written to failureLogDir.
 */
export function useHarness(): Harness {
  const suiteScope: Scope = { agents: [], dirs: [] }
  let testScope: Scope | undefined
  let suiteRoot: string | undefined
  let dumpedForFailure = false

  beforeEach(() => {
    testScope = { agents: [], dirs: [] }
  })

  afterEach(async (ctx) => {
    const scope = testScope
    testScope = undefined
    try {
      const agents = [...suiteScope.agents, ...(scope?.agents ?? [])]
      if (ctx.task.result?.state === 'fail') {
        dumpedForFailure = true
        await dumpLogs(ctx.task.name, agents)
      } else if (process.env.SYNC_AGENT_IT_KEEP_LOGS) {
        await dumpLogs(ctx.task.name, agents, { quiet: true })
      }
    } finally {
      if (scope !== undefined) await disposeScope(scope)
    }
  })

  // vitest wants an object pattern as the first parameter of hooks
  // eslint-disable-next-line no-empty-pattern
  afterAll(async ({}, suite) => {
    try {
      // a failing beforeAll skips every test, so no afterEach saw it: dump the logs here
      if (suite.result?.state === 'fail' && !dumpedForFailure) await dumpLogs('beforeAll / afterAll hooks', suiteScope.agents)
    } finally {
      await disposeScope(suiteScope)
    }
  })

  const currentScope = (): Scope => testScope ?? suiteScope

  const harness: Harness = {
    async tmpDir() {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sa-it-'))
      currentScope().dirs.push(dir)
      return dir
    },
    async agent({ name, listen = true, ...rest }) {
      const scope = currentScope()
      let root: string
      if (scope === suiteScope) {
        suiteRoot ??= await harness.tmpDir()
        root = suiteRoot
      } else {
        root = scope.dirs[0] ?? (await harness.tmpDir())
      }
      const [port] = listen && rest.listenPort === undefined ? await freePorts(1) : [rest.listenPort]
      const agent = new Agent({
        ...rest,
        name,
        folder: rest.folder ?? path.join(root, name),
        data: rest.data ?? path.join(root, `${name}.data`),
        listenPort: port
      })
      await fs.mkdir(agent.folder, { recursive: true })
      scope.agents.push(agent)
      return agent
    },
    async startPair({ secret, settleMs, seedA } = {}) {
      const folderSecret = secret ?? (await newSecret())
      const a = await harness.agent({ name: 'a', secret: folderSecret, settleMs })
      const b = await harness.agent({ name: 'b', secret: folderSecret, settleMs, peers: [a.address] })
      if (seedA !== undefined) await seedA(a.folder)
      await a.start()
      await b.start()
      return [a, b]
    },
    allAgents() {
      return [...suiteScope.agents, ...(testScope?.agents ?? [])]
    }
  }
  return harness
}

async function disposeScope(scope: Scope): Promise<void> {
  const agents = scope.agents.splice(0)
  await Promise.all(agents.map((agent) => agent.dispose()))
  const dirs = scope.dirs.splice(0)
  await Promise.all(dirs.map((dir) => fs.rm(dir, { recursive: true, force: true, maxRetries: 3 })))
}

async function dumpLogs(testName: string, agents: Agent[], { quiet = false }: { quiet?: boolean } = {}): Promise<void> {
  if (agents.length === 0) return
  const dir = path.join(failureLogDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${testName.replace(/[^\w-]+/g, '_').slice(0, 80)}`)
  await fs.mkdir(dir, { recursive: true })
  const parts: string[] = [`===== test failed: ${testName}; full agent logs in ${dir} =====`]
  for (const agent of agents) {
    await fs.writeFile(path.join(dir, `${agent.name}.log`), agent.logs)
    parts.push(`----- agent ${agent.name} (folder ${agent.folder}), last ${DUMP_TAIL_LINES} log lines -----`, agent.tail(DUMP_TAIL_LINES))
  }
  if (!quiet) console.error(parts.join('\n'))
}
