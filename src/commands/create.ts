import {AnnexCommand} from '../cli/base.js'
import {deliveryFlags, runRequest, type RequestOutcome} from '../cli/annex-request.js'
import {htcondorTestFlag, requestArgs, requestFlags} from '../cli/request-flags.js'

export default class Create extends AnnexCommand {
  static override summary = 'Create an annex: lease nodes on an HPC system for your HTCondor jobs.'
  static override description =
    'Checks the request against the queue\'s limits before any login, then logs in once (one 2FA prompt), stages what the login node lacks and submits the batch job. With --dry-run, prints what would be asked for and stops.'

  static override examples = [
    '<%= config.bin %> create myannex wholenode@anvil --nodes 2 --lifetime 7200 --dry-run',
    '<%= config.bin %> create gpus gpu@expanse --project abc123 --nodes 2',
    '<%= config.bin %> create small shared@anvil --cpus 8 --mem_mb 16384',
  ]

  static override args = requestArgs
  static override flags = {...requestFlags, ...deliveryFlags}

  async run(): Promise<RequestOutcome> {
    this.argv = htcondorTestFlag(this.argv)
    const {args, flags} = await this.parse(Create)
    return runRequest('create', args, flags, {log: (line) => this.log(line), json: this.jsonEnabled()})
  }
}
