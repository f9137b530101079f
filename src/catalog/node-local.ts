import type {PlanNodeLocal} from './plan.js'
import type {MachineFile, QueueDefinition} from './schema.js'

/** MB a node-local directory must have free, where the machine file says nothing. */
export const DEFAULT_NODE_LOCAL_MIN_FREE_MB = 4096

/**
 * Where a queue's pilots put job sandboxes: the queue's node_local_dir and
 * node_local_min_free_mb where it sets them, else the machine's. An empty
 * directory means none: sandboxes stay on shared scratch.
 */
export function nodeLocalOf(machine: Pick<MachineFile, 'node_local_dir' | 'node_local_min_free_mb'>, queue: Pick<QueueDefinition, 'node_local_dir' | 'node_local_min_free_mb'>): PlanNodeLocal {
  const dir = (queue.node_local_dir ?? machine.node_local_dir).trim()
  const minFreeMb = queue.node_local_min_free_mb ?? machine.node_local_min_free_mb
  return dir === '' ? {minFreeMb} : {dir, minFreeMb}
}
