import {existsSync, statSync} from 'node:fs'

import {checkAnnexName} from '../catalog/request.js'
import {readAnnexConfig, requireAnnexEnabled, submitFile} from '../condor/index.js'
import {userError} from '../errors.js'
import {classadString, condorValue} from '../quote.js'

export interface SubmitToAnnexResult {
  annexName: string
  clusterId: number
  jobs: number
}

/** Submits a job file whose jobs may run only on the annex (MY.TargetAnnexName). */
export async function submitToAnnex(options: {file: string; annexName: string}): Promise<SubmitToAnnexResult> {
  const annexName = checkAnnexName(options.annexName)
  if (!existsSync(options.file) || !statSync(options.file).isFile()) {
    throw userError(`The submit file '${options.file}' does not exist; check FILE.`)
  }
  const config = await readAnnexConfig()
  requireAnnexEnabled(config)
  const {clusterId, jobs} = await submitFile(options.file, [`MY.TargetAnnexName = ${condorValue(classadString(annexName))}`])
  return {annexName, clusterId, jobs}
}
