import {userInfo} from 'node:os'

import {Flags} from '@oclif/core'

import {describePlan, loadCatalog, validateRequest, type Plan} from '../catalog/index.js'
import {AnnexCommand} from '../cli/base.js'
import {requestArgs, requestFlags, requestInput} from '../cli/request-flags.js'
import {systemError} from '../errors.js'

export default class Create extends AnnexCommand {
  static override summary = 'Create an annex: lease nodes on an HPC system for your HTCondor jobs.'
  static override description =
    'Checks the request against the queue\'s limits before any login. With --dry-run, prints what would be asked for and stops.'

  static override examples = [
    '<%= config.bin %> create myannex wholenode@anvil --nodes 2 --lifetime 7200 --dry-run',
    '<%= config.bin %> create gpus gpu@expanse --project abc123 --nodes 2',
    '<%= config.bin %> create small shared@anvil --cpus 8 --mem_mb 16384',
  ]

  static override args = requestArgs

  static override flags = {
    ...requestFlags,
    'dry-run': Flags.boolean({description: 'Validate and print the plan; touch no network and no HTCondor tool.'}),
  }

  async run(): Promise<Plan> {
    const {args, flags} = await this.parse(Create)
    const plan = validateRequest(loadCatalog(), requestInput(args, flags), {defaultOwner: userInfo().username})
    if (flags['dry-run']) {
      this.log(describePlan(plan))
      this.log('Nothing was submitted (--dry-run).')
      return plan
    }
    throw systemError('This build of hpc-annex can validate requests but not yet submit them; run with --dry-run.')
  }
}
