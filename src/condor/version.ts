import {parseCondorVersion} from '../catalog/index.js'
import {systemError} from '../errors.js'
import {runTool} from './runner.js'

/** The Access Point's HTCondor version, from condor_version (what condor_remote_cluster installs on a remote cluster too). */
export async function accessPointVersion(): Promise<string> {
  const {stdout} = await runTool('condor_version', [], {timeout: 30})
  const version = parseCondorVersion(stdout)
  if (version === undefined) {
    throw systemError(`condor_version printed no version ('${stdout.split('\n')[0] ?? ''}'); pin the pilots' version with --condor-version.`)
  }
  return version
}
