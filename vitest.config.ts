import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {defineConfig} from 'vitest/config'

// The CLIs the tests run remember file digests (src/backend/digest.ts) here, not in the home of whoever
// runs the tests; it goes when vitest ends.
const cacheHome = mkdtempSync(join(tmpdir(), 'hpc-annex-test-cache-'))
process.on('exit', () => rmSync(cacheHome, {recursive: true, force: true}))
const env = {XDG_CACHE_HOME: cacheHome}

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          env,
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
          env,
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
