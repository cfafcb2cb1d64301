#!/usr/bin/env node
// pnpm test:faults [--rounds N] [--seed S] [--results FILE]: N random fault rounds (seeds S…S+N-1).
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '10' }, seed: { type: 'string', default: String(Date.now() % 100000) }, results: { type: 'string' } }
})
for (const [name, v] of [['rounds', values.rounds], ['seed', values.seed]]) {
  if (!/^\d+$/.test(v)) {
    console.error(`--${name}: expected a whole number, got ${JSON.stringify(v)}`)
    process.exit(2)
  }
}
console.log(`fault rounds: ${values.rounds}, first seed ${values.seed}`)
const env = { ...process.env, SYNC_AGENT_FAULTS: '1', SYNC_AGENT_FAULTS_ROUNDS: values.rounds, SYNC_AGENT_FAULTS_SEED: values.seed }
if (values.results) env.SYNC_AGENT_FAULTS_RESULTS = values.results
const run = spawnSync('pnpm', ['exec', 'vitest', 'run', '--project', 'faults', 'test/faults/faults.test.ts'], { stdio: 'inherit', env })
process.exit(run.status ?? 1)
