import {roundUp} from '../catalog/charge.js'
import {checkAnnexName} from '../catalog/request.js'
import {
  adNumber,
  adString,
  adValue,
  annexCollector,
  queryCollector,
  queryJobs,
  readAnnexConfig,
  requireAnnexEnabled,
  tokenDomain,
  withToken,
  type Ad,
} from '../condor/index.js'
import {classadString} from '../quote.js'
import {currentUser} from './user.js'
import {sweepOrphanedRequests} from './orphans.js'

/** A request as its state job tells: HTCondor's tool's words. */
export type RequestState = 'requested' | 'submitting' | 'submitted' | 'granted'

export interface RequestStatus {
  requestId: string
  /** The state job, if it is still in the queue (a request seen only through its pilots has none). */
  jobId?: string
  state?: RequestState
  /** The batch system's job id, once the back-end reported it. */
  batchJobId?: string
  nodesRequested: number
  /** Seconds (hpc_annex_lifetime). */
  lifetime?: number
  nodesJoined: number
  cpus: number
  busyCpus: number
  /** Earliest / latest DaemonStartTime of its pilots. */
  firstStart?: number
  lastStart?: number
  /** When the batch job was submitted (seconds since the epoch): when its id was recorded, else the state job's QDate. */
  submittedAt?: number
  /** What the request has charged and can still charge, when its state job recorded a rate (hpc_annex_charge_rate). */
  charge?: RequestCharge
  /**
   * Set when the batch job was submitted NO_PILOT_HINT_AFTER seconds ago or
   * more and none of its pilots has reported: what to look at, and why.
   */
  hint?: string
  /** Each joined node's pilot (its partitionable slot): where it puts job sandboxes. */
  pilots: PilotStatus[]
}

/** Where a pilot puts job sandboxes, as its startd advertises it (absent: a pilot that does not say). */
export interface PilotStatus {
  /** The startd's name (the slot's Name without "slotN@"). */
  name: string
  executeOn?: 'node-local' | 'shared'
  executeDir?: string
}

export interface RequestCharge {
  /** The site's unit (hpc_annex_charge_unit). */
  unit: string
  /** Units per node-hour. */
  ratePerNodeHour: number
  /** From each pilot's DaemonStartTime (or, its pilots gone, the request's start for all its nodes) to now, at most the lifetime. */
  chargedSoFar: number
  /** The rest of the lifetime of the pilots that joined, and the whole lifetime of nodes that have not. */
  mostStillToCharge: number
}

/** An annex's charges in one unit (an annex may span systems with different units). */
export interface AnnexCharge {
  unit: string
  chargedSoFar: number
  mostStillToCharge: number
}

export interface Established {
  requestId: string
  ageSeconds: number
  /** Seconds until the request's lifetime is over (negative: overdue); undefined when its lifetime is unknown. */
  retiresInSeconds?: number
}

export interface AnnexStatus {
  name: string
  /** Some pilot of the annex has joined with CPUs. */
  established: boolean
  nodes: {requested: number; joined: number}
  cpus: {total: number; busy: number}
  jobs: {total: number; running: number}
  /** pending: not joined yet; active: pilots in the collector; retired: granted once, pilots gone. */
  requests: {total: number; pending: number; active: number; retired: number}
  oldest?: Established
  youngest?: Established
  requestList: RequestStatus[]
  /** Per unit, summed over the requests whose charge is known. */
  charges: AnnexCharge[]
  /** Requests whose charge is not known (no rate recorded: an unknown charge, or made by another tool). */
  unchargedRequests: number
}

export interface StatusReport {
  /** The annex asked about, if one was. */
  name?: string
  annexes: AnnexStatus[]
  /** Seconds since the epoch when the report was made. */
  time: number
  /** What was done on the user's behalf first (state jobs that killed runs left were removed). */
  notices?: string[]
}

export const REQUEST_JOB_ATTRIBUTES = [
  'ClusterId', 'ProcId', 'JobStatus', 'GlobalJobID', 'QDate', 'hpc_annex_name', 'hpc_annex_nodes', 'hpc_annex_lifetime',
  'hpc_annex_PID', 'hpc_annex_PILOT_DIR', 'hpc_annex_JOB_ID', 'hpc_annex_JOB_ID_time', 'hpc_annex_start_time',
  'hpc_annex_charge_rate', 'hpc_annex_charge_unit',
]

