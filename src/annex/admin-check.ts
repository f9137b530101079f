import {oneLine} from '../errors.js'
import type {AdminCondor, CondorAd} from './admin-condor.js'
import {DEFAULT_TOKEN_KEY_NAME} from './metaknob.js'

export type CheckStatus = 'ok' | 'missing' | 'unchecked'

export interface CheckItem {
  id: string
  title: string
  status: CheckStatus
  /** What was found. */
  detail: string
  /** What the administrator should do, when the item is not ok. */
  fix?: string
}

export interface CheckReport {
  ok: boolean
  items: CheckItem[]
}

const INSTALL = 'sudo hpc-annex admin metaknob --install, then condor_reconfig'

/** The security levels annex pilots use on the AP: advertising to the annex collector, attaching to the schedd. */
const LEVELS = ['READ', 'WRITE', 'ADVERTISE_STARTD', 'ADVERTISE_MASTER'] as const
const TOKEN_METHODS = new Set(['IDTOKENS', 'IDTOKEN', 'TOKEN', 'TOKENS'])

const CONFIG_NAMES = [
  'HPC_ANNEX_ENABLED',
  'ANNEX_COLLECTOR',
  'ANNEX_TOKEN_KEY_NAME',
  'ANNEX_TOKEN_DOMAIN',
  'ANNEX_JOBS_EXCLUSIVELY',
  'JOB_TRANSFORM_NAMES',
  'SEC_DEFAULT_AUTHENTICATION_METHODS',
  ...LEVELS.map((level) => `SEC_${level}_AUTHENTICATION_METHODS`),
]

function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^\s*(true|t|yes|y|1)\s*$/i.test(value)
}

function text(value: string | undefined): string | undefined {
  const trimmed = value?.trim()
  return trimmed === undefined || trimmed === '' ? undefined : trimmed
}

function list(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter(Boolean)
}

function ok(id: string, title: string, detail: string): CheckItem {
  return {id, title, status: 'ok', detail}
}

function missing(id: string, title: string, detail: string, fix: string, status: CheckStatus = 'missing'): CheckItem {
  return {id, title, status, detail, fix}
}

function adName(ad: CondorAd): string {
  const key = Object.keys(ad).find((k) => k.toLowerCase() === 'name')
  return key !== undefined && typeof ad[key] === 'string' ? (ad[key] as string) : '(no name)'
}

function errorText(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error))
}

async function collectorItems(condor: AdminCondor, collector: string | undefined): Promise<CheckItem[]> {
  const reachTitle = 'The annex collector answers'
  const scheddTitle = 'Exactly one schedd reports to the annex collector'
  if (collector === undefined) {
    const why = 'not checked: ANNEX_COLLECTOR is not defined'
    return [
      missing('annex-collector-reachable', reachTitle, why, 'define ANNEX_COLLECTOR first', 'unchecked'),
      missing('one-schedd', scheddTitle, why, 'define ANNEX_COLLECTOR first', 'unchecked'),
    ]
  }
  // One query answers both: a collector that answers at all, and the schedds it knows.
  let schedds: CondorAd[]
  try {
    schedds = await condor.scheddAds(collector)
  } catch (error) {
    return [
      missing(
        'annex-collector-reachable',
        reachTitle,
        `condor_status -pool '${collector}' -schedd failed: ${errorText(error)}`,
        'run the AP collector: AP_COLLECTOR must be in DAEMON_LIST (condor_config_val DAEMON_LIST); after changing it run condor_reconfig, and see the log named by AP_COLLECTOR_LOG',
      ),
      missing('one-schedd', scheddTitle, 'not checked: the annex collector did not answer', 'make the annex collector answer first', 'unchecked'),
    ]
  }
  const reachable = ok('annex-collector-reachable', reachTitle, `${collector} answers`)
  if (schedds.length === 1) return [reachable, ok('one-schedd', scheddTitle, `${adName(schedds[0]!)} reports there`)]
  if (schedds.length === 0) {
    return [
      reachable,
      missing(
        'one-schedd',
        scheddTitle,
        'no schedd ad: pilots cannot find the schedd to attach to',
        'have the schedd report there too: SCHEDD.COLLECTOR_HOST = $(COLLECTOR_HOST), $(ANNEX_COLLECTOR), then condor_reconfig (the first update may take a few minutes)',
      ),
    ]
  }
  return [
    reachable,
    missing(
      'one-schedd',
      scheddTitle,
      `${schedds.length} schedd ads (${schedds.map(adName).join(', ')}): pilots cannot tell which schedd to attach to`,
      'only this AP\'s schedd may report to its annex collector: remove ANNEX_COLLECTOR from the other schedds\' COLLECTOR_HOST',
    ),
  ]
}

function transformItem(values: Record<string, string | undefined>, bodies: Record<string, string | undefined>): CheckItem {
  const title = 'The job transforms that route annex jobs are on'
  const wanted = ['AssignAnnex', ...(isTrue(values.ANNEX_JOBS_EXCLUSIVELY) ? ['AnnexJobsExclusively'] : [])]
  const names = list(values.JOB_TRANSFORM_NAMES).map((n) => n.toLowerCase())
  const absent = wanted.filter((name) => !names.includes(name.toLowerCase()))
  const undefinedBodies = wanted.filter((name) => text(bodies[`JOB_TRANSFORM_${name}`]) === undefined)
  if (absent.length === 0 && undefinedBodies.length === 0) return ok('transforms', title, `JOB_TRANSFORM_NAMES has ${wanted.join(' and ')}`)
  const problems = [
    ...(absent.length ? [`JOB_TRANSFORM_NAMES lacks ${absent.join(' and ')}`] : []),
    ...(undefinedBodies.length ? [`${undefinedBodies.map((n) => `JOB_TRANSFORM_${n}`).join(' and ')} not defined`] : []),
  ]
  return missing(
    'transforms',
    title,
    problems.join('; '),
    `add them (hpc-annex admin metaknob shows their definitions): JOB_TRANSFORM_NAMES = $(JOB_TRANSFORM_NAMES) ${absent.join(' ') || wanted.join(' ')}; or ${INSTALL}`,
  )
}

