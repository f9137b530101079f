import {userInfo} from 'node:os'

import {Flags} from '@oclif/core'

import {describePlan, loadCatalog, validateRequest, type Plan} from '../catalog/index.js'
import {AnnexCommand} from '../cli/base.js'
import {requestArgs, requestFlags, requestInput} from '../cli/request-flags.js'
import {systemError, userError} from '../errors.js'
import {dryRunContext, emitFiles, renderFiles, sha256File} from '../staging/index.js'

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
    emit: Flags.string({
      description: 'With --dry-run: write every generated file (back-end, batch script, pilot configuration, pilots) into DIR.',
      helpValue: 'DIR',
      dependsOn: ['dry-run'],
    }),
    bundle: Flags.string({
      description: 'Write a self-service bundle (with setup.sh) to FILE instead of logging in, for systems that allow no automated SSH.',
      helpValue: 'FILE',
      exclusive: ['dry-run'],
    }),
    'condor-tarball': Flags.string({
      description: 'Stage this local HTCondor tarball into the login node\'s cache instead of downloading one there.',
      helpValue: 'PATH',
    }),
  }

  async run(): Promise<Plan> {
    const {args, flags} = await this.parse(Create)
    const plan = validateRequest(loadCatalog(), requestInput(args, flags), {defaultOwner: userInfo().username})
    if (flags['dry-run']) {
      const staged = flags['condor-tarball'] === undefined ? {} : {stagedTarballSha256: await tarballDigest(flags['condor-tarball'])}
      this.log(describePlan(plan))
      if (flags.emit !== undefined) {
        const written = await emitFiles(flags.emit, renderFiles(plan, dryRunContext(plan, staged), {setup: true}))
        this.log(`Wrote ${written.length} generated files (Access Point values are placeholders) to ${flags.emit}.`)
      }
      this.log('Nothing was submitted (--dry-run).')
      return plan
    }
    throw systemError('This build of hpc-annex can validate requests but not yet submit them; run with --dry-run.')
  }
}

async function tarballDigest(path: string): Promise<string> {
  try {
    return await sha256File(path)
  } catch (error) {
    throw userError(`Cannot read the HTCondor tarball '${path}' (${(error as Error).message}); change --condor-tarball.`)
  }
}
