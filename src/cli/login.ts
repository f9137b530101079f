import type {LoginOptions} from '../annex/requests.js'
import type {TransportKind} from '../ssh/transport.js'
import {lazyTransport} from './lazy-transport.js'
import {TerminalInteraction} from './prompt.js'

export {sshFlag, tmpDirFlag} from './ssh-flag.js'

/**
 * How those verbs reach a login node: a fresh transport per login target
 * (kind as --ssh chose, else decided when it connects), the terminal for the
 * login node's questions, HPC_ANNEX_SSH_CONFIG as the ssh_config file when
 * set, and --tmp_dir (else ANNEX_TMP_DIR) as the control sockets' directory.
 */
export function loginOptions(kind: TransportKind | undefined, json: boolean, tmpDir?: string): LoginOptions {
  const sshConfigFile = process.env.HPC_ANNEX_SSH_CONFIG
  const log = json ? null : (message: string) => process.stderr.write(`${message}\n`)
  return {
    open: (group) => lazyTransport(kind, {interactive: new TerminalInteraction({system: group.system}).interactive}),
    interaction: (group) => new TerminalInteraction({system: group.system, log}),
    ...(sshConfigFile ? {sshConfigFile} : {}),
    ...(tmpDir === undefined ? {} : {controlDir: tmpDir}),
  }
}
