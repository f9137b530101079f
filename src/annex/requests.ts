import {loadCatalog, type Catalog} from '../catalog/index.js'
import {checkAnnexName} from '../catalog/request.js'
import {adNumber, adString, adValue, loginOverrides, queryJobs, type Ad} from '../condor/index.js'
import {oneLine, userError} from '../errors.js'
import {classadString} from '../quote.js'
import type {Interaction, LoginTarget, Transport} from '../ssh/transport.js'
import {requestState, type RequestState} from './status.js'
import {loginTarget} from './login-target.js'

/** One create/add of an annex, as its state job tells it. */
export interface AnnexRequest {
  /** The state job's GlobalJobID (hpc_annex_request_id); the batch job's name carries it. */
  requestId: string
  /** The state job, `<cluster>.<proc>`. */
  jobId: string
  state: RequestState
  /** The system's key (hpc_annex_system); undefined for requests made by another tool. */
  system?: string
  loginHost?: string
  loginUser?: string
  pilotDir?: string
  batchJobId?: string
  startTime?: number
}

export const REQUEST_ATTRIBUTES = [
  'ClusterId', 'ProcId', 'JobStatus', 'GlobalJobID', 'hpc_annex_name', 'hpc_annex_system', 'hpc_annex_login_host', 'hpc_annex_login_user',
  'hpc_annex_PID', 'hpc_annex_PILOT_DIR', 'hpc_annex_JOB_ID', 'hpc_annex_start_time',
]

function fromAd(ad: Ad): AnnexRequest {
  const jobId = `${String(adValue(ad, 'ClusterId'))}.${String(adValue(ad, 'ProcId') ?? 0)}`
  const optional = (key: keyof AnnexRequest, attribute: string) => {
    const value = adString(ad, attribute)
    return value === undefined || value === '' ? {} : {[key]: value}
  }
  const start = adNumber(ad, 'hpc_annex_start_time')
  return {
    requestId: adString(ad, 'GlobalJobID') ?? jobId,
    jobId,
    state: requestState(ad),
    ...optional('system', 'hpc_annex_system'),
    ...optional('loginHost', 'hpc_annex_login_host'),
    ...optional('loginUser', 'hpc_annex_login_user'),
    ...optional('pilotDir', 'hpc_annex_PILOT_DIR'),
    ...optional('batchJobId', 'hpc_annex_JOB_ID'),
    ...(start === undefined ? {} : {startTime: start}),
  }
}

/**
 * The annex's requests (state jobs in the user's schedd), oldest first; with
 * `only`, the one whose request id (GlobalJobID) or state job id (cluster or
 * cluster.proc) it is.
 */
export async function findRequests(name: string, only?: string): Promise<AnnexRequest[]> {
  checkAnnexName(name)
  const byJobId = only !== undefined && /^\d+(\.\d+)?$/.test(only)
  let constraint = `hpc_annex_name == ${classadString(name)}`
  if (only !== undefined && !byJobId) {
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (/[\u0000-\u001f\u007f]/.test(only)) throw userError('--request holds a control character; give a request id or a state job id.')
    constraint += ` && GlobalJobID == ${classadString(only)}`
  }
  const ads = await queryJobs({constraint, attributes: REQUEST_ATTRIBUTES, ...(byJobId ? {ids: [only]} : {})})
  // ClassAd == on strings ignores case; the annex name does not.
  const requests = ads.filter((ad) => adString(ad, 'hpc_annex_name') === name).map(fromAd)
  requests.sort((a, b) => compareJobIds(a.jobId, b.jobId))
  if (only !== undefined && requests.length === 0) {
    throw userError(`Annex '${name}' has no request '${oneLine(only)}' in the queue; change --request (hpc-annex status ${name} --json lists them).`)
  }
  return requests
}

function compareJobIds(a: string, b: string): number {
  const [ac = 0, ap = 0] = a.split('.').map(Number)
  const [bc = 0, bp = 0] = b.split('.').map(Number)
  return ac - bc || ap - bp
}

/** Where requests went: one login serves every request of a group. */
export interface LoginGroup {
  system: string
  batch: 'slurm' | 'htcondor'
  target: LoginTarget
  requests: AnnexRequest[]
}

