import {existsSync} from 'node:fs'

import {systemError} from '../errors.js'
import {runTool, toolFailure} from './runner.js'

export interface OffRequest {
  annexName: string
  /** The annex collector. */
  pool: string
  /** ANNEX_PASSWORD_FILE: pilots accept the PASSWORD identity for administration. */
  passwordFile: string
}

/**
 * Tells every master of the annex to shut down fast (condor_off -fast
 * -annex-name), authenticating with the annex password; returns the names of
 * the masters that were told.
 */
export async function annexOff(request: OffRequest): Promise<string[]> {
  if (!existsSync(request.passwordFile)) {
    throw systemError(`The annex password file ${request.passwordFile} does not exist, so the annex's pilots cannot be told to shut down from here.`)
  }
  const result = await runTool('condor_off', ['-fast', '-annex-name', request.annexName, '-pool', request.pool], {
    env: {
      _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS: 'FS IDTOKENS PASSWORD',
      _CONDOR_SEC_PASSWORD_FILE: request.passwordFile,
    },
    okExitCodes: [1],
  })
  const {stdout, stderr, exitCode} = result
  if (exitCode === 1) {
    // The masters left between the caller's query and this one: nobody to tell.
    if (/^Found no ClassAds when querying pool/m.test(stderr)) return []
    throw toolFailure('condor_off', result)
  }
  const told: string[] = []
  for (const line of stdout.split('\n')) {
    const m = /^Sent "Kill-Daemon-Fast" command for "master" to master (.+)$/.exec(line.trim())
    if (m) told.push(m[1]!)
  }
  return told
}
