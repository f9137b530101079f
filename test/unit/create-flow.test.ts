import {copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'
import {userInfo} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {createAnnex, type CreateRequest} from '../../src/annex/create.js'
import {describeResult} from '../../src/cli/annex-request.js'
import {requestResultJson} from '../../src/cli/json/project.js'
import {AnnexError} from '../../src/errors.js'
import {sha256File} from '../../src/backend/index.js'
import {loadCatalog, validateRequest} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {expectContract} from '../fixtures/json-contract.js'
import {LocalTransport} from '../fixtures/local-transport.js'
import {until} from '../site/poll.js'
import {fakeCondorTarball, makeStubs, planFor, tempDir} from './render-helpers.js'

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
  work = tempDir('create')
  stubs = makeStubs()
  home = join(work, 'home')
  mkdirSync(home)
  process.env.HOME = join(work, 'ap-home')
  transport = new LocalTransport({PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: join(work, 'scratch'), USER: 'alice'}, home)
  const path = fakeCondorTarball(work)
  tarball = {path, sha256: await sha256File(path)}
})
afterEach(() => {
  restore()
  fake.cleanup()
  rmSync(work, {recursive: true, force: true})
  rmSync(stubs, {recursive: true, force: true})
})

function request(overrides: Partial<CreateRequest> = {}, input: Parameters<typeof planFor>[0] = {target: 'wholenode@anvil', nodes: '2'}): CreateRequest {
  return {
    verb: 'create',
    plan: planFor({...input, name: 'demo'}),
    transport: () => transport,
    interaction: {answer: async () => { throw new Error('no prompts expected') }},
    condorTarball: tarball,
    stallTimeout: 30,
    signal: new AbortController().signal,
    output: 'silent',
    ...overrides,
  }
}

function image(name: string, bytes: number): string {
  const dir = join(work, 'jobs')
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, name), Buffer.alloc(bytes, 3))
  return join(dir, name)
}

function stateJob() {
  return fake.state().jobs.find((job) => job.hpc_annex_name === 'demo')
}

