// `hpc-annex status` over 100,000 slot ads, 1,000 request jobs and 20,000
// target jobs: wall time of parsing the condor_q/condor_status -json text,
// aggregating and formatting the table. The text is what the real tools
// print: the ads are written in ClassAd form and the release's own
// `condor_status -ads FILE -json` and `condor_q -jobads FILE -json` print
// them, with the projection and constraint status asks for (the same text
// they print when the collector and schedd answer). The baseline, in the same
// run: JSON.parse of that text.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {parseAds} from '../dist/condor/classad.js'
import {aggregateStatus, REQUEST_JOB_ATTRIBUTES, SLOT_ATTRIBUTES, TARGET_JOB_ATTRIBUTES} from '../dist/annex/status.js'
import {formatStatusTable} from '../dist/cli/status-text.js'
import {findRelease} from './access-point.js'
import {stats, timed} from './lib.js'

export const name = 'status'

const ANNEXES = 100
const SLOTS = 100_000
const REQUESTS = 1_000
const TARGET_JOBS = 20_000
const NOW = 1_800_000_000
const GOAL_MS = 500
const USER = 'alice@ap.example.org'

const str = (s) => JSON.stringify(s)
const globalJobId = (i) => `ap.example.org#${i + 1}.0#${NOW - 7200}`

/** The ads in ClassAd form, as a schedd's or collector's would hold them (plus attributes status does not ask for). */
function classAdFiles(dir) {
  const requestJobs = []
  for (let i = 0; i < REQUESTS; i++) {
    requestJobs.push([
      'MyType = "Job"', `ClusterId = ${i + 1}`, 'ProcId = 0', `JobStatus = ${i % 3 === 0 ? 2 : 1}`, `GlobalJobID = ${str(globalJobId(i))}`,
      `QDate = ${NOW - 7200}`, `Owner = "alice"`, 'JobUniverse = 12', `Cmd = "/usr/bin/hpc-annex"`,
      `hpc_annex_name = ${str(`annex${i % ANNEXES}`)}`, 'hpc_annex_nodes = "100"', 'hpc_annex_lifetime = "86400"', 'hpc_annex_PID = "4242"',
      `hpc_annex_PILOT_DIR = ${str(`/scratch/alice/.hpc-annex/pilots/${i}`)}`, `hpc_annex_JOB_ID = ${str(String(1000 + i))}`,
      `hpc_annex_JOB_ID_time = ${NOW - 7000}`, ...(i % 3 === 0 ? [`hpc_annex_start_time = ${NOW - 3600}`] : []),
    ].join('\n'))
  }
  const slots = []
  for (let i = 0; i < SLOTS; i++) {
    const request = i % REQUESTS
    slots.push([
      'MyType = "Machine"', `Name = ${str(`slot1@node${i}.cluster.example.org`)}`, `Machine = ${str(`node${i}.cluster.example.org`)}`,
      `AnnexName = ${str(`annex${request % ANNEXES}`)}`, `AuthenticatedIdentity = ${str(USER)}`, `hpc_annex_request_id = ${str(globalJobId(request))}`,
      'PartitionableSlot = true', 'TotalSlotCpus = 64', 'ChildCpus = { 4,4,8,1 }', 'Cpus = 47', `DaemonStartTime = ${NOW - 3600 + (i % 600)}`,
      'State = "Unclaimed"', 'Activity = "Idle"', 'Memory = 190000', 'Disk = 900000000', 'OpSys = "LINUX"', 'Arch = "X86_64"', 'CondorVersion = "$CondorVersion: 25.13.2 $"',
    ].join('\n'))
  }
  const targetJobs = []
  for (let i = 0; i < TARGET_JOBS; i++) {
    targetJobs.push([
      'MyType = "Job"', `ClusterId = ${5000 + i}`, 'ProcId = 0', `JobStatus = ${i % 2 ? 2 : 1}`, `TargetAnnexName = ${str(`annex${i % ANNEXES}`)}`,
      'Owner = "alice"', 'JobUniverse = 5', 'RequestCpus = 4', 'RequestMemory = 4096',
    ].join('\n'))
  }
  const files = {requestJobs: join(dir, 'request-jobs.ads'), slots: join(dir, 'slots.ads'), targetJobs: join(dir, 'target-jobs.ads')}
  writeFileSync(files.requestJobs, `${requestJobs.join('\n\n')}\n`)
  writeFileSync(files.slots, `${slots.join('\n\n')}\n`)
  writeFileSync(files.targetJobs, `${targetJobs.join('\n\n')}\n`)
  return files
}

