import {cancelFailures, formatShutdown, shutdownAnnex} from '../annex/shutdown.js'
import type {ShutdownOutput} from '../cli/json/schemas.js'
import {AnnexCommand} from '../cli/base.js'
import {loginOptions, sshFlag, tmpDirFlag} from '../cli/login.js'
import {Args, Flags} from '../cli/oclif.js'
import {systemError} from '../errors.js'

export default class Shutdown extends AnnexCommand {
  static override summary = 'Shut an annex down: tell each of its pilots to stop now.'
  static override description =
    'Requests whose pilots have not joined the annex yet are not affected, unless --cancel-pending: then hpc-annex logs in and cancels their batch jobs.'

  static override examples = ['<%= config.bin %> shutdown myannex', '<%= config.bin %> shutdown myannex --cancel-pending']

  static override args = {
    name: Args.string({description: 'Name of the annex.', required: true}),
  }

  static override flags = {
    pool: Flags.string({description: 'Annex collector to ask. [default: ANNEX_COLLECTOR]', helpValue: 'ADDRESS'}),
    'cancel-pending': Flags.boolean({description: 'Also log in and cancel the batch jobs of requests whose pilots have not joined yet.'}),
    ssh: sshFlag,
    tmp_dir: tmpDirFlag,
  }

  async run(): Promise<ShutdownOutput> {
    const {args, flags} = await this.parse(Shutdown)
    const result = await shutdownAnnex({
      name: args.name,
      ...(flags.pool === undefined ? {} : {pool: flags.pool}),
      ...(flags['cancel-pending'] ? {cancelPending: loginOptions(flags.ssh, this.jsonEnabled(), flags.tmp_dir)} : {}),
    })
    this.log(formatShutdown(result))
    const failed = cancelFailures(result)
    if (failed.length > 0 && this.jsonEnabled()) process.exitCode = 2
    else if (failed.length > 0) {
      throw systemError(`${failed.length} pending request(s) of annex '${result.annexName}' were not cancelled: ${failed[0]!.detail}`, {
        hint: `fix that, then run hpc-annex shutdown ${result.annexName} --cancel-pending again`,
      })
    }
    return result
  }
}
