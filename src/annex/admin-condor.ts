import {configTemplate, configValues, queryCollector} from '../condor/index.js'

/**
 * What the AP administrator's commands need from the AP's HTCondor. The
 * commands get it from src/condor; tests hand in a fake. Kept this small so
 * that the admin logic never runs a tool itself.
 */
export type CondorAd = Record<string, unknown>

export interface AdminCondor {
  /** condor_config_val NAME...: each name's value, or undefined when it is not defined. */
  configValues(names: string[]): Promise<Record<string, string | undefined>>
  /** The body of `use CATEGORY:NAME` in this HTCondor (condor_config_val use ...), or undefined when it has none. */
  configTemplate(category: string, name: string): Promise<string | undefined>
  /** condor_status -pool POOL -schedd: the schedd ads there; throws when the collector does not answer. */
  scheddAds(pool: string): Promise<CondorAd[]>
}

/** The AP's HTCondor as the admin commands use it: the condor_* tools, run through src/condor. */
export function apCondor(): AdminCondor {
  return {
    configValues,
    configTemplate,
    scheddAds: (pool) => queryCollector({pool, kind: 'schedd', attributes: ['Name', 'MyAddress']}),
  }
}