export interface Grouped {
  groups: LoginGroup[]
  /** Requests hpc-annex cannot log in for, with why (one line each). */
  unreachable: {request: AnnexRequest; reason: string}[]
}

/**
 * Groups requests by login target (system, login host, user), as create
 * logged in: the host and user the state job recorded, else the admin's
 * per-system overrides and the machine's host.
 */
export async function groupByLogin(requests: AnnexRequest[], options: {catalog?: Catalog; sshConfigFile?: string; controlDir?: string} = {}): Promise<Grouped> {
  const catalog = options.catalog ?? loadCatalog()
  const groups = new Map<string, LoginGroup>()
  const unreachable: Grouped['unreachable'] = []
  const overrides = new Map<string, Awaited<ReturnType<typeof loginOverrides>>>()
  for (const request of requests) {
    if (request.system === undefined) {
      unreachable.push({request, reason: 'its state job does not say which system it went to (was it made by another tool?)'})
      continue
    }
    const machine = catalog.systems.get(request.system)
    if (machine === undefined) {
      unreachable.push({request, reason: `its system '${request.system}' is not among the known systems (hpc-annex systems lists them)`})
      continue
    }
    if (!overrides.has(machine.key)) overrides.set(machine.key, await loginOverrides(machine.key))
    const admin = overrides.get(machine.key)!
    const recorded = {...(request.loginHost === undefined ? {} : {host: request.loginHost}), ...(request.loginUser === undefined ? {} : {user: request.loginUser})}
    const flags = options.controlDir === undefined ? {} : {controlDir: options.controlDir}
    const target = loginTarget(machine.host, {flags, recorded, overrides: admin}, options.sshConfigFile)
    const key = JSON.stringify([machine.key, target.host, target.user ?? null])
    let group = groups.get(key)
    if (group === undefined) {
      group = {system: machine.key, batch: machine.batch, target, requests: []}
      groups.set(key, group)
    }
    group.requests.push(request)
  }
  return {groups: [...groups.values()], unreachable}
}

export function describeTarget(target: LoginTarget): string {
  return `${target.user === undefined ? '' : `${target.user}@`}${target.host}`
}

/** How to log in: a fresh transport per target, and who answers its questions. */
export interface LoginOptions {
  open: (group: LoginGroup) => Transport
  /** Who answers the login node's questions (2FA) for this group's login. */
  interaction: (group: LoginGroup) => Interaction
  /** An ssh_config file to resolve login hosts with (HPC_ANNEX_SSH_CONFIG). */
  sshConfigFile?: string
  /** --tmp_dir: the directory of the SSH control sockets. */
  controlDir?: string
}

/** The parts of LoginOptions groupByLogin takes. */
export function loginSources(login: LoginOptions): {sshConfigFile?: string; controlDir?: string} {
  return {
    ...(login.sshConfigFile === undefined ? {} : {sshConfigFile: login.sshConfigFile}),
    ...(login.controlDir === undefined ? {} : {controlDir: login.controlDir}),
  }
}

export type Login = {group: LoginGroup; transport: Transport} | {group: LoginGroup; error: string}

/**
 * Logs in once per group, one after another (so 2FA prompts never overlap).
 * A login that fails is reported, not thrown: the other groups go on.
 */
export async function openLogins(groups: LoginGroup[], options: LoginOptions): Promise<Login[]> {
  const logins: Login[] = []
  for (const group of groups) {
    let transport: Transport | undefined
    try {
      transport = options.open(group)
      const interaction = options.interaction(group)
      interaction.progress?.(`Logging in to ${describeTarget(group.target)} ...`)
      await transport.connect(group.target, interaction)
      logins.push({group, transport})
    } catch (error) {
      await transport?.close().catch(() => undefined)
      logins.push({group, error: `cannot log in to ${describeTarget(group.target)}: ${oneLine(error instanceof Error ? error.message : String(error))}`})
    }
  }
  return logins
}

export async function closeLogins(logins: Login[]): Promise<void> {
  await Promise.all(logins.map((login) => ('transport' in login ? login.transport.close().catch(() => undefined) : undefined)))
}

/** Text as a sentence: a full stop unless it ends with one. */
export function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`
}

export {lastLine} from '../errors.js'
