import {batchSystem} from '../batch/index.js'
import {plural} from '../errors.js'
import {describeCharge} from './charge.js'
import type {Plan} from './plan.js'

/** What the request asks for, in words: "2 nodes", "8 CPUs and 16384 MB of memory on 1 node", ... */
export function describeResources(plan: Plan): string {
  const perNode: string[] = []
  if (plan.cpus !== undefined) perNode.push(plural(plan.cpus, 'CPU'))
  if (plan.memMb !== undefined && plan.queue.allocation !== 'node') perNode.push(`${plan.memMb} MB of memory`)
  if (plan.gpus) perNode.push(`${plural(plan.gpus.perNode, 'GPU')}${plan.gpus.type ? ` (${plan.gpus.type})` : ''}`)
  const nodes = plural(plan.nodes, 'node')
  if (plan.queue.allocation === 'node') {
    return plan.gpus ? `${nodes} with ${perNode.join(' and ')} each` : nodes
  }
  return `${perNode.join(' and ')} ${plan.nodes === 1 ? 'on 1 node' : `on each of ${nodes}`}`
}

/** How to change the resources on this kind of queue. */
function resourceFlags(plan: Plan): string {
  switch (plan.queue.allocation) {
    case 'node':
      return plan.queue.gpusPerNode === undefined ? '--nodes' : '--nodes (and --gpus)'
    case 'cores_or_ram':
      return plan.queue.gpusPerNode === undefined ? '--cpus and/or --mem_mb (and --nodes)' : '--cpus and/or --mem_mb, --gpus (and --nodes)'
    case 'gpu-shared':
      return '--gpus (and --gpu-type)'
  }
}

/** The dry-run paragraph: what would be asked for, and which flag changes what. */
export function describePlan(plan: Plan): string {
  const hours = (plan.lifetime / 3600).toFixed(2)
  const project = plan.project === undefined ? 'as the default project' : `charged to the project '${plan.project}'`
  const login = `${plan.login.user ? `${plan.login.user}@` : ''}${plan.login.host}`
  const lines = [
    `This will request ${describeResources(plan)} for ${hours} hours for an annex named '${plan.annexName}' ` +
      `from the queue '${plan.queue.name}' on the system '${plan.system.name}' (${project}).`,
    `To change the project, use --project. To change the resources requested, use ${resourceFlags(plan)}. ` +
      `To change how long the resources are reserved, use --lifetime.`,
    `Pilots that run no job for ${plan.idleTime} seconds shut down (--idle-time); jobs of ${plan.owners.join(', ')} may run on them (--owners).`,
    `It would log in to ${login} and ${batchSystem(plan.system.batch).describeRequest(plan)}.`,
    describeCharge(plan.charge),
  ]
  return lines.join('\n')
}
