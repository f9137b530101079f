/**
 * Where the real condor_token_fetch writes, so that hpc-annex finds the
 * token it minted: run as root on an Access Point whose configuration sets
 * no SEC_TOKEN_DIRECTORY, HTCondor 25 writes into SEC_TOKEN_SYSTEM_DIRECTORY
 * (a user's goes to ~/.condor/tokens.d).
 */
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {fetchToken, readAnnexConfig, tokenDomain} from '../../src/condor/index.js'
import {apToolEnv} from '../site/htcondor.js'
import {describeOnRealHTCondor, realAccessPoint} from '../site/helpers.js'

describeOnRealHTCondor('the annex token, fetched as root', () => {
  let dir: string
  const saved = {...process.env}
  beforeAll(() => {
    const ap = realAccessPoint()!
    dir = mkdtempSync(join(ap.dir, 'root-token-'))
    // The Access Point's configuration without its SEC_TOKEN_DIRECTORY.
    const config = join(dir, 'condor_config')
    writeFileSync(config, readFileSync(ap.configFile, 'utf8').replace(/^SEC_TOKEN_DIRECTORY\b.*$/m, ''))
    mkdirSync(join(dir, 'system-tokens.d'), {mode: 0o700})
    const env = apToolEnv(ap)
    Object.assign(process.env, {
      PATH: env.PATH,
      CONDOR_CONFIG: config,
      // Root's tools need to know which account the daemons run as.
      _CONDOR_CONDOR_IDS: `${ap.uid}.${ap.gid}`,
      _CONDOR_SEC_TOKEN_SYSTEM_DIRECTORY: join(dir, 'system-tokens.d'),
    })
  })
  afterAll(() => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name]
    Object.assign(process.env, saved)
    rmSync(dir, {recursive: true, force: true})
  })

  it('is found where the real tool wrote it, and removed', async () => {
    const config = await readAnnexConfig()
    expect(config.tokenDirectory).toBe(join(dir, 'system-tokens.d'))
    const token = await fetchToken({
      type: 'roottest', user: 'root', domain: tokenDomain(config), keyName: config.tokenKeyName,
      lifetime: 60, directory: config.tokenDirectory, timeout: 30,
    })
    expect(readdirSync(config.tokenDirectory)).toEqual([token.name])
    token.remove()
    expect(readdirSync(config.tokenDirectory)).toEqual([])
  })
})