/** Seconds after its submission a batch job with no pilot in the annex collector earns a hint. */
export const NO_PILOT_HINT_AFTER = 300
export const SLOT_ATTRIBUTES = [
  'Name', 'AnnexName', 'hpc_annex_request_id', 'PartitionableSlot', 'TotalSlotCpus', 'ChildCpus', 'DaemonStartTime', 'Cpus', 'State', 'Activity',
  'hpc_annex_execute_on', 'hpc_annex_execute_dir',
]
export const TARGET_JOB_ATTRIBUTES = ['ClusterId', 'ProcId', 'JobStatus', 'TargetAnnexName']

const IDLE = 1
const RUNNING = 2

function wholeNumber(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value)
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) return Number(value)
  return undefined
}

function defined(ad: Ad, name: string): boolean {
  const value = adValue(ad, name)
  return value !== undefined && value !== null
}

/** The state job's view of a request, as HTCondor's tool reads it. */
export function requestState(job: Ad): RequestState {
  if (defined(job, 'hpc_annex_start_time') || (adValue(job, 'JobStatus') === IDLE && defined(job, 'hpc_annex_JOB_ID'))) return 'granted'
  if (defined(job, 'hpc_annex_JOB_ID')) return 'submitted'
  if (defined(job, 'hpc_annex_PID') || defined(job, 'hpc_annex_PILOT_DIR')) return 'submitting'
  return 'requested'
}

function busyCpus(value: unknown): number {
  if (!Array.isArray(value)) return 0
  let sum = 0
  for (const n of value) if (typeof n === 'number') sum += n
  return sum
}

interface Building {
  name: string
  requests: Map<string, RequestStatus>
  /** Requests whose pilots joined once (hpc_annex_start_time is set). */
  joinedOnce: Set<string>
  jobs: {total: number; running: number}
  /** Per request: its recorded rate, the request's start (hpc_annex_start_time) and each pilot's start. */
  rates: Map<string, {unit: string; ratePerNodeHour: number; startedAt?: number; pilotStarts: number[]}>
}

function newRequest(requestId: string): RequestStatus {
  return {requestId, nodesRequested: 0, nodesJoined: 0, cpus: 0, busyCpus: 0, pilots: []}
}

function pilotStatus(slot: Ad): PilotStatus {
  const name = adString(slot, 'Name') ?? ''
  const pilot: PilotStatus = {name: name.replace(/^[^@]*@/, '')}
  const on = adString(slot, 'hpc_annex_execute_on')
  if (on === 'node-local' || on === 'shared') pilot.executeOn = on
  const dir = adString(slot, 'hpc_annex_execute_dir')
  if (dir !== undefined) pilot.executeDir = dir
  return pilot
}

/**
 * Aggregates per annex (pure): request jobs from the schedd, slot ads from
 * the annex collector, and the jobs that target annexes.
 */
