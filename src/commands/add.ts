import {AnnexCommand} from '../cli/base.js'
import {deliveryFlags, runRequest, type RequestOutcome} from '../cli/annex-request.js'
import {htcondorTestFlag, requestArgs, requestFlags} from '../cli/request-flags.js'

export default class Add extends AnnexCommand {
  static override summary = 'Add resources to an existing annex: another request under the same name.'
  static override description = 'The same checks and flags as create; the annex must already exist.'
  static override examples = ['<%= config.bin %> add myannex wholenode@anvil --nodes 2']

  static override args = requestArgs
  static override flags = {...requestFlags, ...deliveryFlags}

  async run(): Promise<RequestOutcome> {
    this.argv = htcondorTestFlag(this.argv)
    const {args, flags} = await this.parse(Add)
    return runRequest('add', args, flags, {log: (line) => this.log(line), json: this.jsonEnabled()})
  }
}