describe('create, end to end against a local "login node"', () => {
  it('logs in once, asks the cache, stages and submits in one command, and records the batch job on the state job', async () => {
    const sif = image('analysis.sif', 2 * 1024 * 1024)
    const job = fake.addJob({TargetAnnexName: 'demo', TransferContainer: true, ContainerImage: 'analysis.sif', Iwd: join(work, 'jobs'), TransferInput: 'analysis.sif,data.txt'})

    const asked = request()
    const result = await createAnnex(asked)
    // What `create --json` prints, in the published shape.
    expectContract('create', {...requestResultJson(asked.plan, result), warnings: result.warnings})

    expect(transport.connects).toBe(1)
    expect(transport.commands).toHaveLength(1)
    expect(result.remoteCommands).toBe(1)
    expect(result.batchJobId).toBe('4242')
    // Just before it submitted, in the same command, SLURM was asked when this very script would start.
    const sbatchCalls = readFileSync(join(stubs, 'sbatch.calls'), 'utf8').split('\n\n').filter(Boolean).map((call) => call.split('\n').slice(1))
    expect(sbatchCalls).toEqual([['--test-only'], ['--parsable', 'batch.slurm']])
    expect(result.estimate).toMatchObject({estimate: {nodeList: 'node[1-2]'}})
    expect(describeResult(result).split('\n')).toContain('SLURM says the request would start now, on 2 nodes (node[1-2]) (sbatch --test-only).')
    expect(requestResultJson(asked.plan, result).estimate).toMatchObject({available: true, waitSeconds: 0, nodeList: 'node[1-2]'})
    expect(result.images).toEqual([{name: 'analysis.sif', sha256: await sha256File(sif), bytes: 2 * 1024 * 1024, sent: true}])
    expect(result.bytesSent).toBeGreaterThan(2 * 1024 * 1024)

    const ad = stateJob()!
    expect(ad.hpc_annex_JOB_ID).toBe('4242')
    expect(ad.hpc_annex_PILOT_DIR).toBe(result.pilotDir)
    expect(String(ad.hpc_annex_PID)).toMatch(/^\d+$/)
    expect(result.requestId).toBe(ad.GlobalJobID)

    // The image reached the pilot directory and the cache; the job points at its staged copy.
    expect(readFileSync(join(result.pilotDir!, 'sif', 'analysis.sif')).length).toBe(2 * 1024 * 1024)
    expect(existsSync(join(home, '.hpc-annex', 'cache', result.images[0]!.sha256))).toBe(true)
    const edited = fake.state().jobs.find((j) => j.ClusterId === job.ClusterId)!
    expect(edited.ContainerImage).toBe('analysis.sif')
    expect(edited.TransferInput).toBe('data.txt')

    // Nothing left behind: staging directory gone, local token deleted.
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
    expect(fake.tokenFiles()).toEqual([])
    expect(transport.closes).toBe(1)
  })

  it('warns, and goes on, when the login node cannot resolve the annex collector; a collector it reaches gets no warning', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const reachable = `127.0.0.1:${(server.address() as AddressInfo).port}?sock=ap_collector`
      fake.advertise({MyType: 'Scheduler', Name: 'ap.example.org', MyAddress: '<127.0.0.1:9618>'}, reachable)
      const quiet = await createAnnex(request({plan: planFor({target: 'wholenode@anvil', name: 'demo', pool: reachable})}))
      expect(quiet.warnings).toEqual([])
      expect(describeResult(quiet)).not.toMatch(/warning/i)
    } finally {
      server.close()
    }

    const unresolvable = 'no-such-host.invalid:9618?sock=ap_collector'
    fake.advertise({MyType: 'Scheduler', Name: 'ap.example.org', MyAddress: '<127.0.0.1:9618>'}, unresolvable)
    const result = await createAnnex(request({verb: 'add', plan: planFor({target: 'wholenode@anvil', name: 'demo', pool: unresolvable})}))
    expect(result.batchJobId).toBe('4242')
    const warning = 'the annex collector no-such-host.invalid:9618 does not resolve on the login node; pilots may not be able to join (see hpc-annex admin check)'
    expect(result.warnings).toEqual([warning])
    expect(describeResult(result).split('\n')).toContain(`warning: ${warning}`)
  })

  it('a start estimate SLURM refuses, or does not give in time, does not stop the request', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    writeFileSync(join(stubs, 'sbatch.test-only-fail'), '')
    const refused = await createAnnex(request())
    expect(refused.batchJobId).toBe('4242')
    expect(refused.estimate).toMatchObject({said: 'sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified'})
    expect(describeResult(refused)).toMatch(/^No start estimate: sbatch --test-only said: sbatch: error: Batch job submission failed: Invalid account/m)
    const json = {...requestResultJson(planFor({target: 'wholenode@anvil', nodes: '2', name: 'demo'}), refused), warnings: refused.warnings}
    expectContract('create', json)
    expect(json.estimate).toMatchObject({available: false, said: expect.stringMatching(/Invalid account/)})

    // One that never answers is given up on (a bound of seconds, not the stall timeout's failure).
    rmSync(join(stubs, 'sbatch.test-only-fail'))
    writeFileSync(join(stubs, 'sbatch.test-only-hang'), '')
    const hung = await createAnnex(request({verb: 'add', stallTimeout: 5}))
    expect(hung.batchJobId).toBe('4242')
    expect(hung.estimate).toMatchObject({said: ''})
    expect(describeResult(hung)).toMatch(/^No start estimate: sbatch --test-only gave no answer in time\.$/m)
  }, 60_000)

  it('a second request with the same image and tarball sends neither', async () => {
    const sif = image('big.sif', 4 * 1024 * 1024)
    fake.addJob({TargetAnnexName: 'demo', TransferContainer: true, ContainerImage: sif})
    const first = await createAnnex(request())
    expect(first.images[0]!.sent).toBe(true)

    const second = await createAnnex(request({verb: 'add'}))
    expect(second.images[0]!.sent).toBe(false)
    expect(second.bytesSent).toBeLessThan(256 * 1024)
    expect(second.remoteCommands).toBe(1)
    expect(readFileSync(join(second.pilotDir!, 'sif', 'big.sif')).length).toBe(4 * 1024 * 1024)
  })

  it('a refused batch job: the error names the step and what was undone; nothing is left', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    writeFileSync(join(stubs, 'sbatch.fail'), '')
    const error = await createAnnex(request()).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).exitCode).toBe(2)
    const text = (error as AnnexError).message
    expect(text).toMatch(/^Staging and submitting the SLURM job on .* failed: the batch system refused the job: sbatch: error: invalid account \(undone: [^)]*\)$/)
    for (const undone of ['removed the state job', 'deleted the local token', 'closed the connection']) expect(text).toContain(undone)
    // No batch job was made, so none is said to be cancelled.
    expect(text).not.toContain('batch job')
    expect(stateJob()).toBeUndefined()
    expect(fake.state().history.find((j) => j.hpc_annex_name === 'demo')?.RemoveReason).toMatch(/hpc-annex create failed at: Staging/)
    expect(fake.tokenFiles()).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
    expect(readdirSync(join(work, 'scratch'))).toEqual([])
  })

  it('a file that cannot be rendered: the error names the step and what was undone; nothing is left, nothing reached the login node', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    // Validation lets no such value through; a plan (or an installed template) gone wrong is what this stands for.
    const asked = request()
    const error = await createAnnex({...asked, plan: {...asked.plan, nodes: 'two' as never}}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).exitCode).toBe(2)
    const text = (error as AnnexError).message
    expect(text).toMatch(/^Staging and submitting the SLURM job on .* failed: expected an integer in a template, got "two" \(undone: [^)]*\)$/)
    for (const undone of ['removed the state job', 'deleted the local token', 'closed the connection']) expect(text).toContain(undone)
    expect(text).not.toContain('batch job')
    expect(stateJob()).toBeUndefined()
    expect(fake.tokenFiles()).toEqual([])
    expect(existsSync(join(home, '.hpc-annex', 'tmp'))).toBe(false)
    expect(existsSync(join(work, 'scratch'))).toBe(false)
    // The same request then succeeds.
    expect((await createAnnex(request())).batchJobId).toMatch(/^\d+$/)
  })

  it('points the jobs at their staged images before the batch job is submitted, and puts them back when the request fails', async () => {
    const sif = image('analysis.sif', 1024)
    const job = fake.addJob({TargetAnnexName: 'demo', TransferContainer: true, ContainerImage: sif, Iwd: join(work, 'jobs'), TransferInput: `${sif},data.txt`})
    // What the queue held when sbatch ran: a pilot may match a job as soon as it starts.
    renameSync(join(stubs, 'sbatch'), join(stubs, 'sbatch.real'))
    const seen = join(stubs, 'queue-at-sbatch.json')
    writeFileSync(join(stubs, 'sbatch'), `#!/bin/bash\ncp '${join(fake.dir, 'state.json')}' '${seen}'\nexec '${join(stubs, 'sbatch.real')}' "$@"\n`, {mode: 0o755})
    writeFileSync(join(stubs, 'sbatch.fail'), '')

    const error = await createAnnex(request()).catch((e: unknown) => e)
    expect((error as AnnexError).message).toMatch(/^Staging and submitting .* failed: .*\(undone: .*restored the jobs' container images/)
    const atSbatch = (JSON.parse(readFileSync(seen, 'utf8')) as {jobs: Record<string, unknown>[]}).jobs.find((j) => j.ClusterId === job.ClusterId)!
    expect(atSbatch).toMatchObject({ContainerImage: 'analysis.sif', TransferInput: 'data.txt', hpc_annex_image_source: sif})
    const after = fake.state().jobs.find((j) => j.ClusterId === job.ClusterId)!
    expect(after.ContainerImage).toBe(sif)
    expect(after.TransferInput).toBe(`${sif},data.txt`)
    expect(after.hpc_annex_image_source ?? null).toBeNull()
  })

  it('Ctrl-C while the back-end runs: the remote side stops, the state job goes, exit 130', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    // sbatch that hangs: the interrupt arrives while the back-end waits on it.
    writeFileSync(join(stubs, 'sbatch'), '#!/bin/bash\nsleep 30\n', {mode: 0o755})
    const controller = new AbortController()
    const pending = createAnnex(request({signal: controller.signal}))
    await until('the back-end to record its pilot directory', () => stateJob()?.hpc_annex_PILOT_DIR !== undefined, 25_000)
    controller.abort(new Error('interrupted'))
    const error = await pending.catch((e: unknown) => e)
    expect((error as AnnexError).exitCode).toBe(130)
    expect((error as AnnexError).message).toMatch(/failed: interrupted \(undone: .*removed the state job/)
    expect(stateJob()).toBeUndefined()
    expect(fake.tokenFiles()).toEqual([])
    // The back-end's EXIT trap removed the pilot directory and the staging directory (a loaded machine takes its time).
    const leftovers = () => [...readdirSync(join(work, 'scratch')), ...readdirSync(join(home, '.hpc-annex', 'tmp'))]
    await until('the back-end to remove its directories', () => leftovers().length === 0, 25_000).catch(() => undefined)
    expect(readdirSync(join(work, 'scratch'))).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  }, 90_000)

  it('a taken name asks no login question and leaves nothing: the login begun beside the checks is closed', async () => {
    fake.addJob({hpc_annex_name: 'demo'})
    const asked: string[] = []
    const twoFactor = new LocalTransport({}, home, [{prompt: 'Verification code: ', echo: false}])
    const interaction = {answer: async (prompts: {prompt: string}[]) => prompts.map((p) => (asked.push(p.prompt), '123456'))}
    await expect(createAnnex(request({transport: () => twoFactor, interaction}))).rejects.toThrow(/already created an annex named 'demo'/)
    expect(asked).toEqual([])
    expect(twoFactor.closes).toBe(twoFactor.connects)
    expect(fake.tokenFiles()).toEqual([])
    expect(fake.state().jobs.filter((j) => j.hpc_annex_request_id !== undefined)).toEqual([])
  })

  it('the login question is asked once, after the checks, and the request goes on', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    const asked: string[] = []
    const twoFactor = new LocalTransport(transport['env'], home, [{prompt: 'Verification code: ', echo: false}])
    const interaction = {
      answer: async (prompts: {prompt: string}[]) => {
        // Only once the checks have run: the queue and the schedd have both been asked.
        const tools = fake.calls().map((call: {tool: string}) => call.tool)
        expect(tools).toContain('condor_q')
        expect(tools).toContain('condor_status')
        asked.push(...prompts.map((p) => p.prompt))
        return prompts.map(() => '123456')
      },
    }
    const result = await createAnnex(request({transport: () => twoFactor, interaction}))
    expect(asked).toEqual(['Verification code: '])
    expect(twoFactor.answers).toEqual([['123456']])
    expect(result.batchJobId).toBe('4242')
  })

})

