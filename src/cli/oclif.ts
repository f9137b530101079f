import {createRequire} from 'node:module'

import type * as ArgsModule from '@oclif/core/args'
import type * as CommandModule from '@oclif/core/command'
import type * as FlagsModule from '@oclif/core/flags'

/**
 * The parts of oclif the commands use, from ../oclif.cjs: in dist, the
 * bundle `npm run build` makes of oclif; in src, oclif as installed.
 *
 * Taken with require: @oclif/core is CommonJS, and each of its files that an
 * ES module imports is read and scanned again for its export names, over
 * several turns of the event loop, which cost ~30 ms of every command's
 * start on a 2-CPU machine.
 */
const oclif: {Args: typeof ArgsModule; Command: typeof CommandModule.Command; Flags: typeof FlagsModule} = createRequire(import.meta.url)('../oclif.cjs')

export const {Command, Flags} = oclif

/**
 * oclif's Args, except that an argument left off is never taken from piped
 * stdin: oclif would otherwise read stdin for it (waiting 10 ms), so that
 * `hpc-annex status` run by a script or a job would show an annex named after
 * whatever its stdin held.
 */
export const Args: typeof ArgsModule = {
  ...oclif.Args,
  string: ((options?: object) => oclif.Args.string({...options, ignoreStdin: true} as never)) as typeof ArgsModule.string,
}
