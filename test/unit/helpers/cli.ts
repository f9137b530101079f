import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'run.js')

/** Runs the built CLI (npm test builds first) as a user would. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env: {...process.env, HPC_ANNEX_MACHINES: '', ...env}})
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}
