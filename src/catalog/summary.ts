import type {Machine} from './load.js'
import type {QueueDefinition} from './schema.js'

/** A queue's limits for display and --json; shapes listed as variants. */
export interface QueueSummary {
  name: string
  default: boolean
  allocation: QueueDefinition['allocation']
  maxNodes: number
  maxDurationSeconds: number
  coresPerNode?: number
  ramPerNodeMb?: number
  gpusPerNode?: number
  gpuTypes?: string[]
  gpuCountPer: 'node' | 'job'
  /** --cpus must be a multiple of this. */
  cpusMultipleOf?: number
  /** How the queue takes --mem_mb: as given, refused, or RAM/node sent when it is not given. */
  memMbFlag: QueueDefinition['mem_mb']
  maxJobsInQueue?: number
  notes: string[]
  shapes: {label: string; maxNodes?: number; coresPerNode?: number; ramPerNodeMb?: number; gpusPerNode?: number}[]
}

export interface SystemSummary {
  key: string
  name: string
  host: string
  batch: Machine['batch']
  defaultQueue: string
  projectRequired: boolean
  source: string
  queues: QueueSummary[]
}

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

export function summarizeSystem(machine: Machine): SystemSummary {
  return {
    key: machine.key,
    name: machine.name,
    host: machine.host,
    batch: machine.batch,
    defaultQueue: machine.default_queue,
    projectRequired: machine.project_required,
    source: machine.source,
    queues: Object.entries(machine.queues).map(([name, q]) => {
      const notes: string[] = []
      if (q.note) notes.push(q.note)
      if (q.gpu_count === 'job') notes.push('GPU count sent per job')
      if (q.mem_mb === 'node-default') notes.push('memory sent as RAM/node')
      if (q.gpu_types) notes.push(`GPU types: ${q.gpu_types.join(', ')} (--gpu-type)`)
      return defined({
        name,
        default: name === machine.default_queue,
        allocation: q.allocation,
        maxNodes: q.max_nodes,
        maxDurationSeconds: q.max_duration,
        coresPerNode: q.cores_per_node,
        ramPerNodeMb: q.ram_per_node,
        gpusPerNode: q.gpus_per_node,
        gpuTypes: q.gpu_types,
        gpuCountPer: q.gpu_count,
        cpusMultipleOf: q.cpus_multiple_of,
        memMbFlag: q.mem_mb,
        maxJobsInQueue: q.max_jobs_in_queue,
        notes,
        shapes: (q.shapes ?? []).map((s) =>
          defined({label: s.label, maxNodes: s.max_nodes, coresPerNode: s.cores_per_node, ramPerNodeMb: s.ram_per_node, gpusPerNode: s.gpus_per_node})),
      })
    }),
  }
}
