import {logsFailure, showLogs} from '../annex/logs.js'
import type {LogsOutput} from '../cli/json/schemas.js'
import {AnnexCommand} from '../cli/base.js'
import {interruptSignal} from '../cli/interrupt.js'
import {loginOptions, sshFlag, tmpDirFlag} from '../cli/login.js'
import {Args, Flags} from '../cli/oclif.js'
import {userError} from '../errors.js'

export default class Logs extends AnnexCommand {
  static override summary = "Show an annex's logs: each batch job's output and error files and each node's HTCondor logs."
  static override description =
    'Logs in to the login node once per login target and reads the pilot directory of each request. With --follow, keeps printing new lines until Ctrl-C.'

  static override examples = [
    '<%= config.bin %> logs myannex',
    '<%= config.bin %> logs myannex --request 12 --node node2 --lines 200',
    '<%= config.bin %> logs myannex --follow',
  ]

  static override args = {
    name: Args.string({description: 'Name of the annex.', required: true}),
  }

  static override flags = {
    request: Flags.string({description: 'Only this request: its id (GlobalJobID) or its state job id.', helpValue: 'ID'}),
    follow: Flags.boolean({char: 'f', description: 'Keep printing new lines until interrupted.'}),
    node: Flags.string({description: "Only this node's HTCondor logs (its name under the pilot directory's hosts/).", helpValue: 'NODE'}),
    ssh: sshFlag,
    tmp_dir: tmpDirFlag,
    lines: Flags.integer({char: 'n', description: 'Last lines of each file; 0 for whole files.', default: 100, min: 0, helpValue: 'N'}),
  }

  async run(): Promise<LogsOutput> {
    const {args, flags} = await this.parse(Logs)
    const json = this.jsonEnabled()
    if (flags.follow && json) throw userError('--follow and --json cannot be used together; drop one of them.')
    if (flags.node !== undefined && !/^[A-Za-z0-9._-]+$/.test(flags.node)) {
      throw userError(`--node '${flags.node}' is not a node name (letters, digits, '.', '_', '-'); change --node.`)
    }
    let text = ''
    const result = await showLogs({
      name: args.name,
      ...(flags.request === undefined ? {} : {request: flags.request}),
      ...(flags.node === undefined ? {} : {node: flags.node}),
      follow: flags.follow,
      lines: flags.lines,
      login: loginOptions(flags.ssh, json, flags.tmp_dir),
      write: json ? (chunk) => (text += chunk) : (chunk) => process.stdout.write(chunk),
      signal: interruptSignal(),
    })
    const failure = logsFailure(result)
    if (failure && json) process.exitCode = 2
    else if (failure) throw failure
    return {...result, output: text}
  }
}
