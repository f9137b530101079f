import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Some unit tests run the built CLI a few times; a loaded 2-core CI machine needs more than 5 s.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          // Against the loopback HPC site (real sshd + SLURM on this machine), brought up
          // by the global setup as root; skipped with a warning elsewhere, fatal under CI=true.
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/site/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // one site per machine, 2 cores: one test file at a time
          fileParallelism: false,
        },
      },
    ],
  },
})
