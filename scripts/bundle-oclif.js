// Bundles src/oclif.cjs (the parts of oclif hpc-annex uses) with everything it
// requires into dist/oclif.cjs. oclif is ~70 CommonJS files and needs ~50 more
// from its dependencies; found, read and compiled one by one they were a third
// of every command's start. Bundled, a start reads one file.
import {build} from 'esbuild'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
await build({
  entryPoints: [join(root, 'src', 'oclif.cjs')],
  outfile: join(root, 'dist', 'oclif.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Keep import() as it is: oclif loads each command (an ES module) with it.
  supported: {'dynamic-import': true},
  // Only oclif's development mode (bin/dev.js, which uses src/oclif.cjs) loads these.
  external: ['typescript', 'ts-node'],
  logLevel: 'warning',
})
console.log('dist/oclif.cjs: oclif bundled')
