import {checkAnnexName} from '../catalog/request.js'
import {adString, annexCollector, annexOff, queryCollector, readAnnexConfig, removeJobs, requireAnnexEnabled, tokenDomain, withToken, type Ad} from '../condor/index.js'
import {oneLine, systemError} from '../errors.js'
import {batchSystem} from '../batch/index.js'
import {classadString} from '../quote.js'
import {removePilotDirLines} from '../backend/pilot-dir.js'
import type {Transport} from '../ssh/transport.js'
import {closeLogins, describeTarget, sentence, findRequests, groupByLogin, lastLine, loginSources, openLogins, type AnnexRequest, type LoginGroup, type LoginOptions} from './requests.js'
import {currentUser} from './user.js'
import {sweepOrphanedRequests} from './orphans.js'

/** What --cancel-pending did for one request whose pilots had not joined. */
export interface CancelReport {
  requestId: string
  /** The request's state job. */
  stateJobId: string
  system?: string
  loginHost?: string
  /**
   * cancelled: its batch job(s) were cancelled; not-queued: the batch system
   * had none (never submitted, or already ended); unreachable: no login for
   * it; failed: the login or the cancel failed.
   */
  outcome: 'cancelled' | 'not-queued' | 'unreachable' | 'failed'
  /** Batch job ids cancelled. */
  batchJobs: string[]
  /** Why, for unreachable and failed. */
  detail?: string
  /** Its pilot directory, left behind by a job cancelled before it ran, was removed. */
  pilotDirRemoved?: boolean
  /** The state job was removed (after a cancel, or when nothing was queued). */
  stateJobRemoved: boolean
}

export interface ShutdownResult {
  annexName: string
  /** Master ads of the annex found in the annex collector. */
  found: number
  /** Names of the masters told to shut down fast. */
  told: string[]
  /** With --cancel-pending: one entry per request whose pilots had not joined. */
  pending?: CancelReport[]
  /** What was done first on the user's behalf (state jobs that killed runs left were removed). */
  notices?: string[]
}

export interface ShutdownOptions {
  name: string
  pool?: string
  /** Also log in and cancel the batch jobs of requests that have not joined. */
  cancelPending?: LoginOptions & {sshConfigFile?: string}
  /** Seconds to wait for the master ads of pilots whose slots have joined (default MASTER_AD_WAIT). */
  masterWait?: number
}

/**
 * A pilot's startd advertises within a second of starting, its master some
 * seconds later: a shutdown right after the pilots joined would find no master
 * to tell, and leave them running. Wait this long for them.
 */
export const MASTER_AD_WAIT = 30

