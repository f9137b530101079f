import {setTimeout as sleep} from 'node:timers/promises'

import {collectStatus, type StatusReport} from '../annex/status.js'
import {statusJson} from '../cli/json/project.js'
import type {StatusOutput} from '../cli/json/schemas.js'
import {formatStatusParagraph, formatStatusTable} from '../cli/status-text.js'
import {AnnexCommand} from '../cli/base.js'
import {Args, Flags} from '../cli/oclif.js'
import {userError} from '../errors.js'

export default class Status extends AnnexCommand {
  static override summary = 'Show your annexes: requests, nodes, CPUs and the jobs that target them.'
  static override description =
    'Without a name, one line per annex; with a name, a paragraph about that annex. --json gives the same data for scripts.'

  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status myannex', '<%= config.bin %> status --watch']

  static override args = {
    name: Args.string({description: 'Show this annex in detail.'}),
  }

  static override flags = {
    watch: Flags.boolean({description: 'Refresh until interrupted (on a terminal).'}),
    interval: Flags.integer({description: 'Seconds between refreshes with --watch.', helpValue: 'SECONDS', default: 10, min: 2}),
    pool: Flags.string({description: 'Annex collector to ask. [default: ANNEX_COLLECTOR]', helpValue: 'ADDRESS'}),
  }

  async run(): Promise<StatusOutput> {
    const {args, flags} = await this.parse(Status)
    const options = {...(args.name === undefined ? {} : {name: args.name}), ...(flags.pool === undefined ? {} : {pool: flags.pool})}
    const show = (report: StatusReport) => (args.name === undefined ? formatStatusTable(report) : formatStatusParagraph(report))
    if (!flags.watch) {
      const report = await collectStatus(options)
      this.log(show(report))
      return statusJson(report)
    }
    if (this.jsonEnabled()) throw userError('--watch and --json cannot be used together; drop one of them.')
    if (!process.stdout.isTTY) throw userError('--watch needs a terminal; drop --watch when the output goes to a file or a pipe.')
    for (;;) {
      const report = await collectStatus(options)
      process.stdout.write('\u001b[H\u001b[2J')
      this.log(`${new Date(report.time * 1000).toLocaleTimeString()} — every ${flags.interval} s; Ctrl-C to stop\n`)
      this.log(show(report))
      await sleep(flags.interval * 1000)
    }
  }
}
