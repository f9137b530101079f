import {type AdminCondor, apCondor} from '../../annex/admin-condor.js'
import {chooseMetaknob, defaultConfigDir, installMetaknob} from '../../annex/metaknob.js'
import {AnnexCommand} from '../../cli/base.js'
import type {AdminMetaknobOutput} from '../../cli/json/schemas.js'
import {Args, Flags} from '../../cli/oclif.js'
import {userError} from '../../errors.js'

export default class AdminMetaknob extends AnnexCommand {
  static override summary = 'Print, or install, the Access Point configuration that HPC annexes need.'
  static override description =
    'The same configuration as `use feature:HPC_ANNEX` in HTCondor releases that have it: the AP collector, the annex ' +
    'collector address, the token key and domain, the schedd reporting to the AP collector, and the AssignAnnex job ' +
    'transform. Review it, install it, run condor_reconfig, then `hpc-annex admin check`.'

  static override examples = [
    '<%= config.bin %> admin metaknob',
    // oclif marks only examples that start with the command itself; these start with sudo.
    '$ sudo <%= config.bin %> admin metaknob --install',
    '$ sudo <%= config.bin %> admin metaknob --install /etc/condor/config.d --prefer-builtin',
  ]

  static override args = {
    dir: Args.string({description: 'With --install: the configuration directory (default: the first of LOCAL_CONFIG_DIR).'}),
  }

  static override flags = {
    install: Flags.boolean({description: 'Write it as 50-hpc-annex.config (mode 0644) into DIR instead of printing it.'}),
    force: Flags.boolean({description: 'With --install: replace a different 50-hpc-annex.config; the old one is kept in DIR/.hpc-annex-backups.', dependsOn: ['install']}),
    exclusive: Flags.boolean({description: 'Also keep jobs that name no annex off machines that did not join as the pool\'s own (ANNEX_JOBS_EXCLUSIVELY).'}),
    'prefer-builtin': Flags.boolean({description: 'Use this HTCondor\'s own `use feature:HPC_ANNEX` when it has one.'}),
  }

  async run(): Promise<AdminMetaknobOutput> {
    const {args, flags} = await this.parse(AdminMetaknob)
    if (args.dir !== undefined && !flags.install) {
      throw userError(`A directory (${args.dir}) is only taken with --install.`, `hpc-annex admin metaknob --install ${args.dir}`)
    }
    let condor: AdminCondor | undefined
    const ap = () => (condor ??= apCondor())

    const choice = await chooseMetaknob({exclusive: flags.exclusive, preferBuiltin: flags['prefer-builtin']}, flags['prefer-builtin'] ? ap() : {configTemplate: async () => undefined})
    if (!flags.install) {
      this.log(choice.content.replace(/\n$/, ''))
      return choice
    }

    const dir = args.dir ?? (await defaultConfigDir(ap()))
    const install = installMetaknob(dir, choice.content, {force: flags.force})
    const what = choice.builtin ? 'use feature:HPC_ANNEX' : 'the HPC annex configuration'
    if (install.action === 'unchanged') {
      this.log(`${install.path} already holds ${what}; nothing changed.`)
    } else {
      this.log(`Wrote ${what} to ${install.path}.`)
      if (install.backup !== undefined) this.log(`The previous file is kept as ${install.backup}.`)
      this.log(
        (await pinsCollector(ap()))
          ? 'Next: condor_restart (this HTCondor\'s collector port was chosen at start-up; the configuration pins it to COLLECTOR_PORT, which only a restart takes), then hpc-annex admin check.'
          : 'Next: condor_reconfig (the new AP collector starts with it), then hpc-annex admin check.',
      )
    }
    return {...choice, install}
  }
}

/** Whether the configuration now pins a collector port chosen at start-up (the metaknob sets _HPC_ANNEX_PINNED_COLLECTOR then). */
async function pinsCollector(condor: AdminCondor): Promise<boolean> {
  try {
    const {_HPC_ANNEX_PINNED_COLLECTOR: pinned} = await condor.configValues(['_HPC_ANNEX_PINNED_COLLECTOR'])
    return /^\s*true\s*$/i.test(pinned ?? '')
  } catch {
    // No condor_config_val to ask (an --install DIR elsewhere): the usual advice.
    return false
  }
}
