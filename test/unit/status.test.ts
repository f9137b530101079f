import {spawn} from 'node:child_process'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {recordControlValues} from '../../src/annex/state-job.js'
import {aggregateStatus, collectStatus, requestState} from '../../src/annex/status.js'
import {formatStatusParagraph, formatStatusTable} from '../../src/cli/status-text.js'
import {AnnexError} from '../../src/errors.js'
import {createFakeCondor, type Ad, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import type {StatusOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'
import {runCli} from './helpers/cli.js'

const NOW = 1_800_000_000
let fake: FakeCondor
let restore: () => void

/**
 * A pool with several annexes and requests in every state:
 *  alpha — granted request with two partitionable slots (busy CPUs) + a dynamic
 *          slot, a submitted request not yet joined, a retired one; 3 jobs, 2 running;
 *  beta  — requested and submitting, nothing joined; 1 idle job;
 *  gamma — pilots whose request job has left the queue (lifetime unknown);
 *  plus another user's request and slot, which must not show.
 */
function seedPool(f: FakeCondor) {
  const me = `${f.user}@vm`
  const r1 = f.addJob({hpc_annex_name: 'alpha', hpc_annex_request_id: {$expr: 'GlobalJobID'}, hpc_annex_nodes: '2', hpc_annex_lifetime: '7200', hpc_annex_PID: '11', hpc_annex_PILOT_DIR: '/p', hpc_annex_JOB_ID: '101', hpc_annex_start_time: NOW - 3500, JobStatus: 1})
  f.addJob({hpc_annex_name: 'alpha', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_PID: '12', hpc_annex_JOB_ID: '102', JobStatus: 2, QDate: NOW - 60})
  f.addJob({hpc_annex_name: 'alpha', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_JOB_ID: '103', hpc_annex_start_time: NOW - 90000, JobStatus: 1})
  f.addJob({hpc_annex_name: 'beta', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', JobStatus: 2})
  f.addJob({hpc_annex_name: 'beta', hpc_annex_nodes: '3', hpc_annex_lifetime: '3600', hpc_annex_PID: '77', JobStatus: 2})
  f.addJob({hpc_annex_name: 'alpha', hpc_annex_nodes: '50', Owner: 'someoneelse'})
  for (const status of [2, 2, 1]) f.addJob({TargetAnnexName: 'alpha', JobStatus: status})
  f.addJob({TargetAnnexName: 'beta', JobStatus: 1})
  f.addJob({TargetAnnexName: 'nowhere', JobStatus: 2})
  const slot = (extra: Ad): Ad => ({MyType: 'Machine', IsAnnex: true, AuthenticatedIdentity: me, State: 'Unclaimed', Activity: 'Idle', ...extra})
  f.advertise([
    slot({Name: 'slot1@n1', AnnexName: 'alpha', hpc_annex_request_id: r1.GlobalJobID, PartitionableSlot: true, TotalSlotCpus: 16, Cpus: 8, ChildCpus: [4, 4], DaemonStartTime: NOW - 3600}),
    slot({Name: 'slot1_1@n1', AnnexName: 'alpha', hpc_annex_request_id: r1.GlobalJobID, DynamicSlot: true, Cpus: 4, DaemonStartTime: NOW - 3600}),
    // HTCondor's Python tool spells these TotalSlotCPUs / ChildCPUs: names are case-insensitive.
    slot({Name: 'slot1@n2', AnnexName: 'alpha', hpc_annex_request_id: r1.GlobalJobID, PartitionableSlot: true, TotalSlotCPUs: 16, ChildCPUs: [1], DaemonStartTime: NOW - 3000}),
    slot({Name: 'slot1@g1', AnnexName: 'gamma', hpc_annex_request_id: 'ap@vm#900.0#1', PartitionableSlot: true, TotalSlotCpus: 8, ChildCpus: [], DaemonStartTime: NOW - 600}),
    slot({Name: 'slot1@x1', AnnexName: 'alpha', hpc_annex_request_id: r1.GlobalJobID, PartitionableSlot: true, TotalSlotCpus: 64, ChildCpus: [], AuthenticatedIdentity: 'someoneelse@vm'}),
    {MyType: 'DaemonMaster', Name: 'n1', AnnexName: 'alpha', AuthenticatedIdentity: me},
    {MyType: 'DaemonMaster', Name: 'n2', AnnexName: 'alpha', AuthenticatedIdentity: me},
    {MyType: 'DaemonMaster', Name: 'g1', AnnexName: 'gamma', AuthenticatedIdentity: me},
  ])
}

beforeEach(() => {
  fake = createFakeCondor()
  restore = fake.install()
  seedPool(fake)
})
afterEach(() => {
  restore()
  fake.cleanup()
})

describe('status over a fake pool', () => {
  it('aggregates requests, nodes, CPUs and jobs per annex', async () => {
    const report = await collectStatus({now: () => NOW})
    expect(report.annexes.map((a) => a.name)).toEqual(['alpha', 'beta', 'gamma'])
    const [alpha, beta, gamma] = report.annexes
    expect(alpha).toMatchObject({
      established: true,
      nodes: {requested: 4, joined: 2},
      cpus: {total: 32, busy: 9},
      jobs: {total: 3, running: 2},
      requests: {total: 3, pending: 1, active: 1, retired: 1},
      oldest: {ageSeconds: 3600, retiresInSeconds: 3600},
      youngest: {ageSeconds: 3000, retiresInSeconds: 4200},
    })
    expect(alpha!.requestList.map((r) => r.state)).toEqual(['granted', 'submitted', 'granted'])
    expect(beta).toMatchObject({established: false, nodes: {requested: 4, joined: 0}, cpus: {total: 0, busy: 0}, jobs: {total: 1, running: 0}, requests: {total: 2, pending: 2, active: 0, retired: 0}})
    expect(beta!.requestList.map((r) => r.state)).toEqual(['requested', 'submitting'])
    expect(gamma).toMatchObject({established: true, nodes: {requested: 0, joined: 1}, cpus: {total: 8, busy: 0}, requests: {total: 1, active: 1}})
    expect(gamma!.oldest).toEqual({requestId: 'ap@vm#900.0#1', ageSeconds: 600})
  })

  it('with a name, only that annex; the status token is gone afterwards', async () => {
    const report = await collectStatus({name: 'beta', now: () => NOW})
    expect(report.annexes.map((a) => a.name)).toEqual(['beta'])
    const fetch = fake.calls().find((c) => c.tool === 'condor_token_fetch')!
    // A token file of this run's own: status.<user>@<domain>.<host>.<pid>.<random>.
    expect(fetch.argv[fetch.argv.indexOf('-token') + 1]).toMatch(new RegExp(`^status\\.${fake.user}@vm\\.[^.]+\\.${process.pid}\\.[0-9a-f]{12}$`))
    expect(fake.tokenFiles()).toEqual([])
    const status = fake.calls().find((c) => c.tool === 'condor_status')!
    expect(status.argv).toEqual(expect.arrayContaining(['-constraint', `AnnexName == "beta" && AuthenticatedIdentity == "${fake.user}@vm"`]))
  })

  it('the table: one line per annex', async () => {
    const text = formatStatusTable(await collectStatus({now: () => NOW}))
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^ANNEX\s+STATE\s+NODES JOINED\/ASKED\s+CPUS BUSY\/TOTAL\s+JOBS RUNNING\/TOTAL/)
    expect(lines[1]).toMatch(/^alpha\s+established\s+2\/4\s+9\/32\s+2\/3\s+1\/1\/1\s+1\.00\s+1\.00$/)
    expect(lines[2]).toMatch(/^beta\s+not established\s+0\/4\s+0\/0\s+0\/1\s+2\/0\/0\s+-\s+-$/)
    expect(lines[3]).toMatch(/^gamma\s+established\s+1\/0\s+0\/8/)
    expect(text).toContain('hpc-annex status NAME')
  })

  it('the paragraph for one annex, in HTCondor\'s words', async () => {
    expect(formatStatusParagraph(await collectStatus({name: 'alpha', now: () => NOW}))).toBe([
      "Annex 'alpha' is established.",
      'Its oldest established request is about 1.00 hours old and will retire in 1.00 hours.',
      'You requested 4 nodes for this annex, of which 2 are in an established annex.',
      'There are 32 CPUs in the established annex, of which 9 are busy.',
      '3 jobs must run on this annex, and 2 currently are.',
      'You requested resources for this annex 3 times; 1 are pending, 1 comprise the established annex, and 1 have retired.',
    ].join('\n'))
    expect(formatStatusParagraph(await collectStatus({name: 'gamma', now: () => NOW}))).toMatch(/^Found no jobs targeting annex 'gamma'\.\nAnnex 'gamma' is established\.\nIts oldest established request is about 0\.17 hours old\.\n/)
    expect(formatStatusParagraph(await collectStatus({name: 'zeta', now: () => NOW}))).toBe("Found no established or requested annexes named 'zeta'.")
  })

  it('a request id from the state job is GlobalJobID, never the /Expr/ text', async () => {
    const report = await collectStatus({name: 'alpha', now: () => NOW})
    for (const request of report.annexes[0]!.requestList) expect(request.requestId).toMatch(/^ap@vm#\d+\.0#\d+$/)
  })

  it('refuses a bad annex name before running any tool', async () => {
    await expect(collectStatus({name: 'x" || true || "'})).rejects.toThrow(/annex name/)
    expect(fake.calls()).toEqual([])
  })

  it('refuses when annexes are not enabled', async () => {
    fake.update((s) => {
      delete s.config.HPC_ANNEX_ENABLED
    })
    const error = await collectStatus().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).message).toBe('HPC Annex functionality has not been enabled by your HTCondor administrator.')
  })
})

describe('requestState', () => {
  it.each([
    [{}, 'requested'],
    [{hpc_annex_PID: '1'}, 'submitting'],
    [{hpc_annex_PID: '1', hpc_annex_PILOT_DIR: '/d'}, 'submitting'],
    [{hpc_annex_JOB_ID: '5', JobStatus: 2}, 'submitted'],
    [{hpc_annex_JOB_ID: '5', JobStatus: 1}, 'granted'],
    [{hpc_annex_start_time: 5}, 'granted'],
    [{hpc_annex_start_time: null, hpc_annex_PID: null}, 'requested'],
  ])('%j is %s', (job, state) => {
    expect(requestState(job)).toBe(state)
  })
})

describe('aggregateStatus', () => {
  it('counts a lingering pilot of an earlier request under its own request, not the new one', () => {
    const [annex] = aggregateStatus({
      requestJobs: [{hpc_annex_name: 'a', GlobalJobID: 'ap@vm#2.0#5', ClusterId: 2, ProcId: 0, hpc_annex_nodes: '1', JobStatus: 2, hpc_annex_JOB_ID: '9'}],
      slots: [{AnnexName: 'a', hpc_annex_request_id: 'ap@vm#1.0#1', PartitionableSlot: true, TotalSlotCpus: 4, ChildCpus: [], DaemonStartTime: 10}],
      targetJobs: [],
    }, 100)
    expect(annex!.requests).toEqual({total: 2, pending: 1, active: 1, retired: 0})
    expect(annex!.requestList.find((r) => r.requestId === 'ap@vm#2.0#5')).toMatchObject({nodesJoined: 0, state: 'submitted', batchJobId: '9'})
  })
})

describe('what an annex has charged', () => {
  const job = (id: number, extra: Ad) => ({hpc_annex_name: 'c', GlobalJobID: `ap@vm#${id}.0#1`, ClusterId: id, ProcId: 0, JobStatus: 1, hpc_annex_JOB_ID: String(id), ...extra})
  const pilot = (request: number, start: number) => ({AnnexName: 'c', hpc_annex_request_id: `ap@vm#${request}.0#1`, PartitionableSlot: true, TotalSlotCpus: 128, ChildCpus: [], DaemonStartTime: start})
  const NOW_C = 100_000

  it('counts each pilot from its own start, the rest of the lifetime, and nodes not yet joined, per request and per annex', () => {
    const [annex] = aggregateStatus({
      requestJobs: [
        // 2 nodes × 128 SUs/node-hour for 2 h: one pilot 30 min in, one not joined yet.
        job(1, {hpc_annex_nodes: '2', hpc_annex_lifetime: '7200', hpc_annex_charge_rate: '128', hpc_annex_charge_unit: 'SU'}),
        // Its pilots gone after its lifetime: every node from the request's start, capped at the lifetime.
        job(2, {hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_charge_rate: '8', hpc_annex_charge_unit: 'SU', hpc_annex_start_time: NOW_C - 9000}),
        // Made by HTCondor's tool (or on a queue of unknown charge): no rate.
        job(3, {hpc_annex_nodes: '1', hpc_annex_lifetime: '3600'}),
      ],
      slots: [pilot(1, NOW_C - 1800)],
      targetJobs: [],
    }, NOW_C)
    const byId = new Map(annex!.requestList.map((r) => [r.requestId, r]))
    expect(byId.get('ap@vm#1.0#1')!.charge).toEqual({unit: 'SU', ratePerNodeHour: 128, chargedSoFar: 64, mostStillToCharge: 192 + 256})
    expect(byId.get('ap@vm#2.0#1')!.charge).toEqual({unit: 'SU', ratePerNodeHour: 8, chargedSoFar: 8, mostStillToCharge: 0})
    expect(byId.get('ap@vm#3.0#1')!.charge).toBeUndefined()
    expect(annex!.charges).toEqual([{unit: 'SU', chargedSoFar: 72, mostStillToCharge: 448}])
    expect(annex!.unchargedRequests).toBe(1)
    expect(formatStatusParagraph({name: 'c', annexes: [annex!], time: NOW_C})).toContain(
      "Annex 'c' has charged 72 SUs so far and can charge at most 448 SUs more (and 1 request of unknown charge).\nRequest ap@vm#1.0#1 has charged 64 SUs so far and can charge at most 448 SUs more.",
    )
  })
})

describe('a batch job whose pilots have not joined', () => {
  const HINT = /^batch job 4242 was submitted (\d+) minutes ago and none of its pilots has joined: the job may still be queued, or its pilots cannot reach the annex collector\. Look at: hpc-annex logs delta$/

  /** delta: one request per case, submitted `age` seconds before NOW (by QDate, or by when its JOB_ID was recorded). */
  function seedDelta(f: FakeCondor) {
    const request = (extra: Ad) => f.addJob({hpc_annex_name: 'delta', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_PID: '1', JobStatus: 1, ...extra})
    return {
      stuck: request({hpc_annex_JOB_ID: '4242', QDate: NOW - 7200, hpc_annex_JOB_ID_time: NOW - 720}),
      byQDate: request({hpc_annex_JOB_ID: '4243', QDate: NOW - 400}),
      recent: request({hpc_annex_JOB_ID: '4244', QDate: NOW - 7200, hpc_annex_JOB_ID_time: NOW - 120}),
      joined: request({hpc_annex_JOB_ID: '4245', QDate: NOW - 7200}),
      retired: request({hpc_annex_JOB_ID: '4246', QDate: NOW - 7200, hpc_annex_start_time: NOW - 5000}),
      notSubmitted: request({QDate: NOW - 7200}),
    }
  }

  it('after 5 minutes with no pilot ads, says to look at its logs, and why; in --json, per request', async () => {
    const jobs = seedDelta(fake)
    fake.advertise({MyType: 'Machine', IsAnnex: true, AuthenticatedIdentity: `${fake.user}@vm`, Name: 'slot1@d1', AnnexName: 'delta', hpc_annex_request_id: jobs.joined.GlobalJobID, PartitionableSlot: true, TotalSlotCpus: 4, ChildCpus: [], DaemonStartTime: NOW - 30})
    const report = await collectStatus({name: 'delta', now: () => NOW})
    const requests = new Map(report.annexes[0]!.requestList.map((r) => [r.batchJobId, r]))
    expect(requests.get('4242')).toMatchObject({submittedAt: NOW - 720, hint: expect.stringMatching(HINT)})
    expect(HINT.exec(requests.get('4242')!.hint!)![1]).toBe('12')
    expect(requests.get('4243')).toMatchObject({submittedAt: NOW - 400, hint: expect.stringContaining('batch job 4243 was submitted 6 minutes ago')})
    for (const quiet of ['4244', '4245', '4246', undefined]) expect(requests.get(quiet)?.hint, String(quiet)).toBeUndefined()

    const paragraph = formatStatusParagraph(report)
    expect(paragraph).toContain('\nRequest ')
    const advice = paragraph.split('\n').filter((l) => l.endsWith('Look at: hpc-annex logs delta'))
    expect(advice).toHaveLength(2)
    expect(advice[0]).toBe(`Request ${jobs.stuck.GlobalJobID}: ${requests.get('4242')!.hint!}`)
    const table = formatStatusTable(await collectStatus({now: () => NOW}))
    expect(table).toContain(`\nAnnex 'delta', request ${jobs.stuck.GlobalJobID}: ${requests.get('4242')!.hint!}\n`)
  })

  it('the state job records when the batch job id came, for this', async () => {
    const job = fake.addJob({hpc_annex_name: 'delta'})
    const before = Math.floor(Date.now() / 1000)
    await recordControlValues({jobId: `${job.ClusterId}.0`}, {PID: '1'})
    expect(fake.state().jobs[0]!.hpc_annex_JOB_ID_time).toBeUndefined()
    await recordControlValues({jobId: `${job.ClusterId}.0`}, {JOB_ID: '4242'})
    const recorded = fake.state().jobs.find((j) => j.ClusterId === job.ClusterId)!
    expect(recorded.hpc_annex_JOB_ID).toBe('4242')
    expect(recorded.hpc_annex_JOB_ID_time).toBeGreaterThanOrEqual(before)
    expect(recorded.hpc_annex_JOB_ID_time).toBeLessThanOrEqual(Math.floor(Date.now() / 1000))
  })

  it('hpc-annex status prints the advice; --json carries it on the request', {timeout: 60_000}, () => {
    const now = Math.floor(Date.now() / 1000)
    fake.addJob({hpc_annex_name: 'delta', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_JOB_ID: '4242', QDate: now - 900})
    const env = {...fake.env, HOME: fake.dir}
    const one = runCli(['status', 'delta'], env)
    expect(one.status).toBe(0)
    expect(one.stdout).toMatch(/^Request \S+: batch job 4242 was submitted 15 minutes ago and none of its pilots has joined: .* Look at: hpc-annex logs delta$/m)
    const json = expectContract('status', runCli(['status', 'delta', '--json'], env).stdout) as StatusOutput
    expect(json.annexes[0]!.requestList[0]).toMatchObject({batchJobId: '4242', submittedEpochSeconds: now - 900, hint: expect.stringMatching(/^batch job 4242 was submitted 15 minutes ago/)})
  })
})

describe('hpc-annex status', {timeout: 60_000}, () => {
  const env = () => ({...fake.env, HOME: fake.dir})

  it('prints the table, or a paragraph, and --json gives the same data', () => {
    const table = runCli(['status'], env())
    expect(table.status).toBe(0)
    expect(table.stdout).toMatch(/^ANNEX/)
    expect(table.stdout).toMatch(/\nalpha\s+established\s+2\/4\s+9\/32/)
    const one = runCli(['status', 'beta'], env())
    expect(one.stdout).toContain("Annex 'beta' is not established.")
    const json = runCli(['status', '--json'], env())
    expect(json.status).toBe(0)
    const report = expectContract('status', json.stdout) as StatusOutput
    expect(report.annexes.map((a) => a.annexName)).toEqual(['alpha', 'beta', 'gamma'])
    expect(report.annexes[0]).toMatchObject({cpus: {total: 32, busy: 9}, jobs: {total: 3, running: 2}})
  })

  it('exits 2 with HTCondor\'s refusal and a hint when annexes are not enabled', () => {
    fake.update((s) => {
      s.config.HPC_ANNEX_ENABLED = 'false'
    })
    const result = runCli(['status'], env())
    expect(result.status).toBe(2)
    expect(result.stderr).toBe("Error: HPC Annex functionality has not been enabled by your HTCondor administrator.\nTry: ask your HTCondor administrator to run 'hpc-annex admin check' on this Access Point\n")
  })

  it('exits 2 naming the tool when HTCondor is not installed', () => {
    const result = runCli(['status'], {FAKE_CONDOR_STATE: fake.dir, PATH: '/usr/bin:/bin'})
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/^Error: condor_config_val was not found/)
  })

  it('--watch refuses without a terminal, and with --json', () => {
    expect(runCli(['status', '--watch'], env())).toMatchObject({status: 1, stderr: expect.stringMatching(/--watch needs a terminal/)})
    expect(runCli(['status', '--watch', '--json'], env()).status).toBe(1)
  })

  it('--watch refreshes on a terminal until interrupted', async () => {
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
    const child = spawn('script', ['-qfec', `${process.execPath} ${bin} status --watch --interval 2`, '/dev/null'], {env: {...process.env, ...env()}})
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`no second refresh; got ${out}`)), 30_000)
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if ((out.match(/alpha\s+established/g) ?? []).length >= 2) {
          clearTimeout(guard)
          resolve()
        }
      })
    })
    child.kill('SIGTERM')
    expect(out.split('\u001b[2J').length).toBeGreaterThanOrEqual(3)
    expect(out.match(/Ctrl-C to stop/g)?.length).toBeGreaterThanOrEqual(2)
  })
})
