import {markStarted} from '../../annex/mark-started.js'
import {markStartedJson} from '../../cli/json/project.js'
import type {MarkStartedOutput} from '../../cli/json/schemas.js'
import {AnnexCommand} from '../../cli/base.js'
import {Args} from '../../cli/oclif.js'
import {userError} from '../../errors.js'

/** Run by the state job every 5 minutes; not for people. */
export default class MarkStarted extends AnnexCommand {
  static override hidden = true
  static override summary = "Set a request's hpc_annex_start_time once its pilots have joined (run by the state job)."

  static override args = {
    job: Args.string({description: 'The state job, CLUSTER.PROC.', required: true}),
  }

  async run(): Promise<MarkStartedOutput> {
    const {args} = await this.parse(MarkStarted)
    if (!/^\d+\.\d+$/.test(args.job)) throw userError(`The job id '${args.job}' is not CLUSTER.PROC.`)
    const result = await markStarted(args.job)
    this.log(result.marked ? `${result.requestId}: started at ${result.startTime}` : `${result.requestId}: ${result.startTime === undefined ? 'no pilot yet' : 'already started'}`)
    return markStartedJson(result)
  }
}