function idtokensItem(values: Record<string, string | undefined>): CheckItem {
  const title = 'Pilots may authenticate with tokens (IDTOKENS)'
  const lacking: string[] = []
  for (const level of LEVELS) {
    const name = text(values[`SEC_${level}_AUTHENTICATION_METHODS`]) === undefined ? 'SEC_DEFAULT_AUTHENTICATION_METHODS' : `SEC_${level}_AUTHENTICATION_METHODS`
    const methods = values[name]
    // Not defined at all: HTCondor's built-in list, which has IDTOKENS.
    if (text(methods) !== undefined && !list(methods).some((m) => TOKEN_METHODS.has(m.toUpperCase()))) {
      if (!lacking.includes(name)) lacking.push(name)
    }
  }
  if (lacking.length === 0) return ok('idtokens', title, `IDTOKENS is allowed for ${LEVELS.join(', ')}`)
  return missing(
    'idtokens',
    title,
    `${lacking.map((name) => `${name} = ${values[name]}`).join('; ')}: no IDTOKENS`,
    lacking.map((name) => `${name} = $(${name}), IDTOKENS`).join('; ') + ', then condor_reconfig',
  )
}

/** Reads the AP's live configuration and collector and reports, item by item, what an annex needs. */
export async function checkAp(condor: AdminCondor): Promise<CheckReport> {
  const values = await condor.configValues(CONFIG_NAMES)
  // Multi-line values are asked one at a time: condor_config_val prints them over several lines.
  const bodies: Record<string, string | undefined> = {}
  for (const name of ['JOB_TRANSFORM_AssignAnnex', 'JOB_TRANSFORM_AnnexJobsExclusively']) {
    Object.assign(bodies, await condor.configValues([name]))
  }

  const items: CheckItem[] = []
  const enabledTitle = 'HPC annexes are enabled'
  items.push(
    isTrue(values.HPC_ANNEX_ENABLED)
      ? ok('enabled', enabledTitle, `HPC_ANNEX_ENABLED = ${values.HPC_ANNEX_ENABLED}`)
      : missing('enabled', enabledTitle, `HPC_ANNEX_ENABLED is ${values.HPC_ANNEX_ENABLED === undefined ? 'not defined' : `${values.HPC_ANNEX_ENABLED}`}`, `${INSTALL}; or set HPC_ANNEX_ENABLED = true`),
  )

  const collector = text(values.ANNEX_COLLECTOR)
  const collectorTitle = 'The annex collector is defined'
  items.push(
    collector === undefined
      ? missing('annex-collector', collectorTitle, 'ANNEX_COLLECTOR is not defined', `${INSTALL}; it runs an AP collector and sets ANNEX_COLLECTOR = $(FULL_HOSTNAME):$(SHARED_PORT_PORT)?sock=ap_collector`)
      : ok('annex-collector', collectorTitle, `ANNEX_COLLECTOR = ${collector}`),
  )
  items.push(...(await collectorItems(condor, collector)))

  const key = text(values.ANNEX_TOKEN_KEY_NAME)
  const keyTitle = 'A token signing key is named for annexes'
  items.push(
    key === undefined
      ? missing(
          'token-key',
          keyTitle,
          'ANNEX_TOKEN_KEY_NAME is not set',
          `set ANNEX_TOKEN_KEY_NAME = $(SEC_TOKEN_AP_SIGNING_KEY_NAME:${DEFAULT_TOKEN_KEY_NAME}), add it to SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS, and make sure a key file of that name exists in SEC_PASSWORD_DIRECTORY; or ${INSTALL}`,
        )
      : ok('token-key', keyTitle, `ANNEX_TOKEN_KEY_NAME = ${key}`),
  )
  const domain = text(values.ANNEX_TOKEN_DOMAIN)
  const domainTitle = 'Pilots\' identities have a domain'
  items.push(
    domain === undefined
      ? missing('token-domain', domainTitle, 'ANNEX_TOKEN_DOMAIN is not set', `set ANNEX_TOKEN_DOMAIN = $(UID_DOMAIN); or ${INSTALL}`)
      : ok('token-domain', domainTitle, `ANNEX_TOKEN_DOMAIN = ${domain}`),
  )

  items.push(transformItem(values, bodies))
  items.push(idtokensItem(values))
  return {ok: items.every((item) => item.status === 'ok'), items}
}

/** The report as an administrator reads it. */
export function formatReport(report: CheckReport): string {
  const width = Math.max(...report.items.map((item) => item.title.length))
  const mark = {ok: 'ok     ', missing: 'MISSING', unchecked: '?      '}
  const lines: string[] = []
  for (const item of report.items) {
    lines.push(`${mark[item.status]}  ${item.title.padEnd(width)}  ${item.detail}`)
    if (item.fix !== undefined) lines.push(`${' '.repeat(9)}Fix: ${item.fix}`)
  }
  const bad = report.items.filter((item) => item.status !== 'ok').length
  lines.push('')
  lines.push(
    bad === 0
      ? `All ${report.items.length} items are in place: users of this AP can create annexes.`
      : `${bad} of ${report.items.length} items are not in place; users cannot rely on annexes until they are.`,
  )
  return lines.join('\n')
}
