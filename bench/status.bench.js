// `hpc-annex status` over 10,000 slot ads and 1,000 request jobs: CPU time of
// parsing condor_q/condor_status -json output, aggregating and formatting,
// against a baseline measured in the same run (JSON.parse of the same text).
import {cpuUsage} from 'node:process'

import {parseAds} from '../dist/condor/classad.js'
import {aggregateStatus} from '../dist/annex/status.js'
import {formatStatusTable} from '../dist/cli/status-text.js'
import {formatJsonAds} from '../test/fixtures/fake-condor/lib/classad.mjs'

export const name = 'status'

const ANNEXES = 100
const SLOTS = 10_000
const REQUESTS = 1_000
const TARGET_JOBS = 20_000
const NOW = 1_800_000_000

function inputs() {
  const requestJobs = []
  for (let i = 0; i < REQUESTS; i++) {
    requestJobs.push({
      ClusterId: i + 1, ProcId: 0, JobStatus: i % 3 === 0 ? 1 : 2, GlobalJobID: `ap@vm#${i + 1}.0#${NOW - 7200}`,
      hpc_annex_name: `annex${i % ANNEXES}`, hpc_annex_nodes: '10', hpc_annex_lifetime: '86400',
      hpc_annex_PID: '1', hpc_annex_JOB_ID: String(1000 + i), ...(i % 3 === 0 ? {hpc_annex_start_time: NOW - 3600} : {}),
    })
  }
  const slots = []
  for (let i = 0; i < SLOTS; i++) {
    const request = i % REQUESTS
    slots.push({
      Activity: 'Busy', AnnexName: `annex${request % ANNEXES}`, AuthenticatedIdentity: 'me@vm', ChildCpus: [4, 4, 8, 1], Cpus: 47,
      DaemonStartTime: NOW - 3600 + (i % 600), hpc_annex_request_id: `ap@vm#${request + 1}.0#${NOW - 7200}`, IsAnnex: true,
      Name: `slot1@node${i}.cluster.example.org`, PartitionableSlot: true, State: 'Claimed', TotalSlotCpus: 64,
    })
  }
  const targetJobs = []
  for (let i = 0; i < TARGET_JOBS; i++) targetJobs.push({ClusterId: 5000 + i, ProcId: 0, JobStatus: i % 2 ? 2 : 1, TargetAnnexName: `annex${i % ANNEXES}`})
  return {requestJobs: formatJsonAds(requestJobs), slots: formatJsonAds(slots), targetJobs: formatJsonAds(targetJobs)}
}

function cpuMs(work) {
  const start = cpuUsage()
  work()
  const used = cpuUsage(start)
  return (used.user + used.system) / 1000
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

export async function run() {
  const text = inputs()
  const bytes = text.requestJobs.length + text.slots.length + text.targetJobs.length
  let table = ''
  const baseline = () => {
    JSON.parse(text.requestJobs)
    JSON.parse(text.slots)
    JSON.parse(text.targetJobs)
  }
  const status = () => {
    const report = {
      annexes: aggregateStatus({
        requestJobs: parseAds(text.requestJobs, 'condor_q'),
        slots: parseAds(text.slots, 'condor_status'),
        targetJobs: parseAds(text.targetJobs, 'condor_q'),
      }, NOW),
      time: NOW,
    }
    table = formatStatusTable(report)
  }
  for (let i = 0; i < 3; i++) {
    baseline()
    status()
  }
  const rounds = 15
  const base = median(Array.from({length: rounds}, () => cpuMs(baseline)))
  const ours = median(Array.from({length: rounds}, () => cpuMs(status)))
  if (!table.includes('annex99')) throw new Error('the status table lost an annex')
  return [
    `input: ${SLOTS} slot ads, ${REQUESTS} request jobs, ${TARGET_JOBS} target jobs, ${ANNEXES} annexes (${(bytes / 1e6).toFixed(1)} MB of -json text)`,
    `baseline (JSON.parse of the same text): ${base.toFixed(1)} ms CPU (median of ${rounds})`,
    `status (parse + aggregate + table):     ${ours.toFixed(1)} ms CPU (median of ${rounds})`,
    `ratio: ${(ours / base).toFixed(2)}x the baseline`,
  ]
}
