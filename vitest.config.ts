import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The files that take longest, longest first within each project (integration durations of
 * `pnpm test` on the 2-core machine, 2026-12-02: 45, 43, 39, 33, 31, 30, 30, 30, 30, 24, 23,
 * 21, 20, 18 s; the median file takes 8 s). Without vitest's timing cache (a fresh clone, as
 * in CI) files start in path order, and hostile-volume, started half-way, ran alone for the
 * last minute of the suite.
 */
const LONGEST_FIRST = [
  // integration
  'hostile-volume', 'versions', 'initial-sync', 'hostile-connections', 'docker-files', 'offline-changes', 'conflicts', 'crash-points', 'readiness',
  'withheld-index', 'withheld-contents', 'cli', 'watchdog', 'bandwidth-limits', 'discovery', 'haproxy', 'watch-limit',
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
          // run here, beside the rest: mostly idle, they filled 16 s alone after the round
          exclude: ['test/faults/faults.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Each test file spawns its own agents; two cores, so keep file parallelism low. Three:
          // most files wait on their agents (start-up, reconnects, timers) as long as they compute;
          // four missed a deadline (hostile-volume, 10,000 entries) on a loaded machine.
          maxWorkers: 3,
          fileParallelism: true,
          isolate: false,
          // after the unit tests, not beside them
          sequence: { groupOrder: 1 }
        }
      },
      {
        test: {
          // network namespaces, tmpfs mounts and libfaketime: needs root (see test/faults/README.md;
          // disk-full and watch-limit, which need it too, run with the integration tests)
          name: 'faults',
          include: ['test/faults/faults.test.ts'],
          // faults.test.ts runs the fixed-seed CI round here; `pnpm test:faults --rounds N`
          // runs random rounds with the same file
          environment: 'node',
          testTimeout: 600_000,
          hookTimeout: 60_000,
          // last and alone: the round uses the whole machine (with the other fault files beside
          // it, its rebuilt node once caught up without the index snapshot the test expects)
          sequence: { groupOrder: 2 }
        }
      }
    ]
  }
})
