import {Flags} from './oclif.js'

/** --ssh: which SSH client logs in, for every verb that logs in. */
export const sshFlag = Flags.option({
  options: ['ssh2', 'openssh'] as const,
  description: 'SSH client: ssh2 (built in) or openssh (the system ssh, with a ControlMaster). [default: openssh when `hpc-annex login` left a live connection, else ssh2]',
})()
