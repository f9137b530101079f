import {shellQuote} from '../quote.js'

/**
 * What SLURM says now about a system's queues and when a request would
 * start: the commands (for one login) and their parsers. Pure. Only
 * machine-readable forms are read: sinfo/squeue with --noheader and a
 * --format of '|'-separated fields; sbatch --test-only's one line has no
 * other form, so its start time is cut out on the login node and handed back
 * as epoch seconds by `date`.
 */

const MARK = '=-=hpc-annex'

/** One command: the login node's clock, each partition's node counts, every pending or running job's partition, QoS, state and user, and who we are. */
export function liveCommand(): string {
  return [
    `printf '%s now %s\\n' ${shellQuote(MARK)} "$(date +%s)"`,
    `printf '%s user %s\\n' ${shellQuote(MARK)} "$(id -un)"`,
    `printf '%s sinfo\\n' ${shellQuote(MARK)}`,
    // %R partition, %F allocated/idle/other/total nodes.
    "sinfo --noheader --format='%R|%F' || exit 3",
    `printf '%s squeue\\n' ${shellQuote(MARK)}`,
    // %P partition(s), %q QoS, %T state, %u user.
    "squeue --noheader --all --states=PENDING,RUNNING --format='%P|%q|%T|%u' || exit 4",
  ].join('\n')
}

export interface QueueLive {
  name: string
  /** Node counts from sinfo (partitions only; a QoS has no nodes of its own). */
  nodes?: {idle: number; allocated: number; down: number; total: number}
  jobs: {pending: number; running: number}
  /** The login user's pending and running jobs in it. */
  mine: number
}

export interface LiveReport {
  /** The login node's clock, epoch seconds. */
  now: number
  user: string
  queues: QueueLive[]
}