export function aggregateStatus(input: {requestJobs: Ad[]; slots: Ad[]; targetJobs: Ad[]}, now: number): AnnexStatus[] {
  const annexes = new Map<string, Building>()
  const annex = (name: string): Building => {
    let found = annexes.get(name)
    if (found === undefined) {
      found = {name, requests: new Map(), joinedOnce: new Set(), jobs: {total: 0, running: 0}, rates: new Map()}
      annexes.set(name, found)
    }
    return found
  }

  for (const job of input.requestJobs) {
    const name = adString(job, 'hpc_annex_name')
    if (name === undefined) continue
    const requestId = adString(job, 'GlobalJobID') ?? `${String(adValue(job, 'ClusterId'))}.${String(adValue(job, 'ProcId'))}`
    const request = newRequest(requestId)
    request.jobId = `${String(adValue(job, 'ClusterId'))}.${String(adValue(job, 'ProcId') ?? 0)}`
    request.state = requestState(job)
    request.nodesRequested = wholeNumber(adValue(job, 'hpc_annex_nodes')) ?? 0
    const lifetime = wholeNumber(adValue(job, 'hpc_annex_lifetime'))
    if (lifetime !== undefined) request.lifetime = lifetime
    const batchJobId = adString(job, 'hpc_annex_JOB_ID')
    if (batchJobId !== undefined) {
      request.batchJobId = batchJobId
      const submittedAt = wholeNumber(adValue(job, 'hpc_annex_JOB_ID_time')) ?? wholeNumber(adValue(job, 'QDate'))
      if (submittedAt !== undefined) request.submittedAt = submittedAt
    }
    annex(name).requests.set(requestId, request)
    if (defined(job, 'hpc_annex_start_time')) annex(name).joinedOnce.add(requestId)
    const rate = Number(adString(job, 'hpc_annex_charge_rate') ?? Number.NaN)
    const unit = adString(job, 'hpc_annex_charge_unit')
    if (unit !== undefined && Number.isFinite(rate) && rate >= 0) {
      const startedAt = wholeNumber(adValue(job, 'hpc_annex_start_time'))
      annex(name).rates.set(requestId, {unit, ratePerNodeHour: rate, ...(startedAt === undefined ? {} : {startedAt}), pilotStarts: []})
    }
  }

  for (const slot of input.slots) {
    const name = adString(slot, 'AnnexName')
    if (name === undefined) continue
    const requestId = adString(slot, 'hpc_annex_request_id') ?? ''
    const building = annex(name)
    let request = building.requests.get(requestId)
    if (request === undefined) {
      request = newRequest(requestId)
      building.requests.set(requestId, request)
    }
    // Dynamic slots are counted through their partitionable parent's ChildCpus.
    if (adValue(slot, 'PartitionableSlot') === true) {
      request.cpus += adNumber(slot, 'TotalSlotCpus') ?? adNumber(slot, 'Cpus') ?? 0
      request.busyCpus += busyCpus(adValue(slot, 'ChildCpus'))
      request.nodesJoined += 1
      request.pilots.push(pilotStatus(slot))
      const pilotStart = adNumber(slot, 'DaemonStartTime')
      if (pilotStart !== undefined) building.rates.get(requestId)?.pilotStarts.push(pilotStart)
    }
    const start = adNumber(slot, 'DaemonStartTime')
    if (start !== undefined) {
      if (request.firstStart === undefined || start < request.firstStart) request.firstStart = start
      if (request.lastStart === undefined || start > request.lastStart) request.lastStart = start
    }
  }

  for (const job of input.targetJobs) {
    const name = adString(job, 'TargetAnnexName')
    if (name === undefined) continue
    // Jobs count only for annexes that exist (requested or joined).
    const building = annexes.get(name)
    if (building === undefined) continue
    building.jobs.total += 1
    if (adValue(job, 'JobStatus') === RUNNING) building.jobs.running += 1
  }

  return [...annexes.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((building) => summarize(building, now))
}

function summarize(building: Building, now: number): AnnexStatus {
  const requestList = [...building.requests.values()]
  const status: AnnexStatus = {
    name: building.name,
    established: false,
    nodes: {requested: 0, joined: 0},
    cpus: {total: 0, busy: 0},
    jobs: building.jobs,
    requests: {total: requestList.length, pending: 0, active: 0, retired: 0},
    requestList,
    charges: [],
    unchargedRequests: 0,
  }
  let oldest: RequestStatus | undefined
  let youngest: RequestStatus | undefined
  for (const request of requestList) {
    const waited = request.submittedAt === undefined ? 0 : now - request.submittedAt
    const noPilot = request.nodesJoined === 0 && request.firstStart === undefined && !building.joinedOnce.has(request.requestId)
    if (request.batchJobId !== undefined && noPilot && waited >= NO_PILOT_HINT_AFTER) {
      request.hint =
        `batch job ${request.batchJobId} was submitted ${Math.floor(waited / 60)} minutes ago and none of its pilots has joined: ` +
        `the job may still be queued, or its pilots cannot reach the annex collector. Look at: hpc-annex logs ${building.name}`
    }
    status.nodes.requested += request.nodesRequested
    status.nodes.joined += request.nodesJoined
    status.cpus.total += request.cpus
    status.cpus.busy += request.busyCpus
    const joined = request.nodesJoined > 0 || request.firstStart !== undefined
    if (joined) status.requests.active += 1
    else if (request.state === 'granted') status.requests.retired += 1
    else status.requests.pending += 1
    if (request.firstStart !== undefined && (oldest === undefined || request.firstStart < oldest.firstStart!)) oldest = request
    if (request.lastStart !== undefined && (youngest === undefined || request.lastStart > youngest.lastStart!)) youngest = request
  }
  status.established = status.cpus.total > 0 || status.nodes.joined > 0
  const established = (request: RequestStatus, start: number): Established => ({
    requestId: request.requestId,
    ageSeconds: now - start,
    ...(request.lifetime === undefined ? {} : {retiresInSeconds: start + request.lifetime - now}),
  })
  for (const request of requestList) {
    const rate = building.rates.get(request.requestId)
    const charge = rate && request.lifetime !== undefined ? requestCharge(rate, request, now) : undefined
    if (charge === undefined) {
      status.unchargedRequests += 1
      continue
    }
    request.charge = charge
    const sum = status.charges.find((c) => c.unit === charge.unit)
    if (sum === undefined) status.charges.push({unit: charge.unit, chargedSoFar: charge.chargedSoFar, mostStillToCharge: charge.mostStillToCharge})
    else {
      sum.chargedSoFar = roundUp(sum.chargedSoFar + charge.chargedSoFar)
      sum.mostStillToCharge = roundUp(sum.mostStillToCharge + charge.mostStillToCharge)
    }
  }
  if (oldest) status.oldest = established(oldest, oldest.firstStart!)
  if (youngest) status.youngest = established(youngest, youngest.lastStart!)
  return status
}

/**
 * A request's charge from its pilots' ads: node-seconds since each pilot
 * started (capped at the lifetime) at the recorded rate; when its pilots are
 * gone but the request started, all its nodes from that start (the most it
 * can have been).
 */
function requestCharge(
  rate: {unit: string; ratePerNodeHour: number; startedAt?: number; pilotStarts: number[]},
  request: RequestStatus,
  now: number,
): RequestCharge {
  const lifetime = request.lifetime ?? 0
  const ran = (start: number) => Math.min(lifetime, Math.max(0, now - start))
  let starts = rate.pilotStarts
  if (starts.length === 0 && rate.startedAt !== undefined) starts = Array.from({length: request.nodesRequested}, () => rate.startedAt!)
  const usedSeconds = starts.reduce((sum, start) => sum + ran(start), 0)
  const notStarted = Math.max(0, request.nodesRequested - starts.length)
  const leftSeconds = starts.reduce((sum, start) => sum + (lifetime - ran(start)), 0) + notStarted * lifetime
  return {
    unit: rate.unit,
    ratePerNodeHour: rate.ratePerNodeHour,
    chargedSoFar: roundUp((usedSeconds / 3600) * rate.ratePerNodeHour),
    mostStillToCharge: roundUp((leftSeconds / 3600) * rate.ratePerNodeHour),
  }
}

export interface StatusOptions {
  name?: string
  /** The annex collector (default ANNEX_COLLECTOR). */
  pool?: string
  /** Seconds since the epoch (tests fix it). */
  now?: () => number
}

/** Gathers the status of the user's annexes (or one): schedd, then the annex collector with a 'status' token. */
export async function collectStatus(options: StatusOptions = {}): Promise<StatusReport> {
  const name = options.name === undefined ? undefined : checkAnnexName(options.name)
  const config = await readAnnexConfig()
  requireAnnexEnabled(config)
  const collector = annexCollector(config, options.pool)
  const domain = tokenDomain(config)
  const user = currentUser()
  const is = (attribute: string) => (name === undefined ? `${attribute} =!= undefined` : `${attribute} == ${classadString(name)}`)

  const swept = await sweepOrphanedRequests()
  // A state job on its way out of the queue (removed, JobStatus 3) is no request any more.
  const requestJobs = await queryJobs({constraint: `${is('hpc_annex_name')} && JobStatus =!= 3`, attributes: REQUEST_JOB_ATTRIBUTES})
  const slots = await withToken(
    {type: 'status', user, domain, keyName: config.tokenKeyName, lifetime: config.tokenLifetime, directory: config.tokenDirectory, timeout: config.timeouts.tokenFetch},
    () => queryCollector({
      pool: collector,
      kind: 'slot',
      constraint: `${is('AnnexName')} && AuthenticatedIdentity == ${classadString(`${user}@${domain}`)}`,
      attributes: SLOT_ATTRIBUTES,
    }),
  )
  const targetJobs = await queryJobs({constraint: is('TargetAnnexName'), attributes: TARGET_JOB_ATTRIBUTES})
  const time = options.now ? options.now() : Math.floor(Date.now() / 1000)
  return {...(name === undefined ? {} : {name}), annexes: aggregateStatus({requestJobs, slots, targetJobs}, time), time, ...(swept === undefined ? {} : {notices: [swept]})}
}
