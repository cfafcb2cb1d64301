import fs from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { RoundFailure, runRound, type RoundResult } from './round.ts'

/**
 * The fault suite. Without settings it runs the CI round: one short fixed-seed round with 3
 * nodes. `pnpm test:faults --rounds N --seed S` runs N random rounds (seeds S, S+1, …); each
 * round's figures are appended as a JSON line to SYNC_AGENT_FAULTS_RESULTS if set.
 */
const rounds = Number(process.env.SYNC_AGENT_FAULTS_ROUNDS ?? '0')
const firstSeed = Number(process.env.SYNC_AGENT_FAULTS_SEED ?? '1')
const resultsFile = process.env.SYNC_AGENT_FAULTS_RESULTS

async function record(result: RoundResult): Promise<void> {
  console.log(`round ${JSON.stringify(result)}`)
  if (resultsFile) await fs.appendFile(resultsFile, JSON.stringify(result) + '\n')
}

/** Runs a round and records its figures, also those of a round the oracle failed (then rethrows). */
async function recorded(run: Promise<RoundResult>): Promise<RoundResult> {
  try {
    const result = await run
    await record(result)
    return result
  } catch (err) {
    if (err instanceof RoundFailure && err.result) await record(err.result)
    throw err
  }
}

describe('convergence under faults', () => {
  if (rounds === 0) {
    it('CI round: 3 nodes, seed 1, partitions + kill -9 + full disk + skewed clock, then a node rebuilt and killed while it reads a snapshot', async () => {
      const result = await recorded(
        runRound({ seed: 1, nodes: 3, opsPerNode: 60, convergeTimeoutMs: 90_000, skewMs: 3 * 3_600_000, logLevel: 'debug', rebuild: 'always', rebuildFault: 'kill', rebuildFaultAfterSnapshot: true })
      )
      expect(result.ops).toBeGreaterThan(50)
      expect(Object.values(result.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(2)
      // the rebuilt node caught up through the index snapshot path (a fresh node's usual one)
      expect(result.faults.rebuildKill).toBe(1)
      expect(result.rebuildSnapshots).toBeGreaterThanOrEqual(1)
    }, 240_000)
    return
  }
  for (let r = 0; r < rounds; r++) {
    const seed = firstSeed + r
    it(`round ${r + 1}/${rounds}, seed ${seed}`, async () => {
      await recorded(runRound({ seed }))
    }, 600_000)
  }
})
