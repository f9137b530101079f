/** What a batch system is to hpc-annex (one object per system: slurm.ts, htcondor.ts). */
import type {Plan} from '../catalog/plan.js'

export type BatchKind = 'slurm' | 'htcondor'

export interface BatchSystem {
  kind: BatchKind
  /** As users know it, in messages. */
  label: string
  /** The login node's tools, named in errors: submit, list, cancel. */
  tools: {submit: string; query: string; cancel: string}
  /** The request's files beyond backend.sh and pilot.conf: the job description (templates/) and the pilot scripts (pilots/). */
  jobTemplates: {path: string; template: string; secret: boolean}[]
  pilotScripts: string[]
  /** The back-end template (templates/). */
  backendTemplate: string
  /**
   * The back-end picks the HTCondor build for the login node's OS; an
   * HTCondor pool's pilots run in the pool's container, so its build is fixed.
   */
  detectsLoginOs: boolean
  /** The request in the batch system's own terms, for the dry-run text. */
  describeRequest(plan: Plan): string
  /** What is asked of the batch system, as the dry-run text shows it ("sbatch -p wholenode --nodes=2 --time=60"), for --json. */
  requestLine(plan: Plan): string
  /** A shell command that cancels one batch job by its id. */
  cancelJob(jobId: string): string
  /**
   * Shell lines that wait, 30 s at most, until that job has left the batch
   * system: a cancelled job's processes may still write into its pilot
   * directory while they stop.
   */
  awaitJobGone(jobId: string): string[]
  /**
   * Shell lines that cancel a request's batch jobs, found by the request id
   * (never by a job id the state job may not have learned), only the login
   * user's own: `cancelled <id>` for each; exit 3 when listing them failed,
   * 4 when cancelling did. Then they wait, 30 s at most, until those jobs
   * have left (as awaitJobGone), so a pilot directory removed next is not
   * pulled from under pilots still stopping.
   */
  cancelRequest(annexName: string, requestId: string): string[]
}

/**
 * The batch job's name: carries the annex name and the request id (in a form
 * every batch system accepts), so a retry and `shutdown` can find the job.
 */
export function batchJobName(annexName: string, requestId: string): string {
  const plain = (text: string) => text.replace(/[^A-Za-z0-9._-]/g, '_')
  return `hpc-annex.${plain(annexName)}.${plain(requestId)}`
}

/**
 * A shell line that waits, 30 s at most, until `list` (a command printing a
 * line per job) prints nothing: the jobs it lists have left the batch system.
 */
export function awaitNoneListed(list: string): string {
  return `for _ in $(seq 120); do [ -z "$(${list} 2>/dev/null)" ] && break; sleep 0.25; done`
}