describe('create without --condor-tarball: the pilots run the Access Point\'s HTCondor', () => {
  it('asks condor_version, takes the tree from ANNEX_TARBALL_URL_BASE, and the login node downloads and verifies the build for its OS', async () => {
    fake.update((s: {config: Record<string, string>}) => {
      s.config.ANNEX_TARBALL_URL_BASE = 'https://mirror.example.org/htcondor'
    })
    const osRelease = join(work, 'os-release')
    writeFileSync(osRelease, 'ID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4"\n')
    transport = new LocalTransport({PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: join(work, 'scratch'), USER: 'alice', HPC_ANNEX_OS_RELEASE: osRelease}, home)
    // The mirror: the tarball the curl stub serves, and its checksum file.
    copyFileSync(tarball.path, join(stubs, 'download'))
    mkdirSync(join(stubs, 'served'))
    writeFileSync(join(stubs, 'served', 'sha256sum.txt'), `${tarball.sha256}  condor-25.13.2-x86_64_AlmaLinux9-stripped.tar.gz\n`)
    fake.addJob({TargetAnnexName: 'demo'})
    const plan = validateRequest(loadCatalog([projectPath('backends')]), {name: 'demo', target: 'wholenode@anvil'}, {defaultOwner: 'alice'})
    const {condorTarball: _none, ...rest} = request({plan})
    const result = await createAnnex(rest)
    expect(fake.calls().filter((c) => c.tool === 'condor_version')).toHaveLength(1)
    const url = 'https://mirror.example.org/htcondor/25.x/25.13.2/release/condor-25.13.2-x86_64_AlmaLinux9-stripped.tar.gz'
    expect(result.htcondor).toMatchObject({version: '25.13.2', versionFrom: 'Access Point', urlBaseFrom: 'ANNEX_TARBALL_URL_BASE'})
    expect(result.notices).toContain(`the pilots run HTCondor 25.13.2 for AlmaLinux9 (the login node runs AlmaLinux 9.4): ${url}, verified against the sha256 published in https://mirror.example.org/htcondor/25.x/25.13.2/release/sha256sum.txt`)
    expect(result.batchJobId).toBe('4242')
    const json = expectContract('create', JSON.stringify(requestResultJson(plan, result))) as {htcondor: {version: string; tarballs: {url: string}[]}}
    expect(json.htcondor.version).toBe('25.13.2')
    expect(json.htcondor.tarballs[1]!.url).toBe(url)
  })

  it('a version the machine file or --condor-version pins needs no condor_version; a bad ANNEX_TARBALL_URL_BASE is a one-line error', async () => {
    fake.update((s: {config: Record<string, string>}) => {
      s.config.ANNEX_TARBALL_URL_BASE = 'http://mirror.example.org/htcondor'
    })
    const plan = planFor({target: 'wholenode@anvil', name: 'demo'})
    const {condorTarball: _none, ...rest} = request({plan: {...plan, htcondor: {...plan.htcondor, versionFrom: '--condor-version'}}})
    const error = await createAnnex(rest).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).message).toMatch(/^Checking the Access Point failed: ANNEX_TARBALL_URL_BASE = http:\/\/mirror\.example\.org\/htcondor must be an https:\/\/ URL \(plain http only to a loopback address\); change it\.( \(undone: [^)]*\))?$/)
    expect(fake.calls().filter((c) => c.tool === 'condor_version')).toEqual([])
  })
})

