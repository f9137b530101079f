import {catalogWarnings, loadCatalog, requireSystem} from '../catalog/index.js'
import {summarizeSystem, type SystemSummary} from '../catalog/summary.js'
import {AnnexCommand} from '../cli/base.js'
import type {SystemsOutput} from '../cli/json/schemas.js'
import {Args} from '../cli/oclif.js'
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

export default class Systems extends AnnexCommand {
  static override summary = 'List the HPC systems and their queues, with the limits a request is checked against.'
  static override examples = ['<%= config.bin %> systems', '<%= config.bin %> systems anvil', '<%= config.bin %> systems --json']
  static override args = {
    system: Args.string({description: 'Show only this system.'}),
  }

  async run(): Promise<SystemsOutput> {
    const {args} = await this.parse(Systems)
    const catalog = loadCatalog()
    // A system asked for: what is wrong with its own file is the error, not a warning.
    const machines = args.system === undefined ? [...catalog.systems.values()] : [requireSystem(catalog, args.system)]
    for (const warning of catalogWarnings(catalog, args.system === undefined ? undefined : machines[0]!.key)) this.warn(warning)
    const summaries = machines.map(summarizeSystem)
    this.log(summaries.map(formatSystem).join('\n\n'))
    if (args.system === undefined) this.log('\n* default queue. Ask with: hpc-annex create NAME QUEUE@SYSTEM')
    return {systems: summaries}
  }
}
