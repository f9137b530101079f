/**
 * What runs killed outright leave, swept by the next run, and what a failed
 * create says it undid. Against the fake condor tools and a local "login
 * node" (a private HOME: no other run shares it).
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {createAnnex, type CreateRequest} from '../../src/annex/create.js'
import {creatorGone, thisRun} from '../../src/annex/creator.js'
import {sweepOrphanedRequests} from '../../src/annex/orphans.js'
import {collectStatus} from '../../src/annex/status.js'
import {describeResult} from '../../src/cli/annex-request.js'
import {formatStatusTable} from '../../src/cli/status-text.js'
import {AnnexError} from '../../src/errors.js'
import {sha256File} from '../../src/backend/index.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {LocalTransport} from '../fixtures/local-transport.js'
import {fakeCondorTarball, makeStubs, planFor, tempDir} from './render-helpers.js'

/** A pid no process has: pids are below pid_max. */
const NO_PID = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim())

let fake: FakeCondor
let restore: () => void
let work: string
let stubs: string
let home: string
let transport: LocalTransport
let tarball: {path: string; sha256: string}

beforeEach(async () => {
  fake = createFakeCondor()
  restore = fake.install()
  fake.advertise({MyType: 'Scheduler', Name: 'ap.example.org', MyAddress: '<127.0.0.1:9618>'})
  fake.update((state) => {
    state.config.HPC_ANNEX_REQUIRE_JOB = 'false'
  })
  work = tempDir('leftovers')
  stubs = makeStubs()
  home = join(work, 'home')
  mkdirSync(home)
  process.env.HOME = join(work, 'ap-home')
  transport = new LocalTransport({PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: join(work, 'scratch'), USER: 'alice'}, home)
  const path = fakeCondorTarball(work)
  tarball = {path, sha256: await sha256File(path)}
})
afterEach(() => {
  delete process.env.FAKE_CONDOR_FAULT
  restore()
  fake.cleanup()
  rmSync(work, {recursive: true, force: true})
  rmSync(stubs, {recursive: true, force: true})
})

function request(overrides: Partial<CreateRequest> = {}): CreateRequest {
  return {
    verb: 'create',
    plan: planFor({target: 'wholenode@anvil', nodes: '2', name: 'demo'}),
    transport: () => transport,
    interaction: {answer: async () => { throw new Error('no prompts expected') }},
    condorTarball: tarball,
    stallTimeout: 30,
    signal: new AbortController().signal,
    output: 'silent',
    ...overrides,
  }
}

const stateJobs = (name = 'demo') => fake.state().jobs.filter((job) => job.hpc_annex_name === name)

describe('the login node: temporary directories that killed runs left', () => {
  it('a back-end removes those whose run is gone, or that are a day old, and says so; a live run\'s stays', async () => {
    const tmp = join(home, '.hpc-annex', 'tmp')
    const host = execFileSync('uname', ['-n'], {encoding: 'utf8'}).trim()
    const dir = (name: string, owner?: string, daysOld = 0) => {
      const path = join(tmp, name)
      mkdirSync(path, {recursive: true})
      writeFileSync(join(path, 'token'), 'a token')
      if (owner !== undefined) writeFileSync(join(path, '.owner'), `${owner}\n`)
      const then = new Date(Date.now() - daysOld * 86_400_000)
      utimesSync(path, then, then)
    }
    dir('bundle.killed01', `${host} ${NO_PID}`)
    dir('bundle.running1', `${host} ${process.pid}`)
    dir('bundle.oldnone1', undefined, 2)
    dir('bundle.newnone1')
    dir('bundle.elsewhr1', `login2.example.org ${NO_PID}`)
    dir('bundle.elsewhr2', `login2.example.org ${NO_PID}`, 2)

    const result = await createAnnex(request())

    expect(readdirSync(tmp).sort()).toEqual(['bundle.elsewhr1', 'bundle.newnone1', 'bundle.running1'])
    const notice = `removed 3 temporary directories that killed hpc-annex runs left in ~/.hpc-annex/tmp on ${host}`
    expect(result.notices).toEqual([notice])
    expect(describeResult(result).split('\n')).toContain(`note: ${notice}`)
  })
})

