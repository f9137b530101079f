import {AnnexCommand} from '../cli/base.js'
import {runApply} from '../cli/apply.js'
import {deliveryFlags} from '../cli/annex-request.js'
import type {ApplyOutput} from '../cli/json/schemas.js'
import {Args, Flags} from '../cli/oclif.js'

export default class Apply extends AnnexCommand {
  static override summary = 'Make the requests of a request file that the annex does not have yet.'
  static override description =
    'FILE (TOML, or JSON when it ends in .json) names an annex and its requests (QUEUE@SYSTEM with nodes, lifetime, ...). Requests still alive for the annex are not made again; the missing ones are created (the first) or added, over one login per login node. With --dry-run, says what would be made and what is there.'

  static override examples = ['<%= config.bin %> apply annex.toml --dry-run', '<%= config.bin %> apply annex.toml --json']

  static override args = {
    file: Args.string({description: 'The request file.', required: true}),
  }

  static override flags = {
    'dry-run': Flags.boolean({description: 'Say what exists and what would be made (asks the schedd); log in nowhere, make nothing.'}),
    'condor-tarball': deliveryFlags['condor-tarball'],
    'condor-version': deliveryFlags['condor-version'],
    'allow-unpinned-download': deliveryFlags['allow-unpinned-download'],
    'max-charge': deliveryFlags['max-charge'],
    ssh: deliveryFlags.ssh,
    'stall-timeout': deliveryFlags['stall-timeout'],
  }

  async run(): Promise<ApplyOutput> {
    const {args, flags} = await this.parse(Apply)
    return runApply(args.file, flags, {log: (line) => this.log(line), json: this.jsonEnabled()})
  }
}