/** The annex's master ads, once every machine whose slot has joined has its master there too (or `wait` seconds passed). */
async function annexMasters(annexName: string, collector: string, wait: number): Promise<Ad[]> {
  const constraint = `AnnexName =?= ${classadString(annexName)}`
  const attributes = ['Name', 'Machine', 'AnnexName', 'hpc_annex_request_id']
  const pilot = (ad: Ad) => `${adString(ad, 'hpc_annex_request_id') ?? ''} ${adString(ad, 'Machine') ?? ''}`
  const deadline = Date.now() + wait * 1000
  for (;;) {
    const [masters, slots] = await Promise.all([
      queryCollector({pool: collector, kind: 'master', constraint, attributes}),
      queryCollector({pool: collector, kind: 'slot', constraint, attributes}),
    ])
    const mine = masters.filter((ad) => adString(ad, 'AnnexName') === annexName)
    const told = new Set(mine.map(pilot))
    const waiting = slots.filter((ad) => adString(ad, 'AnnexName') === annexName && !told.has(pilot(ad)))
    if (waiting.length === 0 || Date.now() >= deadline) return mine
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}

/**
 * Tells every pilot (master) of the annex to shut down fast. With
 * cancelPending, then logs in (once per login target) and cancels the batch
 * jobs of the requests whose pilots have not joined, found by the request id
 * their job name carries, and removes those requests' state jobs.
 */
export async function shutdownAnnex(options: ShutdownOptions): Promise<ShutdownResult> {
  const annexName = checkAnnexName(options.name)
  const config = await readAnnexConfig()
  requireAnnexEnabled(config)
  const collector = annexCollector(config, options.pool)
  const swept = await sweepOrphanedRequests()
  const token = {
    type: 'shutdown', user: currentUser(), domain: tokenDomain(config), keyName: config.tokenKeyName,
    lifetime: config.tokenLifetime, directory: config.tokenDirectory, timeout: config.timeouts.tokenFetch,
  }
  const off = await withToken(token, async () => {
    const mine = await annexMasters(annexName, collector, options.masterWait ?? MASTER_AD_WAIT)
    const joined = new Set(mine.map((ad) => adString(ad, 'hpc_annex_request_id')).filter((id) => id !== undefined))
    if (mine.length === 0) return {found: 0, told: [], joined}
    const told = await annexOff({annexName, pool: collector, passwordFile: config.passwordFile})
    return {found: mine.length, told, joined}
  })
  const result: ShutdownResult = {annexName, found: off.found, told: off.told, ...(swept === undefined ? {} : {notices: [swept]})}
  if (options.cancelPending === undefined) return result

  // Pending: no pilot in the collector, and never granted (a granted request's pilots have come and gone).
  const requests = await findRequests(annexName)
  const pending = requests.filter((r) => !off.joined.has(r.requestId) && r.startTime === undefined)
  result.pending = await cancelRequests(annexName, pending, options.cancelPending)
  return result
}

/** Logs in once per target and cancels each request's batch job there; removes the state jobs of those it settled. */
export async function cancelRequests(annexName: string, requests: AnnexRequest[], login: LoginOptions & {sshConfigFile?: string}): Promise<CancelReport[]> {
  if (requests.length === 0) return []
  const {groups, unreachable} = await groupByLogin(requests, loginSources(login))
  const reports = new Map<string, CancelReport>()
  const base = (request: AnnexRequest) => ({
    requestId: request.requestId,
    stateJobId: request.jobId,
    ...(request.system === undefined ? {} : {system: request.system}),
    batchJobs: [] as string[],
    stateJobRemoved: false,
  })
  for (const {request, reason} of unreachable) reports.set(request.requestId, {...base(request), outcome: 'unreachable', detail: reason})

  const logins = await openLogins(groups, login)
  try {
    for (const entry of logins) {
      const host = describeTarget(entry.group.target)
      for (const request of entry.group.requests) {
        const report: CancelReport = {...base(request), loginHost: host, outcome: 'failed'}
        reports.set(request.requestId, report)
        if ('error' in entry) {
          report.detail = entry.error
          continue
        }
        try {
          const done = await cancelOne(entry.transport, entry.group, annexName, request)
          report.batchJobs = done.ids
          if (done.removed) report.pilotDirRemoved = true
          report.outcome = report.batchJobs.length > 0 ? 'cancelled' : 'not-queued'
        } catch (error) {
          report.detail = oneLine(error instanceof Error ? error.message : String(error))
        }
      }
    }
  } finally {
    await closeLogins(logins)
  }

  for (const request of requests) {
    const report = reports.get(request.requestId)!
    if (report.outcome !== 'cancelled' && report.outcome !== 'not-queued') continue
    const what = report.outcome === 'cancelled'
      ? `cancelled batch job ${report.batchJobs.join(', ')} on ${report.loginHost}`
      : `no batch job of it was queued on ${report.loginHost}`
    await removeJobs(request.jobId, `hpc-annex shutdown --cancel-pending: ${what}`)
    report.stateJobRemoved = true
  }
  return requests.map((request) => reports.get(request.requestId)!)
}

/**
 * The command that cancels a request's batch job on the login node, found by
 * the request id (never by a job id the state job may not have learned).
 * Prints `cancelled <job id>` for each job it cancelled; a job cancelled
 * before it ran never removes its pilot directory (and the secrets in it):
 * that goes too.
 */
export function cancelCommand(kind: LoginGroup['batch'], annexName: string, requestId: string, pilotDir?: string): string {
  const batch = batchSystem(kind)
  return [...batch.cancelRequest(annexName, requestId), ...(pilotDir === undefined ? [] : removePilotDirLines(batch, pilotDir)), 'exit 0'].join('\n')
}

async function cancelOne(transport: Transport, group: LoginGroup, annexName: string, request: AnnexRequest): Promise<{ids: string[]; removed: boolean}> {
  let command: string
  try {
    command = cancelCommand(group.batch, annexName, request.requestId, request.pilotDir)
  } catch (error) {
    throw systemError(`the request id cannot be put in a command: ${(error as Error).message}`)
  }
  const result = await transport.exec(command)
  if (result.code !== 0) {
    const {tools} = batchSystem(group.batch)
    const tool = result.code === 3 ? tools.query : tools.cancel
    const status = result.code === null ? `was killed (${result.signal ?? 'signal'})` : `failed (exit status ${result.code})`
    throw systemError(`${tool} on ${describeTarget(group.target)} ${status}${lastLine(result.stderr) ? `: ${lastLine(result.stderr)}` : ''}`)
  }
  const ids: string[] = []
  for (const line of result.stdout.split('\n')) {
    const m = /^cancelled (\S+)$/.exec(line.trim())
    if (m) ids.push(m[1]!)
  }
  return {ids, removed: /^removed-pilot-dir$/m.test(result.stdout)}
}

export function formatShutdown(result: ShutdownResult): string {
  const lines: string[] = (result.notices ?? []).map((notice) => `note: ${notice}`)
  if (result.found === 0) lines.push(`No resources found in annex '${result.annexName}'.`)
  else {
    const n = result.told.length
    lines.push(
      `Shutting down annex '${result.annexName}': told ${n} of ${result.found} resource${result.found === 1 ? '' : 's'} to shut down${n ? ` (${result.told.join(', ')})` : ''}.`,
      'It may take some time for each resource to finish shutting down.',
    )
  }
  if (result.pending === undefined) {
    if (result.found > 0) lines.push('Annex requests that are still in progress have not been affected.')
    return lines.join('\n')
  }
  if (result.pending.length === 0) lines.push('No requests were pending.')
  for (const report of result.pending) lines.push(formatCancel(report))
  return lines.join('\n')
}

function formatCancel(report: CancelReport): string {
  const request = `Request ${report.stateJobId} (${report.requestId})`
  const removed = report.stateJobRemoved ? '; removed its state job' : ''
  switch (report.outcome) {
    case 'cancelled':
      return `${request}: cancelled batch job ${report.batchJobs.join(', ')} on ${report.loginHost}${report.pilotDirRemoved ? '; removed its pilot directory' : ''}${removed}.`
    case 'not-queued':
      return `${request}: no batch job of it is queued on ${report.loginHost}${removed}.`
    case 'unreachable':
    case 'failed':
      return sentence(`${request}: not cancelled: ${report.detail}`)
  }
}

/** The reports that need the user: the command exits 2 when a pending request could not be cancelled. */
export function cancelFailures(result: ShutdownResult): CancelReport[] {
  return (result.pending ?? []).filter((r) => r.outcome === 'failed' || r.outcome === 'unreachable')
}
