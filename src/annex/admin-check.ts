import {lookup} from 'node:dns/promises'
import {statSync} from 'node:fs'
import {isIP} from 'node:net'
import {userInfo} from 'node:os'
import {join} from 'node:path'

import {oneLine, plural} from '../errors.js'
import {collectorEndpoint} from '../render/address.js'
import type {AdminCondor, CondorAd} from './admin-condor.js'
import {DEFAULT_TOKEN_KEY_NAME} from './metaknob.js'

/**
 * ok; missing (users cannot rely on annexes: the check fails); unchecked (could
 * not be verified: by itself it does not fail the check); warning (in place,
 * but likely wrong: by itself it does not fail the check).
 */
export type CheckStatus = 'ok' | 'missing' | 'unchecked' | 'warning'

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
  /** No item is missing (warnings and items that could not be verified aside). */
  ok: boolean
  items: CheckItem[]
}

export type KeyFileState = {state: 'present'} | {state: 'absent'; why: string} | {state: 'unreadable'; why: string}

/** What the check needs from the machine it runs on, besides HTCondor; tests hand in a fake. */
export interface CheckHost {
  /** Every address HOST resolves to here; throws when it does not resolve. */
  addresses(host: string): Promise<string[]>
  /** Whether DIR/NAME is there, as the user running the check can tell. */
  keyFile(dir: string, name: string): KeyFileState
}

const LOOKUP_TIMEOUT_MS = 10_000

