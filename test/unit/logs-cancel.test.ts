import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {userInfo} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {logsCommand, showLogs, type LogsOptions} from '../../src/annex/logs.js'
import {checkPilotDir} from '../../src/backend/pilot-dir.js'
import {findRequests, groupByLogin} from '../../src/annex/requests.js'
import {cancelCommand, formatShutdown, shutdownAnnex} from '../../src/annex/shutdown.js'
import {projectPath} from '../../src/paths.js'
import {batchJobName} from '../../src/render/context.js'
import type {Transport} from '../../src/ssh/transport.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {LocalTransport} from '../fixtures/local-transport.js'
import {expectContract} from '../fixtures/json-contract.js'
import {runCli} from './helpers/cli.js'
import {tempDir} from './render-helpers.js'

/** Request ids, pilot directories and node names a hostile (or unlucky) ad could carry. */
const HOSTILE_ID = `ap"; touch PWNED; echo "#12.0#$(touch PWNED)'x'`
const HOSTILE_DIR_NAME = `pilot $(touch PWNED) 'q' "d" ;x`

let fake: FakeCondor
let restore: () => void
let work: string
let stubs: string
let queue: string
let transports: LocalTransport[]

function script(path: string, body: string): void {
  writeFileSync(path, `#!/bin/bash\n${body}\n`)
  chmodSync(path, 0o755)
}

/**
 * The login node's batch tools: a queue directory holds one file per batch
 * job, named by its job name (SLURM) or request id constraint (HTCondor),
 * containing its id. Every call's arguments are recorded.
 */
function loginNodeStubs(): string {
  const dir = tempDir('login-stubs')
  const record = (tool: string) => `printf '%s\\n' "$@" >> '${dir}/${tool}.calls'; printf '\\n' >> '${dir}/${tool}.calls'`
  const nameOf = `name=''; for a; do case $a in --name=*) name=\${a#--name=};; esac; done`
  script(join(dir, 'squeue'), `${record('squeue')}\n${nameOf}\n[ -f '${queue}/'"$name" ] && cat -- '${queue}/'"$name"\nexit 0`)
  script(join(dir, 'scancel'), `${record('scancel')}\n${nameOf}\nrm -f -- '${queue}/'"$name"`)
  // HTCondor: the constraint's file is its sha256, to keep any text out of file names.
  const keyOf = `c=''; while [ $# -gt 0 ]; do [ "$1" = -constraint ] && c=$2; shift; done; key=$(printf '%s' "$c" | sha256sum | cut -c1-16)`
  script(join(dir, 'condor_q'), `${record('condor_q')}\n${keyOf}\n[ -f '${queue}/'"$key" ] && cat -- '${queue}/'"$key"\nexit 0`)
  // condor_rm by job ids: the queue files that list them go.
  script(join(dir, 'condor_rm'), `${record('condor_rm')}\nfor id; do grep -lx -- "\${id%.*} \${id#*.}" '${queue}'/* | xargs -r rm -f --; done\necho "Job(s) marked for removal"`)
  return dir
}

