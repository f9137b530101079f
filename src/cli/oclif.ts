import {createRequire} from 'node:module'

import type * as ArgsModule from '@oclif/core/args'
import type * as CommandModule from '@oclif/core/command'
import type * as FlagsModule from '@oclif/core/flags'

/**
 * The parts of oclif the commands use, taken with require. @oclif/core is
 * CommonJS: each of its files that an ES module imports is read and scanned
 * again for its export names, over several turns of the event loop, which
 * cost ~30 ms of every command's start on a 2-CPU machine; require returns
 * the modules oclif's own start has already loaded.
 */
const require = createRequire(import.meta.url)

export const Args: typeof ArgsModule = require('@oclif/core/args')
export const Flags: typeof FlagsModule = require('@oclif/core/flags')
export const {Command}: typeof CommandModule = require('@oclif/core/command')
