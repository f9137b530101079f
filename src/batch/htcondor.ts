import {batchOptionText} from '../catalog/batch-options.js'
import type {Plan} from '../catalog/plan.js'
import {classadString, shellQuote} from '../quote.js'
import {awaitNoneListed, type BatchSystem} from './system.js'

/** An HTCondor pool (the PATh facility): condor_submit of one pilot job per node; found by the request id in its ad. */
export const htcondor: BatchSystem = {
  kind: 'htcondor',
  label: 'HTCondor',
  tools: {submit: 'condor_submit', query: 'condor_q', cancel: 'condor_rm'},
  backendTemplate: 'backend-htcondor.sh.hbs',
  jobTemplates: [{path: 'pilot.sub', template: 'pilot.sub.hbs', secret: true}],
  pilotScripts: ['pilot.sh'],
  detectsLoginOs: false,
  describeRequest(plan: Plan): string {
    return `submit the pilots with ${this.requestLine(plan)}`
  },
  requestLine(plan: Plan): string {
    const extra = (plan.batchOptions ?? []).map((option) => batchOptionText('htcondor', option))
    const size = [plan.cpus && `request_cpus = ${plan.cpus}`, plan.memMb && `request_memory = ${plan.memMb}`, ...extra].filter(Boolean).join(', ')
    return `condor_submit (${size})`
  },
  cancelJob: (jobId) => `condor_rm ${shellQuote(jobId)}`,
  awaitJobGone: (jobId) => [awaitNoneListed(`condor_q ${shellQuote(jobId)} -af ClusterId`)],
  cancelRequest(_annexName, requestId) {
    // Only the login user's own jobs (a user name among condor_q's arguments is ANDed with
    // -constraint), removed by their ids: a queue superuser's condor_rm -constraint would
    // reach other users' jobs too.
    const constraint = shellQuote(`hpc_annex_request_id == ${classadString(requestId)}`)
    return [
      `ids=$(condor_q "$(id -un)" -constraint ${constraint} -af ClusterId ProcId) || exit 3`,
      '[ -n "$ids" ] || exit 0',
      `ids=$(printf '%s\\n' "$ids" | sed -e 's/ /./')`,
      'condor_rm $ids >/dev/null || exit 4',
      `printf 'cancelled %s\\n' $ids`,
      awaitNoneListed(`condor_q "$(id -un)" -constraint ${constraint} -af ClusterId`),
    ]
  },
}
