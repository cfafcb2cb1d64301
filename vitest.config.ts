import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The files that take longest, longest first within each project (integration durations of
 * vitest on the 2-core machine, 2026-12-03, session 35: 60, 59, 52, 45, 36, 31, 30, 26, 26, 25,
 * 24, 23, 22, 21, 19 s; the median file takes 10 s). Without vitest's timing cache (a fresh clone, as
 * in CI) files start in path order, and hostile-volume, started half-way, ran alone for the
 * last minute of the suite.
 */
const LONGEST_FIRST = [
  // integration ('faults': the fault suite's CI round, see the integration project)
  // (docker-files, heavy in CPU in its child processes, after readiness: started beside the
  // heaviest at the start it took 58-118 s against 38-45 s, and it fills the stretch where the
  // files beside it mostly wait (withheld-contents, bandwidth-limits, discovery), in which one
  // core idled a third of the time; 2026-12-03, vmstat per second)
  'hostile-volume', 'hostile-connections', 'initial-sync', 'faults', 'versions', 'withheld-index', 'crash-points', 'offline-changes',
  'conflicts', 'readiness', 'docker-files', 'withheld-contents', 'bandwidth-limits', 'discovery', 'haproxy', 'watchdog', 'crash-recovery', 'clock-skew', 'watch-limit', 'cli',
  // unit
  'event-loop-watchdog', 'rate-limited-socket', 'sync-engine-listing', 'index-transfer', 'untrusted-input', 'open-store', 'sync-engine-unserved-index'
]

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((name) => f.moduleId.endsWith(`/${name}.test.ts`))
      return i === -1 ? LONGEST_FIRST.length : i
    }
    const group = (f: TestSpecification) => `${f.project.config.sequence.groupOrder}:${f.project.name}`
    // within each project (which stay in the base order), the listed files first; the rest as before
    return sorted
      .map((f, index) => ({ f, index }))
      .sort((a, b) => (group(a.f) === group(b.f) ? rank(a.f) - rank(b.f) || a.index - b.index : a.index - b.index))
      .map(({ f }) => f)
  }
}

/**
 * `pnpm test:faults` (scripts/test-faults.mjs sets SYNC_AGENT_FAULTS=1) runs random fault rounds
 * in the faults project, alone. Otherwise the fault suite's CI round runs as one of the
 * integration files: its workload paces itself (think time, waits for convergence) and uses
 * ~1.1 of the 2 cores for its ~35 s, which, run last and alone, left the other core idle at
 * the end of every `pnpm test` (wall time over CPU time of the suite: 0.55 beside the others,
 * 0.57–0.59 alone last; 2026-12-03, two runs and three).
 */
const faultRounds = process.env.SYNC_AGENT_FAULTS === '1'

export default defineConfig({
  test: {
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
          environment: 'node',
          // most of a unit file's time is importing the Hypercore stack (CPU), but the longest
          // ones wait on timers and sockets (a rate limit, request timeouts): three workers
          maxWorkers: 3,
          // files share a worker and its loaded modules: a fresh process per file (vitest and
          // the Hypercore stack imported 68 times) was half the unit tests' CPU (75 s of CPU
          // and 43 s against 39 s and 23 s, 2026-12-02). A file must leave nothing behind:
          // timers restored, handles closed (passes in shuffled order too)
          isolate: false,
          sequence: { groupOrder: 0 }
        }
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // the fault suite's other files (a full disk, an inotify limit, the oracle's own tests)
          // run here, beside the rest: mostly idle, they filled 16 s alone after the round; and
          // its CI round too, unless random rounds run (see faultRounds)
          exclude: faultRounds ? ['test/faults/faults.test.ts'] : [],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Each test file spawns its own agents; two cores, so keep file parallelism low. Four:
          // most files wait on their agents (start-up, reconnects, timers, withheld blocks) as
          // long as they compute. With three, a core idled 20-35% of the time in the stretches
          // where only such files ran (vitest 266 and 271 s; four: 250, then 234 s with
          // docker-files moved, 2026-12-03). Four had missed a deadline before, when
          // hostile-volume took 10,000 entries; it takes 5,000 now.
          maxWorkers: 4,
          fileParallelism: true,
          isolate: false,
          // after the unit tests, not beside them
          sequence: { groupOrder: 1 }
        }
      },
      ...(faultRounds
        ? [
            {
              test: {
                // network namespaces, tmpfs mounts and libfaketime: needs root (see
                // test/faults/README.md; disk-full and watch-limit, which need it too, run with
                // the integration tests)
                name: 'faults',
                include: ['test/faults/faults.test.ts'],
                // `pnpm test:faults --rounds N`: random rounds with the CI round's file
                environment: 'node',
                testTimeout: 600_000,
                hookTimeout: 60_000,
                // alone: a random round (3-5 nodes) uses the whole machine
                sequence: { groupOrder: 2 }
              }
            }
          ]
        : [])
    ]
  }
})
