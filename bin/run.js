#!/usr/bin/env node
// oclif is CommonJS: require() takes it straight from Node's module cache, which
// an ES module import would read and scan again for its exports (see src/cli/oclif.ts).
import {createRequire} from 'node:module'

const {execute} = createRequire(import.meta.url)('@oclif/core/execute')

await execute({dir: import.meta.url})
