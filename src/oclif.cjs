'use strict'
// The parts of oclif hpc-annex uses, for bin/run.js and src/cli/oclif.ts.
// `npm run build` bundles this file and everything it requires (oclif's ~70
// files and ~50 of its dependencies') into dist/oclif.cjs (scripts/bundle.js):
// a start then reads and compiles one file instead of ~120. From src (tests,
// bin/dev.js) it is oclif as installed.
module.exports = {
  execute: require('@oclif/core/execute').execute,
  Command: require('@oclif/core/command').Command,
  Args: require('@oclif/core/args'),
  Flags: require('@oclif/core/flags'),
}
