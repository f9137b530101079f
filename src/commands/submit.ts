import {submitToAnnex} from '../annex/submit.js'
import type {SubmitOutput} from '../cli/json/schemas.js'
import {AnnexCommand} from '../cli/base.js'
import {Args, Flags} from '../cli/oclif.js'

export default class Submit extends AnnexCommand {
  static override summary = 'Submit jobs that may run only on the named annex.'
  static override description = 'Like condor_submit FILE, with MY.TargetAnnexName set to the annex name.'
  static override examples = ['<%= config.bin %> submit job.sub --annex-name myannex']

  static override args = {
    file: Args.string({description: 'HTCondor submit file.', required: true}),
  }

  static override flags = {
    'annex-name': Flags.string({description: 'The annex the jobs will run on.', required: true, helpValue: 'NAME'}),
  }

  async run(): Promise<SubmitOutput> {
    const {args, flags} = await this.parse(Submit)
    const result = await submitToAnnex({file: args.file, annexName: flags['annex-name']})
    this.log(`${result.jobs} job(s) submitted to cluster ${result.clusterId}, to run on the annex '${result.annexName}'.`)
    this.log(`To get resources for them: hpc-annex create ${result.annexName} QUEUE@SYSTEM (or add, if the annex exists).`)
    return result
  }
}
