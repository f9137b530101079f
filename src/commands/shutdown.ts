import {Args, Flags} from '@oclif/core'

import {formatShutdown, shutdownAnnex, type ShutdownResult} from '../annex/shutdown.js'
import {AnnexCommand} from '../cli/base.js'

export default class Shutdown extends AnnexCommand {
  static override summary = "Shut an annex down: tell each of its pilots to stop now."
  static override description = 'Requests whose pilots have not joined the annex yet are not affected.'
  static override examples = ['<%= config.bin %> shutdown myannex']

  static override args = {
    name: Args.string({description: 'Name of the annex.', required: true}),
  }

  static override flags = {
    pool: Flags.string({description: 'Annex collector to ask. [default: ANNEX_COLLECTOR]', helpValue: 'ADDRESS'}),
  }

  async run(): Promise<ShutdownResult> {
    const {args, flags} = await this.parse(Shutdown)
    const result = await shutdownAnnex({name: args.name, ...(flags.pool === undefined ? {} : {pool: flags.pool})})
    this.log(formatShutdown(result))
    return result
  }
}
