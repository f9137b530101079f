import {adNumber, adString, queryJobs, removeJobs} from '../condor/index.js'
import {oneLine} from '../errors.js'
import {creatorGone, parseCreator} from './creator.js'

/**
 * Removes the state jobs that runs of hpc-annex on this machine left when
 * they were killed outright (kill -9, a crash, a reboot) before their request
 * got a batch job: the run named in hpc_annex_creator is gone and there is no
 * hpc_annex_JOB_ID. Nothing would ever end them: they wait for a start time
 * no pilot will give. A run that still goes on, one on another machine, a
 * request with a batch job, and a finished --bundle request (its run clears
 * hpc_annex_creator) are left alone. create, add, status and shutdown call
 * this first. Returns one line that says what was removed, or undefined;
 * never fails (what cannot be removed now is left for the next run).
 */
export async function sweepOrphanedRequests(): Promise<string | undefined> {
  let ads
  try {
    ads = await queryJobs({
      constraint: 'hpc_annex_creator =!= undefined && hpc_annex_JOB_ID =?= undefined && JobStatus =!= 3',
      attributes: ['ClusterId', 'ProcId', 'hpc_annex_name', 'hpc_annex_creator'],
    })
  } catch {
    return undefined
  }
  const removed: string[] = []
  for (const ad of ads) {
    const value = adString(ad, 'hpc_annex_creator')
    if (creatorGone(value) !== true) continue
    const creator = parseCreator(value)!
    const id = `${String(adNumber(ad, 'ClusterId'))}.${String(adNumber(ad, 'ProcId'))}`
    try {
      await removeJobs(id, `hpc-annex: the run that submitted this state job (pid ${creator.pid} on ${creator.host}) was killed before its request got a batch job`)
      removed.push(`${id} (annex '${oneLine(adString(ad, 'hpc_annex_name') ?? '?')}', pid ${creator.pid})`)
    } catch {
      // Left for the next run.
    }
  }
  if (removed.length === 0) return undefined
  const what = removed.length === 1 ? 'the state job' : `${removed.length} state jobs`
  return `removed ${what} that hpc-annex runs killed on this machine left: ${removed.join(', ')}`
}