describe('the Access Point: state jobs that killed runs left', () => {
  const host = hostname()

  it('a run is known by host, pid and start: gone once its process is, or a later one has its pid', () => {
    const me = thisRun()
    expect(me.startsWith(`${host} ${process.pid} `)).toBe(true)
    expect(creatorGone(me)).toBe(false)
    const [, , start, run] = me.split(' ')
    expect(creatorGone(`${host} ${NO_PID} ${start} ${run}`)).toBe(true)
    expect(creatorGone(`${host} ${process.pid} 00000000-0000-0000-0000-000000000000:1 ${run}`)).toBe(true)
    expect(creatorGone(`login2.example.org ${NO_PID} ${start} ${run}`)).toBeUndefined()
    expect(creatorGone(`${host} ${NO_PID} - ${run}`)).toBeUndefined()
    expect(creatorGone('garbage')).toBeUndefined()
  })

  it('the next run removes the state job of a killed create that never got a batch job, says so, and the same create goes on', async () => {
    const start = thisRun().split(' ')[2]
    const killed = fake.addJob({hpc_annex_name: 'demo', hpc_annex_creator: `${host} ${NO_PID} ${start} 0a0a0a0a0a0a`})
    // Kept: a run still going, a run on another machine, a request that got its batch job, a finished --bundle request.
    const kept = [
      fake.addJob({hpc_annex_name: 'other', hpc_annex_creator: thisRun()}),
      fake.addJob({hpc_annex_name: 'other', hpc_annex_creator: `login2.example.org ${NO_PID} ${start} 0b0b0b0b0b0b`}),
      fake.addJob({hpc_annex_name: 'other', hpc_annex_creator: `${host} ${NO_PID} ${start} 0c0c0c0c0c0c`, hpc_annex_JOB_ID: '17'}),
      fake.addJob({hpc_annex_name: 'other'}),
    ]

    const result = await createAnnex(request())

    const line = `removed the state job that hpc-annex runs killed on this machine left: ${killed.ClusterId}.0 (annex 'demo', pid ${NO_PID})`
    expect(result.notices).toContain(line)
    expect(describeResult(result).split('\n')).toContain(`note: ${line}`)
    expect(fake.state().history.find((j) => j.ClusterId === killed.ClusterId)?.RemoveReason).toMatch(/^hpc-annex: the run that submitted this state job \(pid \d+ on .*\) was killed/)
    expect(stateJobs().map((j) => j.ClusterId)).toEqual([Number(result.stateJobId.split('.')[0])])
    expect(stateJobs('other').map((j) => j.ClusterId)).toEqual(kept.map((j) => j.ClusterId))
    // The state job of a finished create keeps its creator (it has its batch job id); nothing more to sweep.
    expect(await sweepOrphanedRequests()).toBeUndefined()
  })

  it('a --bundle request: its run clears hpc_annex_creator once the bundle is written (it gets no batch job id here)', async () => {
    const bundleFile = join(work, 'demo.tar')
    const result = await createAnnex(request({bundleFile}))
    const [job] = stateJobs()
    expect(`${job!.ClusterId}.0`).toBe(result.stateJobId)
    expect(job!.hpc_annex_creator ?? null).toBeNull()
    expect(await sweepOrphanedRequests()).toBeUndefined()
  })

  it('status removes it too, and says so before its table', async () => {
    const start = thisRun().split(' ')[2]
    fake.addJob({hpc_annex_name: 'demo', hpc_annex_creator: `${host} ${NO_PID} ${start} 0d0d0d0d0d0d`})
    const report = await collectStatus()
    expect(report.notices).toHaveLength(1)
    expect(formatStatusTable(report).split('\n')[0]).toMatch(/^note: removed the state job that hpc-annex runs killed on this machine left: \d+\.0 \(annex 'demo', pid \d+\)$/)
    expect(stateJobs()).toEqual([])
    expect(report.annexes).toEqual([])
  })
})

describe('what a failed create says it undid', () => {
  it('a condor_submit that made no state job: none is said to be removed', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_submit:fail'
    const error = await createAnnex(request()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    const text = (error as AnnexError).message
    expect(text).toMatch(/^Submitting the state job for demo failed: /)
    expect(text).not.toContain('state job (')
    expect(text).not.toMatch(/removed the state job/)
    expect(stateJobs()).toEqual([])
    expect(fake.tokenFiles()).toEqual([])
  })

  it('two creates of one name at once, both past the name check: the later withdraws, removing its own state job only', async () => {
    // Each submit takes long enough that both runs have checked the name before either state job exists.
    process.env.FAKE_CONDOR_FAULT = 'condor_submit:slow=1500'
    const outcomes = await Promise.allSettled([createAnnex(request()), createAnnex(request())])
    const made = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
    const failed = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as AnnexError] : []))
    expect(made).toHaveLength(1)
    expect(failed).toHaveLength(1)
    expect(failed[0]!.exitCode).toBe(1)
    const first = made[0]!.stateJobId
    expect(failed[0]!.message).toMatch(new RegExp(`^Submitting the state job for demo failed: Another create of annex 'demo' ran at the same time and submitted its state job \\(${first.replace('.', '\\.')}\\) first; this one withdrew\\. \\(undone: [^)]*removed the state job`))
    expect(stateJobs().map((j) => `${j.ClusterId}.0`)).toEqual([first])
  })
})
