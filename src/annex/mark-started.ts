import {adNumber, adString, adValue, editJob, queryCollector, queryJobs} from '../condor/index.js'
import {classadString} from '../quote.js'
import {systemError} from '../errors.js'

export interface MarkStartedResult {
  jobId: string
  requestId: string
  /** hpc_annex_start_time, if it is (now) set. */
  startTime?: number
  /** True when this run set it. */
  marked: boolean
}

/**
 * What the state job runs every 5 minutes: once the annex collector holds an
 * ad with this request's id, set hpc_annex_start_time on the job (after
 * which its requirements keep it idle).
 */
export async function markStarted(jobId: string, now = () => Math.floor(Date.now() / 1000)): Promise<MarkStartedResult> {
  const [job] = await queryJobs({ids: [jobId], attributes: ['GlobalJobID', 'hpc_annex_collector', 'hpc_annex_start_time']})
  if (job === undefined) throw systemError(`The state job ${jobId} is not in the queue.`)
  const requestId = adString(job, 'GlobalJobID')
  const collector = adString(job, 'hpc_annex_collector')
  if (requestId === undefined || collector === undefined) throw systemError(`The state job ${jobId} has no GlobalJobID or hpc_annex_collector.`)
  const already = adNumber(job, 'hpc_annex_start_time')
  if (already !== undefined) return {jobId, requestId, startTime: already, marked: false}
  const ads = await queryCollector({
    pool: collector,
    kind: 'slot',
    constraint: `hpc_annex_request_id == ${classadString(requestId)}`,
    attributes: ['Name', 'hpc_annex_request_id'],
  })
  if (!ads.some((ad) => adValue(ad, 'hpc_annex_request_id') === requestId)) return {jobId, requestId, marked: false}
  const startTime = now()
  await editJob(jobId, 'hpc_annex_start_time', startTime)
  return {jobId, requestId, startTime, marked: true}
}
