import {checkAttributeName, parseAds, type Ad} from './classad.js'
import {runTool} from './runner.js'

/**
 * Which ads: 'slot' is condor_status's default query (machine/slot ads, where
 * partitionable slots carry TotalSlotCpus and ChildCpus); the others are
 * daemon ads (-startd, -master, -schedd).
 */
export type AdKind = 'slot' | 'startd' | 'master' | 'schedd'

const KIND_FLAG: Record<AdKind, string[]> = {slot: [], startd: ['-startd'], master: ['-master'], schedd: ['-schedd']}

export interface CollectorQuery {
  /** The collector to ask (condor_status -pool). */
  pool: string
  kind: AdKind
  /** A ClassAd constraint, built with classadString for every value. */
  constraint?: string
  attributes?: string[]
}

/** Ads from a collector via condor_status -json; none is an empty list. */
export async function queryCollector(query: CollectorQuery): Promise<Ad[]> {
  const args = ['-json', '-pool', query.pool, ...KIND_FLAG[query.kind]]
  if (query.constraint !== undefined) args.push('-constraint', query.constraint)
  if (query.attributes?.length) args.push('-attributes', query.attributes.map(checkAttributeName).join(','))
  const {stdout} = await runTool('condor_status', args)
  return parseAds(stdout, 'condor_status')
}