/** What the real tools print for status's three queries of those ads (and how long each took). */
async function realText(release, files) {
  const env = {...process.env, CONDOR_CONFIG: '/dev/null', PATH: `${join(release.releaseDir, 'bin')}:${process.env.PATH}`}
  const run = async (tool, args) => {
    const r = await timed(tool, args, {env})
    if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
    return r
  }
  const requestJobs = await run('condor_q', ['-jobads', files.requestJobs, '-json', '-constraint', 'hpc_annex_name isnt undefined && JobStatus =!= 3', '-attributes', REQUEST_JOB_ATTRIBUTES.join(',')])
  const slots = await run('condor_status', ['-ads', files.slots, '-json', '-constraint', `AnnexName isnt undefined && AuthenticatedIdentity == ${str(USER)}`, '-attributes', SLOT_ATTRIBUTES.join(',')])
  const targetJobs = await run('condor_q', ['-jobads', files.targetJobs, '-json', '-constraint', 'TargetAnnexName isnt undefined', '-attributes', TARGET_JOB_ATTRIBUTES.join(',')])
  return {
    text: {requestJobs: requestJobs.stdout, slots: slots.stdout, targetJobs: targetJobs.stdout},
    toolMs: requestJobs.ms + slots.ms + targetJobs.ms,
  }
}

function wallMs(work) {
  const start = performance.now()
  work()
  return performance.now() - start
}

export async function run(options = {}) {
  const log = () => {}
  const release = await findRelease(log)
  const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-bench-status-'))
  let real
  try {
    real = await realText(release, classAdFiles(dir))
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  const {text} = real
  const bytes = text.requestJobs.length + text.slots.length + text.targetJobs.length
  let table = ''
  let report
  const baseline = () => {
    JSON.parse(text.requestJobs)
    JSON.parse(text.slots)
    JSON.parse(text.targetJobs)
  }
  const status = () => {
    report = {
      annexes: aggregateStatus({
        requestJobs: parseAds(text.requestJobs, 'condor_q'),
        slots: parseAds(text.slots, 'condor_status'),
        targetJobs: parseAds(text.targetJobs, 'condor_q'),
      }, NOW),
      time: NOW,
    }
    table = formatStatusTable(report)
  }
  for (let i = 0; i < 2; i++) {
    baseline()
    status()
  }
  // Honest input: every slot and request made it through the real tools and into the table.
  const slotCount = report.annexes.reduce((n, a) => n + a.nodes.joined, 0)
  if (report.annexes.length !== ANNEXES || !table.includes(`annex${ANNEXES - 1}`)) throw new Error(`the status table shows ${report.annexes.length} annexes, not ${ANNEXES}`)
  if (slotCount !== SLOTS) throw new Error(`status counted ${slotCount} joined nodes, not ${SLOTS}`)
  const rounds = options.quick ? 3 : 9
  const base = stats(Array.from({length: rounds}, () => wallMs(baseline)))
  const ours = stats(Array.from({length: rounds}, () => wallMs(status)))
  return {
    lines: [
      `input: ${SLOTS} slot ads, ${REQUESTS} request jobs, ${TARGET_JOBS} target jobs, ${ANNEXES} annexes: ${(bytes / 1e6).toFixed(1)} MB of -json text printed by HTCondor ${release.version}'s condor_status and condor_q (${(real.toolMs / 1000).toFixed(2)} s for the tools to print it)`,
      `baseline (JSON.parse of the same text): ${base.median.toFixed(0)} ms wall (median of ${rounds})`,
      `status (parse + aggregate + table):     ${ours.median.toFixed(0)} ms wall (median of ${rounds}), goal ≤ ${GOAL_MS} ms: ${ours.median <= GOAL_MS ? 'met' : 'NOT met'}`,
      `ratio: ${(ours.median / base.median).toFixed(2)}x the baseline`,
    ],
    results: {slots: SLOTS, bytes, baselineMs: base, statusMs: ours, toolMs: real.toolMs, goalMs: GOAL_MS},
  }
}
