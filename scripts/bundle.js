// Bundles, after tsc, the dependencies every verb loads at start into single
// files: found, read and compiled one by one, their files were most of a
// verb's start. Bundled, each is one read and one compile.
//   src/oclif.cjs        -> dist/oclif.cjs        oclif's ~70 CommonJS files and ~50 of its dependencies'
//   src/vendor/execa.ts  -> dist/vendor/execa.js  execa (ES module) and its ~15 dependencies
//   src/vendor/zod.ts    -> dist/vendor/zod.js    zod (the machine files' schema)
//   src/vendor/toml.ts   -> dist/vendor/toml.js   @iarna/toml (the machine files' parser)
//   src/vendor/listr2.ts -> dist/vendor/listr2.js listr2 and its dependencies (create's steps)
//   src/vendor/handlebars.ts -> dist/vendor/handlebars.js  Handlebars' runtime (5 CommonJS files)
import {build} from 'esbuild'
import {rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const common = {bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', sourcemap: false, minifyWhitespace: true, minifySyntax: true}

await build({
  ...common,
  entryPoints: [join(root, 'src', 'oclif.cjs')],
  outfile: join(root, 'dist', 'oclif.cjs'),
  format: 'cjs',
  // Keep import() as it is: oclif loads each command (an ES module) with it.
  supported: {'dynamic-import': true},
  // Only oclif's development mode (bin/dev.js, which uses src/oclif.cjs) loads these.
  external: ['typescript', 'ts-node'],
})

// Over tsc's output of the same modules; their .d.ts stay for the types.
const vendored = ['execa', 'zod', 'toml', 'listr2', 'handlebars']
for (const name of vendored) {
  await build({
    ...common,
    entryPoints: [join(root, 'src', 'vendor', `${name}.ts`)],
    outfile: join(root, 'dist', 'vendor', `${name}.js`),
    allowOverwrite: true,
    format: 'esm',
    // CommonJS dependencies (execa's cross-spawn, the TOML parser) require Node's built-ins.
    banner: {js: "import {createRequire as bundleRequire} from 'node:module'; const require = bundleRequire(import.meta.url);"},
  })
  // tsc's source map describes the file this one replaced.
  await rm(join(root, 'dist', 'vendor', `${name}.js.map`), {force: true})
}
console.log(`dist/oclif.cjs, ${vendored.map((name) => `dist/vendor/${name}.js`).join(', ')}: bundled`)
