import {systemError, userError} from '../errors.js'
import {oneLine} from '../errors.js'
import {classadString} from '../quote.js'
import {checkAttributeName, classadLiteral, parseAds, type Ad, type AdValue} from './classad.js'
import {runTool} from './runner.js'
import {currentUser} from './user.js'

const JOB_ID = /^\d+(\.\d+)?$/

function checkJobId(id: string): string {
  if (!JOB_ID.test(id)) throw new TypeError(`not a job id: ${JSON.stringify(id)}`)
  return id
}

export interface SubmitResult {
  clusterId: number
  /** Number of jobs (procs) in the cluster. */
  jobs: number
}

/** Reads `condor_submit -terse` ("17.0 - 17.2") or its plain output ("3 job(s) submitted to cluster 17."). */
export function parseSubmitOutput(stdout: string): SubmitResult {
  const terse = /^\s*(\d+)\.(\d+) - (\d+)\.(\d+)\s*$/m.exec(stdout)
  if (terse && terse[1] === terse[3]) return {clusterId: Number(terse[1]), jobs: Number(terse[4]) - Number(terse[2]) + 1}
  const plain = /^(\d+) job\(s\) submitted to cluster (\d+)\.$/m.exec(stdout)
  if (plain) return {clusterId: Number(plain[2]), jobs: Number(plain[1])}
  throw systemError(`condor_submit reported no cluster id (it printed ${JSON.stringify(oneLine(stdout).slice(0, 120))}).`)
}

/** Submits a submit description given as text (on stdin, never in a file or an argument). */
export async function submitDescription(description: string): Promise<SubmitResult> {
  const {stdout} = await runTool('condor_submit', ['-terse', '-'], {input: description})
  return parseSubmitOutput(stdout)
}

/** Submits the user's submit file, with extra commands that precede its queue statement. */
export async function submitFile(file: string, append: string[] = []): Promise<SubmitResult> {
  if (file.startsWith('-')) throw userError(`The submit file name '${file}' starts with '-'; write ./${file} instead.`)
  const args = ['-terse', ...append.flatMap((line) => ['-append', line]), file]
  const {stdout} = await runTool('condor_submit', args)
  return parseSubmitOutput(stdout)
}

export interface JobQuery {
  /** A ClassAd constraint, built with classadString for every value; always ANDed with the Owner term. */
  constraint?: string
  /** Whose jobs (default: the user running hpc-annex). */
  owner?: string
  /** Job ids (cluster or cluster.proc). */
  ids?: string[]
  /** Projection: only these attributes come back. */
  attributes?: string[]
}

/**
 * The condor_q constraint of a query: always `Owner == "<user>"`, ANDed with
 * the query's own. condor_q shows other users' jobs to a queue superuser, and
 * to everyone where CONDOR_Q_ONLY_MY_JOBS is false (or when job ids are
 * given); their jobs must never make a name look taken, supply images, or be
 * edited or removed. (A user name among condor_q's arguments would be ORed
 * with the job ids, not ANDed.)
 */
export function ownerConstraint(query: Pick<JobQuery, 'constraint' | 'owner'> = {}): string {
  const owner = `Owner == ${classadString(query.owner ?? currentUser())}`
  return query.constraint === undefined ? owner : `${owner} && (${query.constraint})`
}

/**
 * The user's jobs matching the query, as condor_q -json gives them
 * (expressions as "/Expr(...)/"); no match is an empty list. Only the user's
 * own jobs, whoever else's condor_q would show (see ownerConstraint).
 */
export async function queryJobs(query: JobQuery = {}): Promise<Ad[]> {
  const args = ['-json', '-constraint', ownerConstraint(query)]
  if (query.attributes?.length) args.push('-attributes', query.attributes.map(checkAttributeName).join(','))
  for (const id of query.ids ?? []) args.push(checkJobId(id))
  const {stdout} = await runTool('condor_q', args)
  return parseAds(stdout, 'condor_q')
}

/** Sets one attribute of a job (or cluster) to a literal value. */
export async function editJob(jobId: string, attribute: string, value: AdValue): Promise<void> {
  await editJobs(jobId, {[attribute]: value})
}

/** Sets several attributes of a job in one condor_qedit. */
export async function editJobs(jobId: string, edits: Record<string, AdValue>): Promise<void> {
  const args = [checkJobId(jobId)]
  for (const [attribute, value] of Object.entries(edits)) args.push(checkAttributeName(attribute), classadLiteral(value))
  if (args.length === 1) return
  const {stdout} = await runTool('condor_qedit', args)
  const set = stdout.match(/^Set attribute .* for (\d+) matching jobs?\.$/gm) ?? []
  if (set.length !== Object.keys(edits).length) {
    throw systemError(`condor_qedit did not confirm the edit of job ${jobId} (it printed ${JSON.stringify(oneLine(stdout).slice(0, 120))}).`)
  }
}

/** Removes a job or cluster, with a reason the user will see in condor_q and the job log. */
export async function removeJobs(jobId: string, reason: string): Promise<void> {
  await runTool('condor_rm', ['-reason', oneLine(reason).slice(0, 1000), checkJobId(jobId)])
}
