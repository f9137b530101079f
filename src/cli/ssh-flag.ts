import {expandHome} from '../paths.js'
import {Flags} from './oclif.js'

/** --ssh: which SSH client logs in, for every verb that logs in. */
export const sshFlag = Flags.option({
  options: ['ssh2', 'openssh'] as const,
  description: 'SSH client: ssh2 (built in) or openssh (the system ssh, with a ControlMaster). [default: openssh when `hpc-annex login` left a live connection, else ssh2]',
})()

/**
 * --tmp_dir: the directory of the OpenSSH control socket, `DIR/master-%C`, as
 * HTCondor's `htcondor annex` takes it, so that a connection either tool
 * opened serves the other (`~` is expanded, as HTCondor does).
 */
export const tmpDirFlag = Flags.string({
  description: 'Directory of the SSH control socket (DIR/master-%C), shared with `htcondor annex`. [default: ANNEX_TMP_DIR, else ~/.hpc-annex]',
  helpValue: 'DIR',
  parse: async (value) => expandHome(value),
})

/** --login-name (--login) and --login-host (--host): where a verb for one system logs in, as HTCondor's tool spells them. */
export const loginTargetFlags = {
  'login-name': Flags.string({aliases: ['login'], description: 'User name on the login node.', helpValue: 'USER'}),
  'login-host': Flags.string({aliases: ['host'], description: 'Login node to use instead of the system\'s.', helpValue: 'HOST'}),
}
