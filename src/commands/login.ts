import {loginTarget} from '../annex/login-target.js'
import {loadCatalog, requireSystem} from '../catalog/index.js'
import {AnnexCommand} from '../cli/base.js'
import type {LoginOutput} from '../cli/json/schemas.js'
import {tmpDirFlag} from '../cli/login.js'
import {Args, Flags} from '../cli/oclif.js'
import {TerminalInteraction} from '../cli/prompt.js'
import {loginOverrides} from '../condor/index.js'
import {shellQuote} from '../quote.js'
import {OpenSshTransport} from '../ssh/openssh.js'

function duration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(1)} h`
  if (seconds % 60 === 0) return `${seconds / 60} min`
  return `${seconds} s`
}

export default class Login extends AnnexCommand {
  static override summary = "Log in to a system's login node once (2FA included) and keep the connection open for later commands."
  static override description =
    'Opens an OpenSSH master connection (ControlMaster) to the login node, answering its questions on this terminal. ' +
    'Until it expires, every hpc-annex command for that system runs over it and asks nothing.'
  static override examples = [
    '<%= config.bin %> login anvil',
    '<%= config.bin %> login expanse --login-name alice --persist 28800',
    '<%= config.bin %> login anvil --login alice --host login03.anvil.rcac.purdue.edu --tmp_dir ~/.hpc-annex',
  ]
  static override args = {
    system: Args.string({description: 'The system to log in to (see `hpc-annex systems`).', required: true}),
  }
  static override flags = {
    'login-name': Flags.string({aliases: ['login'], description: 'The user name on the login node (default: from ~/.ssh/config, else yours).', helpValue: 'USER'}),
    'login-host': Flags.string({
      aliases: ['host'],
      description: "Log in to this host instead of the system's login host (an alias of ~/.ssh/config works).",
      helpValue: 'HOST',
    }),
    tmp_dir: tmpDirFlag,
    persist: Flags.integer({description: 'Seconds the connection stays open after its last use.', helpValue: 'SECONDS', default: 4 * 3600, min: 60}),
  }

  async run(): Promise<LoginOutput> {
    const {args, flags} = await this.parse(Login)
    // As create: a machine file another user could have written is refused, not replaced by an earlier definition.
    const machine = requireSystem(loadCatalog(), args.system)
    // The same login create will use: the flags, else the admin's overrides (none when HTCondor cannot be asked), else the machine file.
    const overrides = await loginOverrides(machine.key).catch(() => ({}))
    const chosen = {
      ...(flags['login-host'] ? {host: flags['login-host']} : {}),
      ...(flags['login-name'] ? {user: flags['login-name']} : {}),
      ...(flags.tmp_dir === undefined ? {} : {controlDir: flags.tmp_dir}),
    }
    const target = loginTarget(machine.host, {flags: chosen, overrides}, process.env.HPC_ANNEX_SSH_CONFIG || undefined)
    const interaction = new TerminalInteraction({system: machine.key, log: this.jsonEnabled() ? null : (message) => process.stderr.write(`${message}\n`)})
    const transport = new OpenSshTransport({persist: flags.persist, keepMaster: true})
    try {
      await transport.connect(target, interaction)
      await transport.exec('true')
    } finally {
      await transport.close()
    }
    const resolved = transport.target
    const path = transport.controlPath ?? ''
    const result: LoginOutput = {
      system: machine.key,
      host: resolved?.host ?? target.host,
      user: resolved?.user ?? target.user ?? '',
      controlPath: path,
      persistSeconds: flags.persist,
      reused: transport.reusedMaster,
    }
    const until = new Date(Date.now() + flags.persist * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})
    this.log(
      transport.reusedMaster
        ? `Already logged in to ${machine.name} (${result.user}@${result.host}); the open connection is used.`
        : `Logged in to ${machine.name} (${result.user}@${result.host}). The connection stays open ${duration(flags.persist)} after its last use ` +
            `(until about ${until} if unused); hpc-annex commands for ${machine.key} use it without asking again.`,
    )
    this.log(`To close it now: ssh -S ${shellQuote(path)} -O exit ${shellQuote(target.host)}`)
    return result
  }
}