/** The stub's file name for an HTCondor request's jobs: the start of the constraint's sha256. */
function htcondorKey(requestId: string): string {
  const constraint = `hpc_annex_request_id == "${requestId.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  return createHash('sha256').update(constraint).digest('hex').slice(0, 16)
}

function calls(tool: string): string[][] {
  const file = join(stubs, `${tool}.calls`)
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n\n').filter((c) => c.trim() !== '').map((c) => c.split('\n').filter((l) => l !== ''))
}

function login(): LogsOptions['login'] {
  return {
    open: (): Transport => {
      const t = new LocalTransport({PATH: `${stubs}:/usr/bin:/bin`, HOME: join(work, 'home'), USER: 'alice'}, work)
      transports.push(t)
      return t
    },
    interaction: () => ({answer: async () => { throw new Error('no prompts expected') }}),
  }
}

function stateJob(attrs: Record<string, string | number>) {
  return fake.addJob({hpc_annex_name: 'demo', JobStatus: 1, hpc_annex_system: 'anvil', hpc_annex_login_host: 'login.anvil.example', ...attrs})
}

beforeEach(() => {
  fake = createFakeCondor()
  restore = fake.install()
  writeFileSync(fake.state().config.ANNEX_PASSWORD_FILE!, 'secret', {mode: 0o400})
  work = tempDir('logs')
  mkdirSync(join(work, 'home'))
  queue = join(work, 'queue')
  mkdirSync(queue)
  stubs = loginNodeStubs()
  transports = []
})
afterEach(() => {
  restore()
  fake.cleanup()
  rmSync(work, {recursive: true, force: true})
  rmSync(stubs, {recursive: true, force: true})
})

describe('requests of an annex', () => {
  it('finds the state jobs by exact annex name, one by request id or state job id, and groups them by login', async () => {
    const a = stateJob({})
    const b = stateJob({hpc_annex_login_user: 'al'})
    const c = stateJob({hpc_annex_system: 'path-facility', hpc_annex_login_host: 'ap1.example'})
    fake.addJob({hpc_annex_name: 'DEMO'})
    const d = stateJob({GlobalJobID: HOSTILE_ID})
    const other = stateJob({hpc_annex_system: 'nowhere'})
    const made = stateJob({hpc_annex_system: ''})

    const all = await findRequests('demo')
    expect(all.map((r) => r.jobId)).toEqual([a, b, c, d, other, made].map((j) => `${j.ClusterId}.0`))
    expect((await findRequests('demo', HOSTILE_ID)).map((r) => r.requestId)).toEqual([HOSTILE_ID])
    expect((await findRequests('demo', String(b.ClusterId))).map((r) => r.jobId)).toEqual([`${b.ClusterId}.0`])
    await expect(findRequests('demo', 'nope')).rejects.toThrow(/^Annex 'demo' has no request 'nope' in the queue; change --request/)
    await expect(findRequests('demo', '999')).rejects.toThrow(/has no request '999'/)
    await expect(findRequests('a b')).rejects.toThrow(/annex name 'a b' is not allowed/)

    const {groups, unreachable} = await groupByLogin(all, {sshConfigFile: '/etc/ssh-test.conf'})
    expect(groups.map((g) => [g.system, g.batch, g.target, g.requests.length])).toEqual([
      ['anvil', 'slurm', {host: 'login.anvil.example', configFile: '/etc/ssh-test.conf'}, 2],
      ['anvil', 'slurm', {host: 'login.anvil.example', user: 'al', configFile: '/etc/ssh-test.conf'}, 1],
      ['path-facility', 'htcondor', {host: 'ap1.example', configFile: '/etc/ssh-test.conf'}, 1],
    ])
    expect(unreachable.map((u) => u.reason)).toEqual([
      expect.stringMatching(/system 'nowhere' is not among the known systems/),
      expect.stringMatching(/does not say which system/),
    ])
  })

  it("without a recorded login, the admin's per-system overrides, then the machine's host", async () => {
    fake.update((s) => { s.config.HPC_ANNEX_ANVIL_USER_NAME = 'x123'; s.config.HPC_ANNEX_ANVIL_HOST_NAME = 'login07.anvil.example' })
    stateJob({hpc_annex_login_host: ''})
    stateJob({hpc_annex_system: 'expanse', hpc_annex_login_host: ''})
    const {groups} = await groupByLogin(await findRequests('demo'))
    expect(groups.map((g) => g.target)).toEqual([{host: 'login07.anvil.example', user: 'x123'}, {host: 'login.expanse.sdsc.edu'}])
  })
})

describe('shutdown --cancel-pending', () => {
  it('offs the joined pilots, and over one login per target cancels the batch jobs of pending requests by their request id', async () => {
    const joined = stateJob({hpc_annex_JOB_ID: '100', hpc_annex_PILOT_DIR: '/scratch/p1'})
    // A job cancelled before it ran leaves its pilot directory: one the back-end made goes, anything else stays.
    const ours = join(work, 'scratch', 'pilot.Ab3dE6gH')
    const notOurs = join(work, 'scratch', HOSTILE_DIR_NAME)
    for (const dir of [ours, notOurs]) {
      mkdirSync(join(dir, 'secrets'), {recursive: true})
      writeFileSync(join(dir, 'batch.slurm'), '#!/bin/bash\n')
    }
    const noId = stateJob({hpc_annex_PID: '77', hpc_annex_PILOT_DIR: ours})
    const hostile = stateJob({GlobalJobID: HOSTILE_ID, hpc_annex_JOB_ID: '102', hpc_annex_PILOT_DIR: notOurs})
    const ended = stateJob({hpc_annex_JOB_ID: '103'})
    const path = stateJob({GlobalJobID: `ap"x#9.0#1`, hpc_annex_system: 'path-facility', hpc_annex_login_host: 'ap1.example'})
    const retired = stateJob({hpc_annex_JOB_ID: '99', hpc_annex_start_time: 1700000000})
    fake.advertise({MyType: 'DaemonMaster', Name: 'n1', AnnexName: 'demo', IsAnnex: true, hpc_annex_request_id: joined.GlobalJobID})
    // The batch system's queue: the pending requests' jobs, by name; one ended already.
    writeFileSync(join(queue, batchJobName('demo', noId.GlobalJobID)), '201\n')
    writeFileSync(join(queue, batchJobName('demo', hostile.GlobalJobID)), '202\n')
    writeFileSync(join(queue, htcondorKey(path.GlobalJobID)), '301 0\n301 1\n')
    writeFileSync(join(queue, batchJobName('demo', joined.GlobalJobID)), '100\n')

    const result = await shutdownAnnex({name: 'demo', cancelPending: login()})

    expect(result.told).toEqual(['n1'])
    expect(transports.map((t) => t.connects)).toEqual([1, 1])
    expect(transports.every((t) => t.closes === 1)).toBe(true)
    expect(result.pending!.map((r) => [r.stateJobId, r.outcome, r.batchJobs, r.stateJobRemoved])).toEqual([
      [`${noId.ClusterId}.0`, 'cancelled', ['201'], true],
      [`${hostile.ClusterId}.0`, 'cancelled', ['202'], true],
      [`${ended.ClusterId}.0`, 'not-queued', [], true],
      [`${path.ClusterId}.0`, 'cancelled', ['301.0', '301.1'], true],
    ])
    // Found by name (SLURM) and by the request id constraint (HTCondor), never by a job id.
    expect(calls('scancel')).toEqual([
      [`--user=${userInfo().username}`, `--name=${batchJobName('demo', noId.GlobalJobID)}`],
      [`--user=${userInfo().username}`, `--name=${batchJobName('demo', hostile.GlobalJobID)}`],
    ])
    // HTCondor: the login user's own jobs with that request id, removed by their ids; then asked again until they are gone.
    const constraint = `hpc_annex_request_id == "ap\\"x#9.0#1"`
    expect(calls('condor_q')).toEqual([[userInfo().username, '-constraint', constraint, '-af', 'ClusterId', 'ProcId'], [userInfo().username, '-constraint', constraint, '-af', 'ClusterId']])
    expect(calls('condor_rm')).toEqual([['301.0', '301.1']])
    expect(existsSync(join(queue, batchJobName('demo', joined.GlobalJobID)))).toBe(true)
    expect(existsSync(join(work, 'PWNED'))).toBe(false)
    expect(existsSync(ours)).toBe(false)
    expect(existsSync(join(notOurs, 'batch.slurm'))).toBe(true)
    expect(result.pending!.map((r) => r.pilotDirRemoved ?? false)).toEqual([true, false, false, false])

    // The settled requests' state jobs are gone, with a reason; the joined and the retired stay.
    const left = fake.state().jobs.map((j) => j.ClusterId)
    expect(left).toEqual([joined.ClusterId, retired.ClusterId])
    const reasons = fake.state().history.map((j) => [j.ClusterId, j.RemoveReason])
    expect(reasons).toContainEqual([noId.ClusterId, `hpc-annex shutdown --cancel-pending: cancelled batch job 201 on login.anvil.example`])
    expect(reasons).toContainEqual([ended.ClusterId, `hpc-annex shutdown --cancel-pending: no batch job of it was queued on login.anvil.example`])
    expect(fake.tokenFiles()).toEqual([])

    const text = formatShutdown(result)
    expect(text).toContain(`Request ${noId.ClusterId}.0 (${noId.GlobalJobID}): cancelled batch job 201 on login.anvil.example; removed its pilot directory; removed its state job.`)
    expect(text).toContain(`Request ${path.ClusterId}.0 (ap"x#9.0#1): cancelled batch job 301.0, 301.1 on ap1.example; removed its state job.`)
    expect(text).not.toContain('have not been affected')
  })

  it('a failed login or cancel is reported per request and keeps its state job; the others go on', async () => {
    const a = stateJob({})
    const b = stateJob({hpc_annex_system: 'path-facility', hpc_annex_login_host: 'ap1.example'})
    const c = stateJob({hpc_annex_system: ''})
    writeFileSync(join(queue, batchJobName('demo', a.GlobalJobID)), '201\n')
    script(join(stubs, 'scancel'), 'echo "scancel: error: Invalid user" >&2; exit 1')
    let opened = 0
    const base = login()
    const result = await shutdownAnnex({
      name: 'demo',
      cancelPending: {...base, open: (group) => (++opened === 2 ? (() => { throw new Error('Permission denied (publickey)') })() : base.open(group))},
    })
    expect(result.pending!.map((r) => [r.outcome, r.detail])).toEqual([
      ['failed', 'scancel on login.anvil.example failed (exit status 4): scancel: error: Invalid user'],
      ['failed', 'cannot log in to ap1.example: Permission denied (publickey)'],
      ['unreachable', expect.stringMatching(/does not say which system/)],
    ])
    expect(fake.state().jobs.map((j) => j.ClusterId)).toEqual([a.ClusterId, b.ClusterId, c.ClusterId])
    expect(formatShutdown(result)).toContain(`Request ${b.ClusterId}.0 (${b.GlobalJobID}): not cancelled: cannot log in to ap1.example: Permission denied (publickey).`)
  })

  it('without --cancel-pending nothing logs in; with nothing pending nobody logs in either', async () => {
    stateJob({})
    expect(await shutdownAnnex({name: 'demo'})).toEqual({annexName: 'demo', found: 0, told: []})
    const joined = stateJob({})
    fake.update((s) => { s.jobs = s.jobs.filter((j) => j.ClusterId === joined.ClusterId) })
    fake.advertise({MyType: 'DaemonMaster', Name: 'n1', AnnexName: 'demo', hpc_annex_request_id: joined.GlobalJobID})
    const result = await shutdownAnnex({name: 'demo', cancelPending: login()})
    expect(result.pending).toEqual([])
    expect(transports).toEqual([])
    expect(formatShutdown(result)).toMatch(/No requests were pending\.$/)
  })

  it('removes the pilot directory of a cancelled job only once the batch system no longer lists it', () => {
    const dir = join(work, 'scratch', 'pilot.AbCd1234')
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, 'batch.slurm'), '')
    const bin = join(work, 'stopping')
    mkdirSync(bin)
    const seen = join(work, 'squeue.seen')
    // squeue lists the job while its pilots stop (three more times after scancel), noting each time whether the directory is there.
    writeFileSync(join(bin, 'squeue'), `#!/bin/bash\nn=$(wc -l < '${seen}' 2>/dev/null || echo 0)\n[ -d '${dir}' ] && echo there >> '${seen}' || echo gone >> '${seen}'\n[ "$n" -lt 4 ] && echo 4242\nexit 0\n`, {mode: 0o755})
    writeFileSync(join(bin, 'scancel'), '#!/bin/bash\nexit 0\n', {mode: 0o755})
    const ran = spawnSync('bash', ['-c', cancelCommand('slurm', 'demo', 'ap#1.0#1', dir)], {env: {...process.env, PATH: `${bin}:/usr/bin:/bin`}, encoding: 'utf8'})
    expect(ran.status, ran.stderr).toBe(0)
    expect(ran.stdout).toBe('cancelled 4242\nremoved-pilot-dir\n')
    // The listing before scancel, three while the job stops, the one that finds it gone: the directory was there for all.
    expect(readFileSync(seen, 'utf8')).toBe('there\n'.repeat(5))
    expect(existsSync(dir)).toBe(false)
  })

  it('the cancel commands keep every value as data', () => {
    const slurm = cancelCommand('slurm', 'demo', HOSTILE_ID)
    expect(slurm).toContain(`--name='${batchJobName('demo', HOSTILE_ID)}'`)
    const htcondor = cancelCommand('htcondor', 'demo', HOSTILE_ID)
    expect(htcondor).toContain(`-constraint 'hpc_annex_request_id == "ap\\"; touch PWNED; echo \\"#12.0#$(touch PWNED)'\\''x'\\''"'`)
    expect(() => cancelCommand('htcondor', 'demo', 'a\nb')).toThrow(/control character/)
  })

  it('the command takes --cancel-pending; a login that fails is said per request and exits 2', {timeout: 60_000}, () => {
    stateJob({hpc_annex_login_host: 'login.anvil.invalid'})
    const out = runCli(['shutdown', 'demo', '--cancel-pending', '--ssh', 'ssh2'], {...fake.env, HOME: work})
    expect(out.status).toBe(2)
    expect(out.stdout).toMatch(/not cancelled: cannot log in to login\.anvil\.invalid: /)
    expect(out.stderr).toMatch(/^Error: 1 pending request\(s\) of annex 'demo' were not cancelled/m)
    expect(fake.state().jobs).toHaveLength(1)
  })
})

