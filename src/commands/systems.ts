import {catalogWarnings, loadCatalog, requireSystem} from '../catalog/index.js'
import {summarizeSystem, type SystemSummary} from '../catalog/summary.js'
import {AnnexCommand} from '../cli/base.js'
import type {SystemsOutput} from '../cli/json/schemas.js'
import {Args, Flags} from '../cli/oclif.js'
import {loginOptions, sshFlag, tmpDirFlag} from '../cli/login.js'
import {loginTargetFlags} from '../cli/ssh-flag.js'
import {interruptSignal} from '../cli/interrupt.js'
import {userError} from '../errors.js'
import type {LiveResult} from '../annex/live.js'
import {formatTable} from '../cli/table.js'
import {batchSystem} from '../batch/index.js'

function duration(seconds: number): string {
  const hours = seconds / 3600
  return hours >= 1 ? `${Number.isInteger(hours) ? hours : hours.toFixed(1)} h` : `${seconds / 60} min`
}

function shapeText(shape: SystemSummary['queues'][number]['shapes'][number]): string {
  const parts = [
    shape.maxNodes && `at most ${shape.maxNodes} node${shape.maxNodes === 1 ? "" : "s"}`,
    shape.coresPerNode && `${shape.coresPerNode} cores`,
    shape.ramPerNodeMb && `${shape.ramPerNodeMb} MB`,
    shape.gpusPerNode && `${shape.gpusPerNode} GPUs`,
  ].filter(Boolean)
  return `${shape.label}: ${parts.join(', ')}`
}

export function formatSystem(system: SystemSummary): string {
  const header = `${system.name} (${system.key}) — login ${system.host}, ${batchSystem(system.batch).label}, ` +
    `project ${system.projectRequired ? 'required (--project)' : 'optional'}`
  const table = formatTable(
    ['QUEUE', 'TYPE', 'MAX NODES', 'MAX TIME', 'CORES/NODE', 'RAM/NODE MB', 'GPUS/NODE', 'MAX JOBS', 'NOTES'],
    system.queues.map((q) => [
      `${q.name}${q.default ? ' *' : ''}`,
      q.allocation === 'node' ? 'whole node' : q.allocation === 'cores_or_ram' ? 'shared' : 'gpu-shared',
      q.maxNodes,
      duration(q.maxDurationSeconds),
      q.coresPerNode,
      q.ramPerNodeMb,
      q.gpusPerNode,
      q.maxJobsInQueue,
      q.notes.join('; ') || ' ',
    ]),
  )
  const shapes = system.queues.flatMap((q) => q.shapes.map((s) => `  ${q.name} — ${shapeText(s)}`))
  return [header, table, ...(shapes.length ? ['Node shapes (chosen by --gpus / --gpu-type):', ...shapes] : [])].join('\n')
}

/** The --live table: per queue, nodes and jobs now, and the user's own jobs against the queue's limit. */
export function formatLive(live: LiveResult): string {
  const table = formatTable(
    [live.by === 'qos' ? 'QOS' : 'PARTITION', 'NODES IDLE', 'ALLOCATED', 'DOWN', 'TOTAL', 'JOBS PENDING', 'RUNNING', `${live.user.toUpperCase()}'S JOBS/MAX`],
    live.queues.map((q) => [
      q.name,
      q.nodes?.idle ?? '-',
      q.nodes?.allocated ?? '-',
      q.nodes?.down ?? '-',
      q.nodes?.total ?? '-',
      q.jobs.pending,
      q.jobs.running,
      `${q.mine}/${live.maxJobs[q.name] ?? '-'}`,
    ]),
  )
  const when = new Date(live.now * 1000).toISOString().replace('.000Z', 'Z')
  return `Live on ${live.system} (${live.login}, ${when}; sinfo and squeue):\n${table}`
}

export default class Systems extends AnnexCommand {
  static override summary = 'List the HPC systems and their queues, with the limits a request is checked against.'
  static override examples = ['<%= config.bin %> systems', '<%= config.bin %> systems anvil', '<%= config.bin %> systems --json', '<%= config.bin %> systems anvil --live']
  static override args = {
    system: Args.string({description: 'Show only this system.'}),
  }

  static override flags = {
    live: Flags.boolean({description: 'Log in once and show, per queue, what SLURM says now: nodes idle/allocated/down, jobs pending/running, and yours against the queue\'s limit.'}),
    ...loginTargetFlags,
    ssh: sshFlag,
    tmp_dir: tmpDirFlag,
  }

  async run(): Promise<SystemsOutput> {
    const {args, flags} = await this.parse(Systems)
    if (flags.live && args.system === undefined) throw userError('--live needs a SYSTEM: it logs in to that system only, e.g. hpc-annex systems anvil --live.')
    const catalog = loadCatalog()
    // A system asked for: what is wrong with its own file is the error, not a warning.
    const machines = args.system === undefined ? [...catalog.systems.values()] : [requireSystem(catalog, args.system)]
    for (const warning of catalogWarnings(catalog, args.system === undefined ? undefined : machines[0]!.key)) this.warn(warning)
    const summaries = machines.map(summarizeSystem)
    this.log(summaries.map(formatSystem).join('\n\n'))
    if (args.system === undefined) this.log('\n* default queue. Ask with: hpc-annex create NAME QUEUE@SYSTEM')
    if (!flags.live) return {systems: summaries}
    const {liveQueues} = await import('../annex/live.js')
    const live = await liveQueues(machines[0]!.key, {
      catalog,
      ...(flags['login-name'] === undefined ? {} : {loginName: flags['login-name']}),
      ...(flags['login-host'] === undefined ? {} : {loginHost: flags['login-host']}),
      login: loginOptions(flags.ssh, this.jsonEnabled(), flags.tmp_dir),
      signal: interruptSignal(),
    })
    this.log(`\n${formatLive(live)}`)
    return {
      systems: summaries,
      live: {
        system: live.system,
        login: live.login,
        user: live.user,
        nowEpochSeconds: live.now,
        queuesAre: live.by,
        queues: live.queues.map((q) => ({
          name: q.name,
          ...(q.nodes === undefined ? {} : {nodes: {...q.nodes}}),
          jobs: {...q.jobs},
          yourJobs: q.mine,
          ...(live.maxJobs[q.name] === undefined ? {} : {maxJobsInQueue: live.maxJobs[q.name]}),
        })),
      },
    }
  }
}
