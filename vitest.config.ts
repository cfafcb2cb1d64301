import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The integration files that take longest, longest first (durations of `pnpm test` on the
 * 2-core machine, 2026-11-29: 82, 46, 37, 35, 30, 29, 28, 28 s; the median file takes 10 s).
 * Without vitest's timing cache (a fresh clone, as in CI) files start in path order, and
 * hostile-volume, started half-way, ran alone for the last minute of the suite.
 */
const LONGEST_FIRST = ['hostile-volume', 'discovery', 'offline-changes', 'withheld-contents', 'withheld-index', 'cli', 'initial-sync', 'docker-files', 'hostile-connections']

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
          // most of a unit file's time is importing the Hypercore stack (CPU): both cores
          maxWorkers: 2,
          sequence: { groupOrder: 0 }
        }
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/faults/**'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Each test file spawns its own agents; two cores, so keep file parallelism low. Three:
          // most files wait on their agents (start-up, reconnects, timers) as long as they compute;
          // four missed a deadline (hostile-volume, 10,000 entries) on a loaded machine.
          maxWorkers: 3,
          fileParallelism: true,
          // after the unit tests, not beside them
          sequence: { groupOrder: 1 }
        }
      },
      {
        test: {
          // network namespaces, tmpfs mounts and libfaketime: needs root (see test/faults/README.md)
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          // faults.test.ts runs the fixed-seed CI round here; `pnpm test:faults --rounds N`
          // runs random rounds with the same file
          environment: 'node',
          testTimeout: 600_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          // last: it uses the whole machine
          sequence: { groupOrder: 2 }
        }
      }
    ]
  }
})