describe('logs', () => {
  /** A pilot directory as the back-end and pilot.sh make it, with a batch job's output. */
  function pilotDir(name: string, nodes: string[], jobId = '4242'): string {
    const dir = join(work, 'scratch', name)
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, `slurm-${jobId}.out`), 'pilots starting\n')
    writeFileSync(join(dir, `slurm-${jobId}.err`), 'srun: warning\n')
    for (const node of nodes) {
      mkdirSync(join(dir, 'hosts', node, 'log'), {recursive: true})
      writeFileSync(join(dir, 'hosts', node, 'log', 'MasterLog'), Array.from({length: 10}, (_, i) => `${node} master ${i + 1}`).join('\n') + '\n')
      writeFileSync(join(dir, 'hosts', node, 'log', 'StartLog'), `${node} startd up\n`)
      writeFileSync(join(dir, 'hosts', node, 'log', 'InstanceLock'), 'not a log\n')
    }
    return dir
  }

  function options(overrides: Partial<LogsOptions> = {}): LogsOptions & {text: () => string} {
    let text = ''
    return {name: 'demo', lines: 3, login: login(), write: (chunk) => (text += chunk), text: () => text, ...overrides}
  }

  it("prints each request's batch output and each node's MasterLog/StartLog under clear headers, one exec per request on one login", async () => {
    const dir = pilotDir(HOSTILE_DIR_NAME, ['node1', 'node2'])
    const a = stateJob({hpc_annex_PILOT_DIR: dir, hpc_annex_JOB_ID: '4242', GlobalJobID: HOSTILE_ID})
    const b = stateJob({})
    const o = options()
    const result = await showLogs(o)
    expect(result.requests.map((r) => r.outcome)).toEqual(['shown', 'no-pilot-dir'])
    // What `logs --json` prints: the result and the text, in the published shape.
    expectContract('logs', {...result, output: o.text(), warnings: []})
    expect(transports).toHaveLength(1)
    expect(transports[0]!.connects).toBe(1)
    expect(transports[0]!.commands).toHaveLength(1)
    expect(o.text()).toBe([
      `### ${a.ClusterId}.0: request ${a.ClusterId}.0 (${HOSTILE_ID}): batch job 4242 on login.anvil.example, pilot directory ${dir}`,
      '==> slurm-4242.out <==', 'pilots starting', '',
      '==> slurm-4242.err <==', 'srun: warning', '',
      '==> node1: MasterLog <==', 'node1 master 8', 'node1 master 9', 'node1 master 10', '',
      '==> node1: StartLog <==', 'node1 startd up', '',
      '==> node2: MasterLog <==', 'node2 master 8', 'node2 master 9', 'node2 master 10', '',
      '==> node2: StartLog <==', 'node2 startd up', '',
      `### ${b.ClusterId}.0: request ${b.ClusterId}.0 (${b.GlobalJobID}): its pilot directory is not known (the request is requested).`, '',
    ].join('\n'))
    expect(existsSync(join(work, 'PWNED'))).toBe(false)
    expect(existsSync(join(work, 'scratch', 'PWNED'))).toBe(false)
  })

  it('--node and --lines 0, a gone directory in one line, kept logs after the job ended, and refused paths', async () => {
    const live = pilotDir('live', ['node1', 'node2'])
    const kept = join(work, 'scratch', 'ended')
    mkdirSync(join(`${kept}.logs`, 'node2'), {recursive: true})
    writeFileSync(join(`${kept}.logs`, 'slurm-9.out'), 'done\n')
    writeFileSync(join(`${kept}.logs`, 'slurm-9.err'), '')
    writeFileSync(join(`${kept}.logs`, 'node2', 'StartLog'), 'kept start\n')
    stateJob({hpc_annex_PILOT_DIR: live})
    stateJob({hpc_annex_PILOT_DIR: kept})
    const gone = stateJob({hpc_annex_PILOT_DIR: join(work, 'scratch', 'gone')})
    stateJob({hpc_annex_PILOT_DIR: 'relative/dir'})
    stateJob({hpc_annex_PILOT_DIR: `${work}/../etc`})
    const o = options({node: 'node2', lines: 0})
    const result = await showLogs(o)
    expect(result.requests.map((r) => r.outcome)).toEqual(['shown', 'shown', 'gone', 'refused', 'refused'])
    const text = o.text()
    expect(text).toContain('==> node2: MasterLog <==\nnode2 master 1\n')
    expect(text).not.toContain('node1')
    expect(text).toContain(`the batch job has ended; its logs were kept in ${kept}.logs\n==> slurm-9.out <==\ndone\n\n==> slurm-9.err <==\n\n==> node2: StartLog <==\nkept start\n`)
    expect(text).toContain(`the pilot directory ${join(work, 'scratch', 'gone')} is gone, and no logs were kept beside it\n`)
    expect(text).toMatch(/refusing the pilot directory "relative\/dir" recorded on the state job: it is not an absolute plain path\./)
    expect(result.requests[2]!.stateJobId).toBe(`${gone.ClusterId}.0`)
    expect(transports[0]!.commands).toHaveLength(3)
  })

  it('--follow streams new lines and new nodes until interrupted, and the remote side stops', async () => {
    const dir = pilotDir('follow', ['node1'])
    stateJob({hpc_annex_PILOT_DIR: dir})
    const controller = new AbortController()
    const o = options({follow: true, signal: controller.signal, lines: 1})
    const pending = showLogs(o)
    const until = async (text: string) => {
      const deadline = Date.now() + 15_000
      while (!o.text().includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(o.text()).toContain(text)
    }
    await until('node1 startd up')
    appendFileSync(join(dir, 'hosts', 'node1', 'log', 'MasterLog'), 'node1 master 11\n')
    mkdirSync(join(dir, 'hosts', 'node2', 'log'), {recursive: true})
    writeFileSync(join(dir, 'hosts', 'node2', 'log', 'StartLog'), 'node2 joined\n')
    await until('node2 joined')
    await until('node1 master 11')
    expect(o.text()).toContain('==> node2: StartLog <==\nnode2 joined\n')
    expect(o.text()).toMatch(/==> node1: MasterLog <==\n(node1 master 10\n)?node1 master 11\n/)
    controller.abort(new Error('interrupted'))
    const result = await pending
    expect(result.requests[0]!.outcome).toBe('shown')
    // Nothing keeps following on the "login node".
    const deadline = Date.now() + 5000
    const tails = () => findTails(dir)
    while (tails() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(tails()).toBe(0)
  })

  it('--follow with requests on two login targets: one exec each, every line under its request and file', async () => {
    const one = pilotDir('one', ['node1'])
    const two = pilotDir('two', ['node1'])
    const a = stateJob({hpc_annex_PILOT_DIR: one})
    const b = stateJob({hpc_annex_PILOT_DIR: two, hpc_annex_login_host: 'other.example'})
    const controller = new AbortController()
    const o = options({follow: true, signal: controller.signal, lines: 1})
    const pending = showLogs(o)
    const deadline = Date.now() + 15_000
    const seen = () => (o.text().match(/startd up/g) ?? []).length
    while (seen() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    appendFileSync(join(one, 'hosts', 'node1', 'log', 'StartLog'), 'one more\n')
    while (!o.text().includes('one more') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    controller.abort(new Error('interrupted'))
    await pending
    expect(transports.map((t) => [t.connects, t.commands.length])).toEqual([[1, 1], [1, 1]])
    const text = o.text()
    expect(text).toMatch(/^Following 2 request\(s\) of annex 'demo'; Ctrl-C to stop\.\n/)
    expect(text).toContain(`==> [${a.ClusterId}.0] node1: StartLog <==\nnode1 startd up\n`)
    expect(text).toContain(`==> [${b.ClusterId}.0] node1: StartLog <==\nnode1 startd up\n`)
    expect(text).toMatch(new RegExp(`==> \\[${a.ClusterId}\\.0\\] node1: StartLog <==\\n(node1 startd up\\n)?one more\\n`))
  })

  it('--follow ends by itself when the batch job ends and its pilot directory goes', async () => {
    const dir = pilotDir('ending', ['node1'])
    stateJob({hpc_annex_PILOT_DIR: dir})
    const o = options({follow: true})
    const pending = showLogs(o)
    const deadline = Date.now() + 15_000
    while (!o.text().includes('node1 startd up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    rmSync(dir, {recursive: true})
    const result = await pending
    expect(result.requests[0]!.outcome).toBe('shown')
    expect(o.text()).toMatch(/the batch job has ended: its pilot directory is gone\n$/)
  })

  it('the script passes bash -n and shellcheck', () => {
    const file = join(projectPath('templates'), 'logs.sh')
    expect(spawnSync('bash', ['-n', file], {encoding: 'utf8'})).toMatchObject({status: 0})
    const check = spawnSync('shellcheck', ['--shell=bash', '--severity=style', file], {encoding: 'utf8'})
    expect(check.stdout).toBe('')
    expect(check.status).toBe(0)
  })

  it('the remote command passes every value as an argument', () => {
    const command = logsCommand({lines: 5, follow: false, node: '$(touch PWNED)'}, [{prefix: '', dir: `/x/${HOSTILE_DIR_NAME}`}])
    expect(command).toMatch(/ hpc-annex-logs '5' '0' '\$\(touch PWNED\)' '' '\/x\/pilot \$\(touch PWNED\) '\\''q'\\'' "d" ;x'$/)
    expect(() => checkPilotDir('/')).toThrow(/not an absolute plain path/)
    expect(() => checkPilotDir('/a//b')).toThrow(/not an absolute plain path/)
    expect(() => checkPilotDir('/a/./b')).toThrow(/not an absolute plain path/)
    expect(() => checkPilotDir('/a/b\n')).toThrow(/not an absolute plain path/)
    expect(checkPilotDir('/scratch/x y/$(z)')).toBe('/scratch/x y/$(z)')
  })

  it('the command: checks its flags; a request whose pilot dir is unknown is one line; exit 2 when nothing could be read', {timeout: 60_000}, () => {
    stateJob({})
    expect(runCli(['logs', 'demo'], fake.env)).toMatchObject({status: 0, stdout: expect.stringMatching(/its pilot directory is not known \(the request is requested\)\.\n$/)})
    expect(runCli(['logs', 'demo', '--follow', '--json'], fake.env)).toMatchObject({status: 1, stdout: expect.stringContaining('--follow and --json cannot be used together')})
    expect(runCli(['logs', 'demo', '--node', '../x'], fake.env)).toMatchObject({status: 1, stderr: expect.stringMatching(/^Error: --node '..\/x' is not a node name/)})
    expect(runCli(['logs', 'demo', '--request', 'zz'], fake.env)).toMatchObject({status: 1, stderr: expect.stringMatching(/^Error: Annex 'demo' has no request 'zz'/)})
    fake.update((s) => { s.jobs = [] })
    stateJob({hpc_annex_PILOT_DIR: '/scratch/p', hpc_annex_login_host: 'login.anvil.invalid'})
    expect(runCli(['logs', 'demo', '--ssh', 'ssh2'], {...fake.env, HOME: work})).toMatchObject({status: 2, stderr: expect.stringMatching(/^Error: Could not read the logs of annex 'demo': cannot log in to login\.anvil\.invalid: /m)})
  })
})

/** tail processes still following files under `dir`. */
function findTails(dir: string): number {
  let count = 0
  for (const pid of readdirSyncSafe('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (cmdline.startsWith('tail\0') && cmdline.includes(dir)) count += 1
    } catch {
      // gone
    }
  }
  return count
}

function readdirSyncSafe(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}
