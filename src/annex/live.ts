import {dryRunContext, renderFiles} from '../backend/index.js'
import {estimateCommand, liveCommand, parseEstimate, parseLive, type Estimate, type LiveReport} from '../batch/slurm-live.js'
import {loadCatalog, requireSystem, type Catalog, type Plan} from '../catalog/index.js'
import type {Machine} from '../catalog/load.js'
import {loginOverrides} from '../condor/index.js'
import {oneLine, systemError, userError} from '../errors.js'
import {loginTarget} from './login-target.js'
import {closeLogins, describeTarget, lastLine, openLogins, type LoginGroup, type LoginOptions} from './requests.js'

/** How to log in: the flags as create takes them, the admin's overrides, the machine file. */
export interface LiveLogin {
  loginName?: string
  loginHost?: string
  login: LoginOptions & {sshConfigFile?: string}
  signal?: AbortSignal
}

async function group(machine: Machine, options: LiveLogin): Promise<LoginGroup> {
  // As `cache`: no overrides when HTCondor cannot be asked (this needs no Access Point).
  const overrides = await loginOverrides(machine.key).catch(() => ({}))
  const flags = {
    ...(options.loginHost === undefined ? {} : {host: options.loginHost}),
    ...(options.loginName === undefined ? {} : {user: options.loginName}),
    ...(options.login.controlDir === undefined ? {} : {controlDir: options.login.controlDir}),
  }
  return {system: machine.key, batch: machine.batch, target: loginTarget(machine.host, {flags, overrides}, options.login.sshConfigFile), requests: []}
}

/** Logs in once and runs one command; its stdout, or a system error saying what failed where. */
async function runOnce(g: LoginGroup, command: string, what: string, options: LiveLogin): Promise<string> {
  const where = describeTarget(g.target)
  const logins = await openLogins([g], options.login)
  try {
    const login = logins[0]!
    if ('error' in login) throw systemError(`Cannot ${what} on ${g.system}: ${login.error}`)
    let result
    try {
      result = await login.transport.exec(command, {...(options.signal ? {signal: options.signal} : {})})
    } catch (error) {
      throw systemError(`Asking ${where} to ${what} failed: ${oneLine(error instanceof Error ? error.message : String(error))}`)
    }
    if (result.code !== 0) {
      const detail = lastLine(result.stderr)
      throw systemError(`Asking ${where} to ${what} failed (exit status ${String(result.code)})${detail ? `: ${detail}` : ''}`)
    }
    return result.stdout
  } finally {
    await closeLogins(logins)
  }
}

export interface LiveResult extends LiveReport {
  system: string
  /** user@host it logged in to. */
  login: string
  by: 'partition' | 'qos'
  /** Each queue's max_jobs_in_queue, by name. */
  maxJobs: Record<string, number | undefined>
}

/** `systems SYSTEM --live`: one login, sinfo and squeue. */
export async function liveQueues(system: string, options: LiveLogin & {catalog?: Catalog}): Promise<LiveResult> {
  const machine = requireSystem(options.catalog ?? loadCatalog(), system)
  if (machine.batch !== 'slurm') throw userError(`${machine.name}'s batch system is HTCondor: --live reads SLURM's queues only.`)
  const g = await group(machine, options)
  const stdout = await runOnce(g, liveCommand(), 'read its queues', options)
  const by = machine.queue_flag === 'qos' ? 'qos' : 'partition'
  let report: LiveReport
  try {
    report = parseLive(stdout, Object.keys(machine.queues), by)
  } catch (error) {
    throw systemError(`Reading the queues on ${describeTarget(g.target)}: ${(error as Error).message}`)
  }
  const maxJobs = Object.fromEntries(Object.entries(machine.queues).map(([name, q]) => [name, q.max_jobs_in_queue]))
  return {system: machine.key, login: describeTarget(g.target), by, maxJobs, ...report}
}

export interface EstimateResult {
  system: string
  queue: string
  nodes: number
  /** undefined: the batch system gives no estimate (HTCondor). */
  estimate?: Estimate
}

/** `create --estimate`: one login, sbatch --test-only with the batch script a real create would submit. */
export async function estimateStart(plan: Plan, options: LiveLogin & {catalog?: Catalog}): Promise<EstimateResult> {
  const base = {system: plan.system.key, queue: plan.queue.name, nodes: plan.nodes}
  if (plan.system.batch !== 'slurm') return base
  const machine = requireSystem(options.catalog ?? loadCatalog(), plan.system.key)
  const script = renderFiles(plan, dryRunContext(plan)).find((file) => file.path === 'batch.slurm')
  if (script === undefined) throw systemError('No batch script was rendered for this system.')
  const g = await group(machine, {...options, ...(plan.login.user === undefined ? {} : {loginName: plan.login.user}), ...(plan.login.hostFromFlag ? {loginHost: plan.login.host} : {})})
  const stdout = await runOnce(g, estimateCommand(script.content), 'estimate the start', options)
  try {
    return {...base, estimate: parseEstimate(stdout)}
  } catch (error) {
    throw systemError(`Estimating the start on ${describeTarget(g.target)}: ${(error as Error).message}`)
  }
}
