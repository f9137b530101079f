import {chmodSync, mkdtempSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {defineConfig} from 'vitest/config'

// Everything the tests and the CLIs they run put in the temporary directory
// (os.tmpdir(): TMPDIR) lands in one directory of this run, which goes when
// vitest ends, whatever a test left. Its name is short: OpenSSH's and
// HTCondor's sockets are made below it, and a socket path has at most 107 bytes.
const testTmp = mkdtempSync('/tmp/t-')
// Like /tmp itself: the site's and the Access Point's other accounts make their temporary files here too.
chmodSync(testTmp, 0o1777)
process.on('exit', () => rmSync(testTmp, {recursive: true, force: true}))
// The CLIs remember file digests (src/backend/digest.ts) here, not in the home of whoever runs the tests.
const cacheHome = mkdtempSync(join(testTmp, 'cache-'))
const env = {TMPDIR: testTmp, XDG_CACHE_HOME: cacheHome}

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
