import type {LoginOptions} from '../annex/requests.js'
import {systemError} from '../errors.js'

/**
 * How the verbs that log in again (logs, shutdown --cancel-pending) reach a
 * login node: a fresh transport per login target, the terminal for its
 * questions, and HPC_ANNEX_SSH_CONFIG as the ssh_config file when set.
 */
export function loginOptions(): LoginOptions & {sshConfigFile?: string} {
  const sshConfigFile = process.env.HPC_ANNEX_SSH_CONFIG
  return {
    open: () => {
      throw systemError('this build of hpc-annex has no SSH transport yet')
    },
    interaction: {
      answer: async () => {
        throw systemError('this build of hpc-annex cannot answer login prompts yet')
      },
      progress: (message: string) => process.stderr.write(`${message}\n`),
    },
    ...(sshConfigFile ? {sshConfigFile} : {}),
  }
}