function sections(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current = ''
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${MARK} `)) {
      const [, key = '', ...rest] = line.split(' ')
      current = key
      out.set(key, rest.length > 0 ? [rest.join(' ')] : [])
      continue
    }
    if (line.trim() !== '' && current !== '') out.get(current)!.push(line.trim())
  }
  return out
}

/** Parses liveCommand's output for these queues, counted by partition (-p) or QoS (-q). */
export function parseLive(stdout: string, queues: string[], by: 'partition' | 'qos'): LiveReport {
  const parts = sections(stdout)
  const now = Number(parts.get('now')?.[0] ?? Number.NaN)
  const user = parts.get('user')?.[0] ?? ''
  if (!Number.isFinite(now) || user === '' || !parts.has('sinfo') || !parts.has('squeue')) throw new Error('the login node printed no report (are sinfo and squeue there?)')
  const nodes = new Map<string, QueueLive['nodes']>()
  for (const line of parts.get('sinfo')!) {
    const [name = '', counts = ''] = line.split('|')
    const [allocated, idle, other, total] = counts.split('/').map(Number)
    if ([allocated, idle, other, total].some((n) => n === undefined || !Number.isFinite(n))) continue
    const prior = nodes.get(name)
    // A partition listed twice (sinfo splits by node state sets): add up.
    nodes.set(name, {
      allocated: allocated! + (prior?.allocated ?? 0),
      idle: idle! + (prior?.idle ?? 0),
      down: other! + (prior?.down ?? 0),
      total: total! + (prior?.total ?? 0),
    })
  }
  const live = new Map<string, QueueLive>(queues.map((name) => {
    const n = by === 'partition' ? nodes.get(name) : undefined
    return [name, {name, ...(n === undefined ? {} : {nodes: n}), jobs: {pending: 0, running: 0}, mine: 0}]
  }))
  for (const line of parts.get('squeue')!) {
    const [partitions = '', qos = '', state = '', owner = ''] = line.split('|')
    // A pending job may name several partitions (p1,p2): it waits in each.
    const names = by === 'partition' ? partitions.split(',') : [qos]
    for (const name of names) {
      const q = live.get(name)
      if (q === undefined) continue
      if (state === 'PENDING') q.jobs.pending += 1
      else if (state === 'RUNNING') q.jobs.running += 1
      if (owner === user) q.mine += 1
    }
  }
  return {now, user, queues: [...live.values()]}
}

/** sbatch --test-only with the batch script on stdin: exactly the directives a real submission sends. */
export function estimateCommand(script: string): string {
  return [
    `out=$(printf '%s' ${shellQuote(script)} | sbatch --test-only 2>&1); rc=$?`,
    // The clock read once SLURM has answered: a start it puts at its own "now" is never later than this,
    // however long the call took (read before it, a start "now" could come out a second in the future).
    `printf '%s now %s\\n' ${shellQuote(MARK)} "$(date +%s)"`,
    `printf '%s rc %s\\n' ${shellQuote(MARK)} "$rc"`,
    `printf '%s out\\n' ${shellQuote(MARK)}`,
    `printf '%s\\n' "$out" | head -c 2000`,
    // "sbatch: Job N to start at 2026-12-04T14:10:00 using 4 processors on nodes node[1-2] in partition compute"
    `start=$(printf '%s\\n' "$out" | sed -n 's/.* to start at \\([0-9T:-]*\\) using .*/\\1/p' | head -n 1)`,
    `printf '%s start %s\\n' ${shellQuote(MARK)} "$( [ -n "$start" ] && date -d "$start" +%s )"`,
    `printf '%s nodes %s\\n' ${shellQuote(MARK)} "$(printf '%s\\n' "$out" | sed -n 's/.* on nodes \\([^ ]*\\) in partition .*/\\1/p' | head -n 1)"`,
  ].join('\n')
}

export interface Estimate {
  /** The login node's clock, epoch seconds. */
  now: number
  /** When SLURM would start the job, epoch seconds. */
  start: number
  /** SLURM's node list, e.g. node[1-2]. */
  nodeList: string
}

/** Parses estimateCommand's output; an error carries what sbatch said. */
export function parseEstimate(stdout: string): Estimate {
  const parts = sections(stdout)
  const now = Number(parts.get('now')?.[0] ?? Number.NaN)
  const start = Number(parts.get('start')?.[0] ?? Number.NaN)
  const said = (parts.get('out') ?? []).join(' ').replace(/\s+/g, ' ').trim()
  if (!Number.isFinite(now)) throw new Error('the login node printed no report')
  if (parts.get('rc')?.[0] !== '0' || !Number.isFinite(start) || (parts.get('start')?.[0] ?? '') === '') {
    throw new Error(`sbatch --test-only gave no start time${said ? `: ${said}` : ''}`)
  }
  return {now, start, nodeList: parts.get('nodes')?.[0] ?? ''}
}

/**
 * What a real create's back-end learnt from sbatch --test-only just before it
 * submitted: SLURM's estimate, or (none) what sbatch said instead.
 */
export type SubmitEstimate = {estimate: Estimate} | {now: number; said: string}

/** The back-end's ESTIMATE control value: `NOW START NODELIST`, or `NOW - WHAT_SBATCH_SAID`. */
export function parseEstimateControl(value: string): SubmitEstimate | undefined {
  const match = /^(\d+) (\d+|-)(?: (.*))?$/.exec(value.trim())
  if (!match) return undefined
  const now = Number(match[1])
  const rest = (match[3] ?? '').replace(/\s+/g, ' ').trim()
  if (match[2] === '-') return {now, said: rest}
  return {estimate: {now, start: Number(match[2]), nodeList: rest}}
}

/** "would start now, on 2 nodes" or "would start in about 40 min, at 14:10, on 2 nodes" (time of day in the viewer's zone). */
export function describeEstimate(estimate: Estimate, nodes: number, timeZone?: string): string {
  const on = `on ${nodes} node${nodes === 1 ? '' : 's'}${estimate.nodeList ? ` (${estimate.nodeList})` : ''}`
  const wait = estimate.start - estimate.now
  if (wait < 60) return `would start now, ${on}`
  const minutes = Math.round(wait / 60)
  const about = minutes < 120 ? `${minutes} min` : `${(minutes / 60).toFixed(1)} h`
  const at = new Date(estimate.start * 1000).toLocaleTimeString('en-GB', {hour: '2-digit', minute: '2-digit', hour12: false, ...(timeZone ? {timeZone} : {})})
  return `would start in about ${about}, at ${at}, ${on}`
}

/** The line a real create shows before it submits, and in its report. */
export function describeSubmitEstimate(found: SubmitEstimate, nodes: number, timeZone?: string): string {
  if ('estimate' in found) return `SLURM says the request ${describeEstimate(found.estimate, nodes, timeZone)} (sbatch --test-only).`
  return `No start estimate: sbatch --test-only ${found.said ? `said: ${found.said}` : 'gave no answer in time'}.`
}