function whoami(): string {
  try {
    return userInfo().username
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`
  }
}

/** This machine: its resolver (as HTCondor's, getaddrinfo) and its file system. */
export function systemHost(): CheckHost {
  return {
    async addresses(host) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`no answer within ${LOOKUP_TIMEOUT_MS / 1000} s`)), LOOKUP_TIMEOUT_MS)
      })
      try {
        const found = await Promise.race([lookup(host, {all: true}), timeout])
        return found.map((entry) => entry.address)
      } finally {
        clearTimeout(timer)
      }
    },
    keyFile(dir, name) {
      try {
        const stat = statSync(join(dir, name))
        return stat.isFile() ? {state: 'present'} : {state: 'absent', why: `${join(dir, name)} is not a regular file`}
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EACCES' || code === 'EPERM') return {state: 'unreadable', why: `${dir} cannot be read by ${whoami()}`}
        let dirMissing = false
        try {
          statSync(dir)
        } catch {
          dirMissing = true
        }
        return {state: 'absent', why: dirMissing ? `${dir} does not exist` : `${join(dir, name)} does not exist`}
      }
    },
  }
}

const INSTALL = 'sudo hpc-annex admin metaknob --install, then condor_reconfig'

/** The security levels annex pilots use on the AP: advertising to the annex collector, attaching to the schedd. */
const LEVELS = ['READ', 'WRITE', 'ADVERTISE_STARTD', 'ADVERTISE_MASTER'] as const
const TOKEN_METHODS = new Set(['IDTOKENS', 'IDTOKEN', 'TOKEN', 'TOKENS'])

const CONFIG_NAMES = [
  'HPC_ANNEX_ENABLED',
  'ANNEX_COLLECTOR',
  'ANNEX_TOKEN_KEY_NAME',
  'SEC_TOKEN_AP_SIGNING_KEY_NAME',
  'SEC_PASSWORD_DIRECTORY',
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

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 part included). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, '')
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const before = head === '' ? [] : head.split(':')
  const after = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? before : [...before, ...Array<string>(8 - before.length - after.length).fill('0'), ...after]
  return groups.length === 8 ? groups.map((group) => Number.parseInt(group, 16)) : undefined
}

/** 127.0.0.0/8, ::1, and IPv4 loopback written as IPv6 (::ffff:127.0.0.1). */
export function isLoopback(address: string): boolean {
  if (isIP(address) === 4) return Number(address.split('.')[0]) === 127
  if (isIP(address.replace(/%.*$/, '')) !== 6) return false
  const g = ipv6Groups(address)
  if (g === undefined) return false
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0)
  return (zero(0, 7) && g[7] === 1) || (zero(0, 5) && g[5] === 0xffff && g[6]! >> 8 === 127)
}

const REACH_FIX =
  'set ANNEX_COLLECTOR to a name or address of this AP that the compute nodes can reach, e.g. ANNEX_COLLECTOR = ap.example.org:$(SHARED_PORT_PORT)?sock=ap_collector ' +
  '(or set TCP_FORWARDING_HOST to it: the default ANNEX_COLLECTOR is made from it), then condor_reconfig'

async function addressItem(collector: string | undefined, host: CheckHost): Promise<CheckItem> {
  const id = 'annex-collector-address'
  const title = 'The annex collector\'s host is not a loopback address'
  if (collector === undefined) return missing(id, title, 'not checked: ANNEX_COLLECTOR is not defined', 'define ANNEX_COLLECTOR first', 'unchecked')
  const name = collectorEndpoint(collector)?.host
  if (name === undefined) return missing(id, title, `could not be verified: no host in ANNEX_COLLECTOR = ${collector}`, REACH_FIX, 'unchecked')
  const unreachable = 'pilots on compute nodes elsewhere cannot reach the annex collector there'
  if (isIP(name) !== 0) {
    return isLoopback(name) ? missing(id, title, `${name} is a loopback address: ${unreachable}`, REACH_FIX, 'warning') : ok(id, title, `${name} is not a loopback address`)
  }
  let addresses: string[]
  try {
    addresses = await host.addresses(name)
  } catch (error) {
    return missing(id, title, `could not be verified: ${name} does not resolve here (${errorText(error)})`, REACH_FIX, 'unchecked')
  }
  const loopback = addresses.filter(isLoopback)
  if (loopback.length > 0) {
    return missing(
      id,
      title,
      `${name} resolves to ${loopback.join(', ')} here, a loopback address (an /etc/hosts line such as "${loopback[0]} ${name}"?): ${unreachable}`,
      REACH_FIX,
      'warning',
    )
  }
  return ok(id, title, `${name} resolves to ${addresses.join(', ')}`)
}

/** A key name as a file name in SEC_PASSWORD_DIRECTORY and a condor_token_fetch -key argument. */
const PLAIN_KEY_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/

function keyNameFix(apKey: string | undefined): string {
  const how = apKey === undefined
    ? `ANNEX_TOKEN_KEY_NAME = ${DEFAULT_TOKEN_KEY_NAME} (this HTCondor names no AP signing key)`
    : `ANNEX_TOKEN_KEY_NAME = $(SEC_TOKEN_AP_SIGNING_KEY_NAME) (here ${apKey}, the key the AP collector makes)`
  return `set ${how}, and add it to SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS; or ${INSTALL}`
}

function tokenKeyItem(key: string | undefined, apKey: string | undefined): CheckItem {
  const title = 'A token signing key is named for annexes'
  if (key === undefined) return missing('token-key', title, 'ANNEX_TOKEN_KEY_NAME is not set', keyNameFix(apKey))
  if (!PLAIN_KEY_NAME.test(key)) {
    const why = key.includes('$(')
      ? 'HTCondor left a macro in it unexpanded (it takes a $(NAME:default) default only when that is made of letters, digits and a few others: not "-")'
      : 'condor_token_fetch would look for a file of that name in SEC_PASSWORD_DIRECTORY'
    return missing('token-key', title, `ANNEX_TOKEN_KEY_NAME = ${key} is not a plain key name: ${why}`, keyNameFix(apKey))
  }
  return ok('token-key', title, `ANNEX_TOKEN_KEY_NAME = ${key}`)
}

function signingKeyItem(key: string | undefined, values: Record<string, string | undefined>, collectorAnswers: boolean, host: CheckHost): CheckItem {
  const id = 'signing-key'
  const title = 'The signing key exists'
  if (key === undefined || !PLAIN_KEY_NAME.test(key)) return missing(id, title, 'not checked: no plain key name', 'name the key first', 'unchecked')
  const dir = text(values.SEC_PASSWORD_DIRECTORY)
  if (dir === undefined) {
    return missing(id, title, 'SEC_PASSWORD_DIRECTORY is not defined: the schedd has nowhere to find the key', 'set SEC_PASSWORD_DIRECTORY (e.g. /etc/condor/passwords.d, root-owned, mode 0700), then condor_reconfig')
  }
  const path = join(dir, key)
  const apKey = text(values.SEC_TOKEN_AP_SIGNING_KEY_NAME)
  const found = host.keyFile(dir, key)
  if (found.state === 'present') return ok(id, title, `${path} exists`)
  if (found.state === 'unreadable') {
    return missing(id, title, `could not be verified: ${found.why}`, `run hpc-annex admin check as root (or as the owner of ${dir}) to check that ${key} is there`, 'unchecked')
  }
  if (key === apKey) {
    // HTCondor's AP collector (local name AP_COLLECTOR) makes SEC_PASSWORD_DIRECTORY/$(SEC_TOKEN_AP_SIGNING_KEY_NAME) when it starts or is reconfigured.
    if (!collectorAnswers) return ok(id, title, `not there yet (${found.why}): the AP collector makes it when it starts`)
    return missing(
      id,
      title,
      `${found.why}, though the AP collector, which makes it, answers`,
      `make sure ${dir} exists (owned by root or the pool's user, mode 0700), then condor_reconfig: the AP collector makes ${key} when it starts or is reconfigured; see its log (AP_COLLECTOR_LOG)`,
    )
  }
  return missing(
    id,
    title,
    `${found.why}: condor_token_fetch will fail`,
    `make it once, as root: openssl rand -base64 32 | sudo condor_store_cred add -c -i - -f ${path}` +
      (apKey === undefined ? '' : `; or use the key the AP collector makes: ANNEX_TOKEN_KEY_NAME = $(SEC_TOKEN_AP_SIGNING_KEY_NAME) (here ${apKey})`),
  )
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
export async function checkAp(condor: AdminCondor, host: CheckHost = systemHost()): Promise<CheckReport> {
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
  const [address, collectorChecks] = await Promise.all([addressItem(collector, host), collectorItems(condor, collector)])
  items.push(address, ...collectorChecks)
  const collectorAnswers = collectorChecks.some((item) => item.id === 'annex-collector-reachable' && item.status === 'ok')

  const key = text(values.ANNEX_TOKEN_KEY_NAME)
  items.push(tokenKeyItem(key, text(values.SEC_TOKEN_AP_SIGNING_KEY_NAME)))
  items.push(signingKeyItem(key, values, collectorAnswers, host))
  const domain = text(values.ANNEX_TOKEN_DOMAIN)
  const domainTitle = 'Pilots\' identities have a domain'
  items.push(
    domain === undefined
      ? missing('token-domain', domainTitle, 'ANNEX_TOKEN_DOMAIN is not set', `set ANNEX_TOKEN_DOMAIN = $(UID_DOMAIN); or ${INSTALL}`)
      : ok('token-domain', domainTitle, `ANNEX_TOKEN_DOMAIN = ${domain}`),
  )

  items.push(transformItem(values, bodies))
  items.push(idtokensItem(values))
  return {ok: items.every((item) => item.status !== 'missing'), items}
}

/** The report as an administrator reads it. */
export function formatReport(report: CheckReport): string {
  const width = Math.max(...report.items.map((item) => item.title.length))
  const mark: Record<CheckStatus, string> = {ok: 'ok     ', missing: 'MISSING', unchecked: '?      ', warning: 'WARNING'}
  const lines: string[] = []
  for (const item of report.items) {
    lines.push(`${mark[item.status]}  ${item.title.padEnd(width)}  ${item.detail}`)
    if (item.fix !== undefined) lines.push(`${' '.repeat(9)}Fix: ${item.fix}`)
  }
  const count = (status: CheckStatus) => report.items.filter((item) => item.status === status).length
  const [missingCount, unchecked, warnings] = [count('missing'), count('unchecked'), count('warning')]
  const total = report.items.length
  const warned = warnings === 0 ? '' : ` (and ${plural(warnings, 'warning', 'warnings')})`
  lines.push('')
  if (missingCount > 0) {
    lines.push(`${missingCount + unchecked} of ${total} items are not in place${warned}; users cannot rely on annexes until they are.`)
  } else if (unchecked + warnings === 0) {
    lines.push(`All ${total} items are in place: users of this AP can create annexes.`)
  } else {
    const parts = [
      ...(unchecked > 0 ? [`${plural(unchecked, 'item', 'items')} could not be verified (?)`] : []),
      ...(warnings > 0 ? [plural(warnings, 'warning', 'warnings')] : []),
    ]
    lines.push(`None of the ${total} items is missing, but ${parts.join(' and ')}: read ${unchecked + warnings === 1 ? 'it' : 'them'} above before users rely on annexes.`)
  }
  return lines.join('\n')
}
