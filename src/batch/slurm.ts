import {batchOptionText} from '../catalog/batch-options.js'
import type {Plan} from '../catalog/plan.js'
import {shellQuote} from '../quote.js'
import {awaitNoneListed, batchJobName, type BatchSystem} from './system.js'

/** SLURM: sbatch of one multi-node job whose tasks are the pilots; found by its job name. */
export const slurm: BatchSystem = {
  kind: 'slurm',
  label: 'SLURM',
  tools: {submit: 'sbatch', query: 'squeue', cancel: 'scancel'},
  backendTemplate: 'backend-slurm.sh.hbs',
  jobTemplates: [
    {path: 'batch.slurm', template: 'batch.slurm.hbs', secret: false},
    {path: 'node-local.sh', template: 'node-local.sh.hbs', secret: false},
  ],
  pilotScripts: ['pilot.sh', 'launcher.sh'],
  detectsLoginOs: true,
  describeRequest(plan: Plan): string {
    return `submit: ${this.requestLine(plan)}`
  },
  requestLine(plan: Plan): string {
    const parts = [...plan.queueArgument, `--nodes=${plan.nodes}`]
    if (plan.cpus !== undefined) parts.push(`--cpus-per-task=${plan.cpus}`)
    if (plan.memMb !== undefined) parts.push(`--mem=${plan.memMb}M`)
    if (plan.gpus) parts.push(`${plan.gpus.flag}=${plan.gpus.value}`)
    if (plan.constraint) parts.push(`--constraint=${plan.constraint}`)
    parts.push(`--time=${Math.ceil(plan.lifetime / 60)}`)
    if (plan.project) parts.push(`--account=${plan.project}`)
    for (const option of plan.batchOptions ?? []) parts.push(batchOptionText('slurm', option))
    return `sbatch ${parts.join(' ')}`
  },
  cancelJob: (jobId) => `scancel -- ${shellQuote(jobId)}`,
  awaitJobGone: (jobId) => [awaitNoneListed(`squeue --noheader --jobs=${shellQuote(jobId)} --format=%i`)],
  cancelRequest(annexName, requestId) {
    const name = shellQuote(batchJobName(annexName, requestId))
    const list = `squeue --noheader --user="$(id -un)" --name=${name} --format=%i`
    return [`ids=$(${list}) || exit 3`, '[ -n "$ids" ] || exit 0', `scancel --user="$(id -un)" --name=${name} || exit 4`, `printf 'cancelled %s\\n' $ids`, awaitNoneListed(list)]
  },
}
