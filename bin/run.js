#!/usr/bin/env node
// oclif as `npm run build` bundles it (dist/oclif.cjs, see src/oclif.cjs), the
// same one the commands use.
import {createRequire} from 'node:module'

const {execute} = createRequire(import.meta.url)('../dist/oclif.cjs')

await execute({dir: import.meta.url})
