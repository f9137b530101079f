import {checkAp, formatReport} from '../../annex/admin-check.js'
import type {AdminCheckOutput} from '../../cli/json/schemas.js'
import {apCondor} from '../../annex/admin-condor.js'
import {AnnexCommand} from '../../cli/base.js'

export default class AdminCheck extends AnnexCommand {
  static override summary = 'Check that this Access Point is set up for HPC annexes, item by item, with the fix for each miss.'
  static override description =
    'Reads the AP\'s live configuration (condor_config_val) and asks its annex collector (condor_status). Exits 1 when anything is missing; ' +
    'a warning (an annex collector at a loopback address, say) or an item it could not verify (a SEC_PASSWORD_DIRECTORY this user cannot read) does not.'

  static override examples = ['<%= config.bin %> admin check', '<%= config.bin %> admin check --json']

  async run(): Promise<AdminCheckOutput> {
    await this.parse(AdminCheck)
    const report = await checkAp(apCondor())
    this.log(formatReport(report))
    // Exit 1 after the report (and the --json payload) is printed.
    if (!report.ok) process.exitCode = 1
    return report
  }
}
