import {checkAnnexName} from '../catalog/request.js'
import {adString, annexCollector, annexOff, queryCollector, readAnnexConfig, requireAnnexEnabled, tokenDomain, withToken} from '../condor/index.js'
import {classadString} from '../render/quote.js'
import {currentUser} from './user.js'

export interface ShutdownResult {
  annexName: string
  /** Master ads of the annex found in the annex collector. */
  found: number
  /** Names of the masters told to shut down fast. */
  told: string[]
}

/**
 * Tells every pilot (master) of the annex to shut down fast. Requests whose
 * pilots have not joined yet are not touched.
 */
export async function shutdownAnnex(options: {name: string; pool?: string}): Promise<ShutdownResult> {
  const annexName = checkAnnexName(options.name)
  const config = await readAnnexConfig()
  requireAnnexEnabled(config)
  const collector = annexCollector(config, options.pool)
  const token = {
    type: 'shutdown', user: currentUser(), domain: tokenDomain(config), keyName: config.tokenKeyName,
    lifetime: config.tokenLifetime, directory: config.tokenDirectory, timeout: config.timeouts.tokenFetch,
  }
  return withToken(token, async () => {
    const masters = await queryCollector({pool: collector, kind: 'master', constraint: `AnnexName =?= ${classadString(annexName)}`, attributes: ['Name', 'AnnexName', 'MyAddress']})
    const mine = masters.filter((ad) => adString(ad, 'AnnexName') === annexName)
    if (mine.length === 0) return {annexName, found: 0, told: []}
    const told = await annexOff({annexName, pool: collector, passwordFile: config.passwordFile})
    return {annexName, found: mine.length, told}
  })
}

export function formatShutdown(result: ShutdownResult): string {
  if (result.found === 0) return `No resources found in annex '${result.annexName}'.`
  const n = result.told.length
  return [
    `Shutting down annex '${result.annexName}': told ${n} of ${result.found} resource${result.found === 1 ? '' : 's'} to shut down${n ? ` (${result.told.join(', ')})` : ''}.`,
    'It may take some time for each resource to finish shutting down.',
    'Annex requests that are still in progress have not been affected.',
  ].join('\n')
}
