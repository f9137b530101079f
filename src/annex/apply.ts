/**
 * apply: which requests of a request file the annex already has. A request
 * is there when a live state job of the annex (not removed, not completed)
 * records the same system, queue, nodes, lifetime, CPUs and memory — what
 * its state job says of it, as HTCondor's own tool writes it.
 */
import type {Plan} from '../catalog/plan.js'
import {adNumber, adString, queryJobs, type Ad} from '../condor/index.js'
import {classadString} from '../quote.js'
import type {ExecOptions, ExecResult, Interaction, LoginTarget, Transport} from '../ssh/transport.js'

/** A live request of the annex, as its state job tells it. */
export interface LiveRequest {
  requestId: string
  stateJobId: string
  key: string
  batchJobId?: string
}

/** What identifies a request of a file among the annex's: where it went and what it asked for. */
export function planKey(plan: Plan): string {
  return JSON.stringify([plan.system.key, plan.queue.name, String(plan.nodes), String(plan.lifetime), plan.cpus === undefined ? null : String(plan.cpus), plan.memMb === undefined ? null : String(plan.memMb)])
}

function adKey(ad: Ad): string {
  const text = (name: string) => adString(ad, name) ?? (adNumber(ad, name) === undefined ? null : String(adNumber(ad, name)))
  return JSON.stringify([text('hpc_annex_system'), text('hpc_annex_queue_name'), text('hpc_annex_nodes'), text('hpc_annex_lifetime'), text('hpc_annex_cpus'), text('hpc_annex_mem_mb')])
}

/** The annex's live requests, oldest first. */
export async function liveRequests(name: string): Promise<LiveRequest[]> {
  const ads = await queryJobs({
    constraint: `hpc_annex_name == ${classadString(name)} && JobStatus =!= 3 && JobStatus =!= 4`,
    attributes: ['ClusterId', 'ProcId', 'GlobalJobID', 'JobStatus', 'hpc_annex_name', 'hpc_annex_system', 'hpc_annex_queue_name', 'hpc_annex_nodes', 'hpc_annex_lifetime', 'hpc_annex_cpus', 'hpc_annex_mem_mb', 'hpc_annex_JOB_ID'],
  })
  return ads
    // ClassAd == on strings ignores case; the annex name does not. A removed job may still be listed by a fake or an old schedd.
    .filter((ad) => adString(ad, 'hpc_annex_name') === name && ![3, 4].includes(adNumber(ad, 'JobStatus') ?? 0))
    .map((ad) => {
      const stateJobId = `${String(adNumber(ad, 'ClusterId'))}.${String(adNumber(ad, 'ProcId') ?? 0)}`
      const batchJobId = adString(ad, 'hpc_annex_JOB_ID')
      return {requestId: adString(ad, 'GlobalJobID') ?? stateJobId, stateJobId, key: adKey(ad), ...(batchJobId ? {batchJobId} : {})}
    })
    .sort((a, b) => Number(a.stateJobId.split('.')[0]) - Number(b.stateJobId.split('.')[0]))
}

/** Pairs each planned request with a live one of the same key (each live one used once); the rest are missing. */
export function matchRequests<T extends {plan: Plan}>(wanted: T[], live: LiveRequest[]): (T & {existing?: LiveRequest})[] {
  const free = [...live]
  return wanted.map((request) => {
    const key = planKey(request.plan)
    const at = free.findIndex((l) => l.key === key)
    if (at < 0) return request
    const [existing] = free.splice(at, 1)
    return {...request, existing: existing!}
  })
}

/**
 * One login shared by several requests to the same login node: the first
 * connect logs in (one 2FA), later ones reuse it; close() is left to
 * release(), once every request of that node is done.
 */
export function sharedTransport(inner: Transport): Transport & {release(): Promise<void>; connections(): number} {
  let connecting: Promise<void> | undefined
  let connections = 0
  return {
    connect(target: LoginTarget, interaction: Interaction): Promise<void> {
      if (connecting === undefined) {
        connections++
        connecting = inner.connect(target, interaction)
      }
      return connecting
    },
    exec: (command: string, options?: ExecOptions): Promise<ExecResult> => inner.exec(command, options),
    expect(target: LoginTarget): void {
      if (connecting === undefined) inner.expect?.(target)
    },
    close: async () => undefined,
    release: () => inner.close(),
    connections: () => connections,
  }
}
