import type {LoginOptions} from '../annex/requests.js'
import type {TransportKind} from '../ssh/transport.js'
import {lazyTransport} from './lazy-transport.js'
import {Flags} from './oclif.js'
import {TerminalInteraction} from './prompt.js'

/** --ssh, for the verbs that log in again (logs, shutdown --cancel-pending). */
export const sshFlag = Flags.option({
  options: ['ssh2', 'openssh'] as const,
  description: 'SSH client: ssh2 (built in) or openssh (the system ssh, with a ControlMaster). [default: openssh when `hpc-annex login` left a live connection, else ssh2]',
})()

/**
 * How those verbs reach a login node: a fresh transport per login target
 * (kind as --ssh chose, else decided when it connects), the terminal for the
 * login node's questions, and HPC_ANNEX_SSH_CONFIG as the ssh_config file
 * when set.
 */
export function loginOptions(kind: TransportKind | undefined, json: boolean): LoginOptions & {sshConfigFile?: string} {
  const sshConfigFile = process.env.HPC_ANNEX_SSH_CONFIG
  const log = json ? null : (message: string) => process.stderr.write(`${message}\n`)
  return {
    open: (group) => lazyTransport(kind, {interactive: new TerminalInteraction({system: group.system}).interactive}),
    interaction: (group) => new TerminalInteraction({system: group.system, log}),
    ...(sshConfigFile ? {sshConfigFile} : {}),
  }
}