describe('the back-end when the connection is lost', () => {
  it('the batch job id cannot be recorded on the state job: the back-end, never told it was, cancels the job and removes its pilot directory', async () => {
    fake.update((state) => { state.config.HPC_ANNEX_REQUIRE_JOB = 'false' })
    // condor_qedit refuses the record of the job id (and only that).
    const wrappers = join(work, 'wrappers')
    mkdirSync(wrappers)
    const fakeBin = process.env.PATH!.split(':')[0]!
    writeFileSync(join(wrappers, 'condor_qedit'), `#!/bin/bash\ncase " $* " in *hpc_annex_JOB_ID*) echo 'ERROR: the schedd refused the edit' >&2; exit 1 ;; esac\nexec '${fakeBin}/condor_qedit' "$@"\n`, {mode: 0o755})
    process.env.PATH = `${wrappers}:${process.env.PATH}`
    writeFileSync(join(stubs, 'scancel'), `#!/bin/bash\nprintf '%s\\n' "$@" >> '${join(stubs, 'scancel.calls')}'\n`, {mode: 0o755})
    const error = await createAnnex(request()).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    const message = (error as AnnexError).message
    expect(message).toMatch(/the schedd refused the edit.*; so the back-end cancelled batch job 4242 and removed its pilot directory on /)
    expect(message).not.toContain('NOT undone')
    // Cancelled once, by the back-end: nothing was left for the undo to cancel.
    expect(readFileSync(join(stubs, 'scancel.calls'), 'utf8')).toMatch(new RegExp(`^--user=${execUser()}\\n--name=hpc-annex\\.demo\\.\\S+\\n$`))
    expect(readdirSync(join(work, 'scratch')).filter((d) => d.startsWith('pilot.'))).toEqual([])
    expect(stateJob()).toBeUndefined()
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  })

  it('withdraws a batch job it submitted but could not report, and removes the pilot directory', async () => {
    const {renderFiles, bundleStream, bootstrapCommand} = await import('../../src/backend/index.js')
    const {spawn} = await import('node:child_process')
    const plan = planFor({target: 'wholenode@anvil', name: 'demo'})
    const ap = {requestId: 'ap#5.0#1', collector: 'c:9618', scheddName: 's', stagedTarballSha256: tarball.sha256}
    // sbatch succeeds, then the report of its id finds the connection gone.
    writeFileSync(join(stubs, 'sbatch'), '#!/bin/bash\nsleep 1\necho "4242;cluster"\n', {mode: 0o755})
    writeFileSync(join(stubs, 'scancel'), `#!/bin/bash\nprintf '%s\\n' "$@" > '${join(stubs, 'scancel.calls')}'\n`, {mode: 0o755})
    // In a session of its own, as sshd starts it: the back-end hangs up its own process group when the connection goes.
    const child = spawn('bash', ['-c', bootstrapCommand()], {env: {PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: join(work, 'scratch'), USER: 'alice'}, cwd: home, detached: true})
    bundleStream(renderFiles(plan, ap), {token: Buffer.from('T'), password: Buffer.from('P'), condorTarball: tarball}, {filesAsOneEntry: true}).pipe(child.stdin)
    let seen = ''
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      // After the start estimate, the last report before sbatch.
      if (seen.includes('=-.-= ESTIMATE ')) child.stdout.destroy()
    })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    expect(code).not.toBe(0)
    expect(readFileSync(join(stubs, 'scancel.calls'), 'utf8')).toBe(`--user=${execUser()}\n--name=hpc-annex.demo.ap_5.0_1\n`)
    expect(readdirSync(join(work, 'scratch'))).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  })
})

function execUser(): string {
  return userInfo().username
}
