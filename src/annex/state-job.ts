import {fileURLToPath} from 'node:url'

import type {RecordedControl} from '../backend/protocol.js'
import {roundUp} from '../catalog/charge.js'
import type {Plan} from '../catalog/plan.js'
import {editJobs, queryJobs, removeJobs, submitDescription} from '../condor/index.js'
import {adNumber, adString, type Ad} from '../condor/classad.js'
import {systemError} from '../errors.js'
import {classadString} from '../quote.js'
import {render} from '../render/index.js'

/** What the Access Point adds to a Plan for the state job. */
export interface StateJobContext {
  /** The annex collector the pilots report to. */
  collector: string
  /** The remote temporary directory, once known (else undefined, as HTCondor's tool allows). */
  remoteScriptDir?: string
  /** The login node the request goes to (after the admin's per-system overrides). */
  login?: {host: string; user?: string}
  /** How the schedd runs `hpc-annex internal mark-started`: node and our bin/run.js (default: this process's). */
  node?: string
  script?: string
  /** The run that submits it (creator.ts), recorded as hpc_annex_creator. */
  creator?: string
}

export interface RequestJob {
  clusterId: number
  /** `<cluster>.0`, for condor_qedit and condor_rm. */
  jobId: string
  /** The job's GlobalJobID: the request id pilots advertise and the batch job carries. */
  requestId: string
  /**
   * The oldest state job of the annex's name still in the queue (by QDate,
   * then cluster id), this one included: of two creates of one name that
   * both passed the name check, only the one whose job this is goes on.
   */
  firstOfName: string
}

function defaultScript(): string {
  // dist/annex/state-job.js (or src/annex/state-job.ts) → bin/run.js
  return fileURLToPath(new URL('../../bin/run.js', import.meta.url))
}

/** The state job's submit description (pure). */
export function stateJobDescription(plan: Plan, context: StateJobContext): string {
  const node = context.node ?? process.execPath
  const script = context.script ?? defaultScript()
  // arguments are split at whitespace and read quotes: refuse what would split the path.
  if (/[\s"']/.test(script)) {
    throw systemError(`hpc-annex is installed under a path with a space or a quote (${script}); the state job cannot run it from there.`, {
      hint: 'install hpc-annex under a path without spaces or quotes',
    })
  }
  return render('state-job.sub', {
    node,
    script,
    lifetime: plan.lifetime,
    lifetimeText: String(plan.lifetime),
    batchName: `${plan.annexName} [HPC Annex]`,
    name: plan.annexName,
    queueName: plan.queue.name,
    collector: context.collector,
    owners: plan.owners.join(','),
    nodes: String(plan.nodes),
    cpus: plan.cpus === undefined ? null : String(plan.cpus),
    memMb: plan.memMb === undefined ? null : String(plan.memMb),
    allocation: plan.project ?? null,
    remoteScriptDir: context.remoteScriptDir ?? null,
    system: plan.system.key,
    loginHost: context.login?.host ?? null,
    loginUser: context.login?.user ?? null,
    creator: context.creator ?? null,
    chargeRate: plan.charge.known ? String(roundUp(plan.charge.unitsPerNode * plan.charge.factor)) : null,
    chargeUnit: plan.charge.known ? plan.charge.unit : null,
  })
}

/**
 * Submits the state job and reads back, in one condor_q, its GlobalJobID as
 * the request id (hpc_annex_request_id itself comes back as
 * "/Expr(GlobalJobID)/") and the oldest state job of the same name.
 */
export async function submitStateJob(plan: Plan, context: StateJobContext): Promise<RequestJob> {
  const {clusterId} = await submitDescription(stateJobDescription(plan, context))
  const jobId = `${clusterId}.0`
  const ads = await queryJobs({
    constraint: `hpc_annex_name == ${classadString(plan.annexName)}`,
    attributes: ['ClusterId', 'ProcId', 'GlobalJobID', 'QDate', 'JobStatus'],
  })
  const id = (ad: Ad) => `${String(adNumber(ad, 'ClusterId'))}.${String(adNumber(ad, 'ProcId'))}`
  const ad = ads.find((a) => id(a) === jobId)
  const requestId = ad === undefined ? undefined : adString(ad, 'GlobalJobID')
  if (requestId === undefined) throw systemError(`The state job ${jobId} was submitted but condor_q does not show its GlobalJobID.`)
  // Removed (3) and completed (4) jobs no longer hold the name.
  const live = ads.filter((a) => a === ad || ![3, 4].includes(adNumber(a, 'JobStatus') ?? 0))
  const order = (a: Ad) => [adNumber(a, 'QDate') ?? Number.MAX_SAFE_INTEGER, adNumber(a, 'ClusterId') ?? Number.MAX_SAFE_INTEGER] as const
  const [first] = live.sort((a, b) => order(a)[0] - order(b)[0] || order(a)[1] - order(b)[1])
  return {clusterId, jobId, requestId, firstOfName: id(first!)}
}

/** The back-end's recorded control values (`=-.-= PID 123` sets hpc_annex_PID = "123"), and the remote script directory. */
export type ControlAttribute = RecordedControl | 'REMOTE_SCRIPT_DIR'

/** Sets the state job's attributes for these control values (and, with JOB_ID, hpc_annex_JOB_ID_time), in one condor_qedit. */
export async function recordControlValues(request: Pick<RequestJob, 'jobId'>, values: Partial<Record<ControlAttribute, string>>): Promise<void> {
  const edits: Record<string, string | number> = {}
  for (const [attribute, value] of Object.entries(values)) {
    edits[attribute === 'REMOTE_SCRIPT_DIR' ? 'hpc_annex_remote_script_dir' : `hpc_annex_${attribute}`] = value
  }
  // When the batch job's id came: `status` tells a batch job whose pilots are long in coming.
  if (values.JOB_ID !== undefined) edits.hpc_annex_JOB_ID_time = Math.floor(Date.now() / 1000)
  await editJobs(request.jobId, edits)
}

/** The back-end failed: remove the request job, with the error as the reason. */
export async function abandonRequest(request: Pick<RequestJob, 'jobId'>, reason: string): Promise<void> {
  await removeJobs(request.jobId, reason)
}
