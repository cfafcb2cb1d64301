import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
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
