import {chmodSync, mkdirSync, statSync, writeFileSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {markStarted} from '../../src/annex/mark-started.js'
import {
  annexJobs,
  annexQueue,
  checkAnnexNameRule,
  checkRequireJob,
  editJobsForStagedImages,
  revertImageEdits,
  ensurePasswordFile,
  findScheddName,
  findSifImages,
  isImageUrl,
  stagedImageEdits,
} from '../../src/annex/preflight.js'
import {abandonRequest, recordControlValues, stateJobDescription, submitStateJob} from '../../src/annex/state-job.js'
import type {Plan} from '../../src/catalog/plan.js'
import {AnnexError} from '../../src/errors.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

let fake: FakeCondor
let restore: () => void

beforeEach(() => {
  fake = createFakeCondor()
  restore = fake.install()
})
afterEach(() => {
  restore()
  fake.cleanup()
})

function plan(overrides: Partial<Plan> = {}): Plan {
  return {
    annexName: 'demo',
    system: {key: 'anvil', name: 'Anvil', batch: 'slurm', source: 'backends/anvil.toml'},
    queue: {name: 'wholenode', allocation: 'node', maxNodes: 16, maxDuration: 172800},
    queueArgument: ['-p', 'wholenode'],
    nodes: 2,
    lifetime: 7200,
    idleTime: 300,
    charge: {known: false, reason: 'not part of this test'},
    login: {host: 'anvil.rcac.purdue.edu', hostFromFlag: false},
    owners: ['alice', 'bob'],
    scratch: '$SCRATCH',
    memoryChunkMb: 2048,
    fanOut: 'srun',
    htcondor: {version: '25.0.0', versionFrom: 'machine file', urlBase: 'https://htcss-downloads.chtc.wisc.edu/tarball/', urlBaseFrom: 'default', platforms: ['AlmaLinux9'], machineSha256: {}, checksumFile: 'sha256sum.txt', tarballs: []},
    configFragment: '',
    shellFragment: '',
    pilotDirFragment: '',
    staging: [],
    ...overrides,
  }
}

const COLLECTOR = 'vm:9618?sock=ap_collector'

describe('the state job', () => {
  it('carries the reference attributes with HTCondor\'s names and values', () => {
    const text = stateJobDescription(plan({cpus: 8, project: 'abc123'}), {collector: COLLECTOR, node: '/usr/bin/node', script: '/opt/hpc-annex/bin/run.js'})
    const lines = text.split('\n')
    for (const line of [
      'universe = local',
      'executable = /usr/bin/node',
      'arguments = /opt/hpc-annex/bin/run.js internal mark-started $(ClusterId).$(ProcId)',
      'requirements = hpc_annex_start_time =?= undefined',
      'cron_minute = */5',
      'on_exit_remove = PeriodicRemove =?= true',
      'periodic_remove = hpc_annex_start_time + 7200 + 3600 < time()',
      'jobbatchname = demo [HPC Annex]',
      '+hpc_annex_request_id = GlobalJobID',
      '+hpc_annex_name = "demo"',
      '+hpc_annex_queue_name = "wholenode"',
      `+hpc_annex_collector = "${COLLECTOR}"`,
      '+hpc_annex_lifetime = "7200"',
      '+hpc_annex_owners = "alice,bob"',
      '+hpc_annex_nodes = "2"',
      '+hpc_annex_cpus = "8"',
      '+hpc_annex_mem_mb = undefined',
      '+hpc_annex_allocation = "abc123"',
      '+hpc_annex_remote_script_dir = undefined',
      'queue',
    ]) expect(lines).toContain(line)
  })

  it('submits, and the request id is the job\'s GlobalJobID (read back, not the /Expr/)', async () => {
    const request = await submitStateJob(plan(), {collector: COLLECTOR, remoteScriptDir: '/scratch/x/remote_script.AB12'})
    const job = fake.state().jobs[0]!
    expect(request).toEqual({clusterId: job.ClusterId, jobId: `${job.ClusterId}.0`, requestId: job.GlobalJobID, firstOfName: `${job.ClusterId}.0`})
    expect(request.requestId).toMatch(/^ap@vm#\d+\.0#\d+$/)
    expect(job).toMatchObject({
      JobUniverse: 12, CronMinute: '*/5', JobBatchName: 'demo [HPC Annex]', hpc_annex_request_id: {$expr: 'GlobalJobID'},
      hpc_annex_lifetime: '7200', hpc_annex_nodes: '2', hpc_annex_cpus: null, hpc_annex_remote_script_dir: '/scratch/x/remote_script.AB12',
      Requirements: {$expr: 'hpc_annex_start_time =?= undefined'}, Cmd: process.execPath,
    })
    expect(String(job.Args)).toMatch(/bin\/run\.js internal mark-started 1\.0$/)
  })

  it('records the run that submitted it, and names the oldest state job of its name still queued', async () => {
    const first = await submitStateJob(plan(), {collector: COLLECTOR, creator: 'ap.example.org 4242 b-1:77 0a1b2c'})
    const second = await submitStateJob(plan(), {collector: COLLECTOR})
    expect(fake.state().jobs[0]).toMatchObject({hpc_annex_creator: 'ap.example.org 4242 b-1:77 0a1b2c'})
    expect(fake.state().jobs[1]!.hpc_annex_creator ?? null).toBeNull()
    expect(first.firstOfName).toBe(first.jobId)
    expect(second.firstOfName).toBe(first.jobId)
    // A removed state job no longer holds the name.
    await abandonRequest(first, 'withdrawn')
    const third = await submitStateJob(plan(), {collector: COLLECTOR})
    expect(third.firstOfName).toBe(second.jobId)
  })

  it('values with $ and quotes reach the job ad unchanged (no macro expands)', async () => {
    await submitStateJob(plan({project: 'p$(HOME)"x'}), {collector: COLLECTOR, remoteScriptDir: '$HOME/dir "q"'})
    expect(fake.state().jobs[0]).toMatchObject({hpc_annex_allocation: 'p$(HOME)"x', hpc_annex_remote_script_dir: '$HOME/dir "q"'})
  })

  it('refuses an install path that arguments would split', () => {
    expect(() => stateJobDescription(plan(), {collector: COLLECTOR, script: '/opt/my tools/run.js'})).toThrow(/path with a space or a quote/)
  })

  it('records the back-end\'s control values as strings, and abandons a failed request with the reason', async () => {
    const request = await submitStateJob(plan(), {collector: COLLECTOR})
    await recordControlValues(request, {PID: '4242'})
    await recordControlValues(request, {JOB_ID: '123', PILOT_DIR: '/scratch/"odd" dir', REMOTE_SCRIPT_DIR: '/r'})
    expect(fake.state().jobs[0]).toMatchObject({hpc_annex_PID: '4242', hpc_annex_JOB_ID: '123', hpc_annex_PILOT_DIR: '/scratch/"odd" dir', hpc_annex_remote_script_dir: '/r'})
    await abandonRequest(request, 'Failed to start annex, SLURM returned code 1')
    expect(fake.state().history[0]).toMatchObject({RemoveReason: 'Failed to start annex, SLURM returned code 1'})
  })

  it('mark-started sets hpc_annex_start_time once a pilot of this request has joined, and only then', async () => {
    const request = await submitStateJob(plan(), {collector: COLLECTOR})
    expect(await markStarted(request.jobId, () => 1000)).toMatchObject({marked: false, requestId: request.requestId})
    expect(fake.state().jobs[0]!.hpc_annex_start_time).toBeUndefined()
    // A pilot of another request of the same annex does not count.
    fake.advertise({MyType: 'Machine', Name: 'slot1@n1', AnnexName: 'demo', hpc_annex_request_id: 'ap@vm#999.0#1'})
    expect(await markStarted(request.jobId, () => 1000)).toMatchObject({marked: false})
    fake.advertise({MyType: 'Machine', Name: 'slot1@n2', AnnexName: 'demo', hpc_annex_request_id: request.requestId})
    expect(await markStarted(request.jobId, () => 2000)).toMatchObject({marked: true, startTime: 2000})
    expect(fake.state().jobs[0]!.hpc_annex_start_time).toBe(2000)
    expect(await markStarted(request.jobId, () => 3000)).toMatchObject({marked: false, startTime: 2000})
  })
})

describe('checks before any login', () => {
  it('create refuses an existing name and points to add; add refuses a missing one', async () => {
    await expect(checkAnnexNameRule('add', 'demo')).rejects.toThrow("You need to create an annex named 'demo' first.")
    await checkAnnexNameRule('create', 'demo')
    fake.addJob({hpc_annex_name: 'demo'})
    const error = await checkAnnexNameRule('create', 'demo').catch((e: AnnexError) => e)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).exitCode).toBe(1)
    expect((error as AnnexError).message).toBe("You've already created an annex named 'demo'.")
    expect((error as AnnexError).hint).toContain('hpc-annex add demo')
    await checkAnnexNameRule('add', 'demo')
  })

  it('HPC_ANNEX_REQUIRE_JOB: no queued job for the annex is an error unless turned off', async () => {
    fake.addJob({TargetAnnexName: 'other'})
    const jobs = await annexJobs('demo')
    expect(jobs).toEqual([])
    expect(() => checkRequireJob(true, 'demo', jobs)).toThrow("No jobs for 'demo' are in the queue.")
    expect(() => checkRequireJob(false, 'demo', jobs)).not.toThrow()
  })

  it('exactly one schedd ad in the annex collector; its name goes to the pilot', async () => {
    await expect(findScheddName(COLLECTOR)).rejects.toThrow(/No scheduler reports to the annex collector/)
    fake.advertise({MyType: 'Scheduler', Name: 'ap@vm', MyAddress: '<192.0.2.2:9618?sock=schedd_1_a>'})
    expect(await findScheddName(COLLECTOR)).toBe('ap@vm')
    fake.advertise({MyType: 'Scheduler', Name: 'other@vm'})
    await expect(findScheddName(COLLECTOR)).rejects.toThrow(/Found 2 schedulers/)
  })

  it('a removed job still leaving the queue holds no name and needs no annex', async () => {
    fake.addJob({hpc_annex_name: 'gone', JobStatus: 3})
    fake.addJob({TargetAnnexName: 'gone', JobStatus: 3})
    expect(await annexQueue('gone')).toEqual({nameTaken: false, jobs: []})
    await expect(checkAnnexNameRule('create', 'gone')).resolves.toBeUndefined()
    fake.addJob({hpc_annex_name: 'gone', JobStatus: 1})
    expect((await annexQueue('gone')).nameTaken).toBe(true)
  })

  it('finds .sif images of queued jobs (relative to Iwd); a missing one names the job', async () => {
    const iwd = join(fake.dir, 'work')
    mkdirSync(join(iwd, 'img'), {recursive: true})
    writeFileSync(join(iwd, 'img', 'a.sif'), 'sif')
    const a = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'img/a.sif', TransferInput: 'in.txt,img/a.sif'})
    fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: false, ContainerImage: 'img/a.sif'})
    fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'docker://alpine'})
    const images = findSifImages(await annexJobs('demo'))
    const before = {ContainerImage: 'img/a.sif', TransferInput: 'in.txt,img/a.sif', hpc_annex_image_source: null}
    expect(images).toEqual([{jobId: `${a.ClusterId}.0`, containerImage: 'img/a.sif', path: join(iwd, 'img', 'a.sif'), basename: 'a.sif', transferInput: 'in.txt,img/a.sif', iwd, before}])
    const missing = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'gone.sif'})
    expect(() => findSifImages(fake.state().jobs)).toThrow(`Job ${missing.ClusterId}.0 specified container image '${join(iwd, 'gone.sif')}', which doesn't exist.`)
  })

  it('finds the image of a job as condor_submit 24 and later writes it (WantContainer, ContainerImageFullPath, the path in TransferInput)', async () => {
    const iwd = join(fake.dir, 'new')
    mkdirSync(iwd)
    const full = join(iwd, 'a.sif')
    writeFileSync(full, 'sif')
    // As HTCondor 25.13's condor_submit leaves a `universe = container` job with `container_image = <full>`:
    const job = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, WantContainer: true, WantSIF: true, ContainerImage: 'a.sif', ContainerImageFullPath: full, TransferInput: `input.dat,${full}`})
    fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, WantContainer: true, TransferContainer: false, ContainerImage: 'a.sif', ContainerImageFullPath: full})
    const images = findSifImages(await annexJobs('demo'))
    expect(images.map((i) => [i.jobId, i.path])).toEqual([[`${job.ClusterId}.0`, full]])
    await editJobsForStagedImages(images)
    expect(fake.state().jobs.find((j) => j.ClusterId === job.ClusterId)).toMatchObject({ContainerImage: 'a.sif', TransferInput: 'input.dat', hpc_annex_image_source: full})
  })

  it('passes images given as URLs through untouched: they are not files here, and a create of the annex goes on', async () => {
    const iwd = join(fake.dir, 'urls')
    mkdirSync(iwd)
    // A local file of the same name must not be taken for the URL's image.
    writeFileSync(join(iwd, 'y.sif'), 'not the image')
    // As HTCondor 25.13.2's condor_submit leaves `universe = container` jobs with
    // `transfer_input_files = in.dat` and these `container_image`s:
    const url = (image: string, source: string) =>
      fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, WantContainer: true, ContainerImage: 'y.sif', ContainerImageFullPath: image, ContainerImageSource: source, TransferInput: `in.dat,${image}`})
    url('osdf:///ospool/ap40/data/me/y.sif', 'osdf')
    url('https://example.org/images/y.sif', 'https')
    url('file:///shared/images/y.sif', 'file')
    fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, WantContainer: true, ContainerImage: 'docker://example/y.sif', ContainerImageSource: 'docker', TransferInput: 'in.dat'})
    // Before condor_submit 24: the URL in ContainerImage, no ContainerImageSource.
    fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'stash:///osgconnect/public/me/y.sif', TransferInput: 'stash:///osgconnect/public/me/y.sif'})
    const local = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, WantContainer: true, ContainerImage: 'y.sif', ContainerImageFullPath: join(iwd, 'y.sif'), ContainerImageSource: 'cedar', TransferInput: `in.dat,${join(iwd, 'y.sif')}`})
    const before = structuredClone(fake.state().jobs)

    const images = findSifImages(await annexJobs('demo'))
    expect(images.map((i) => [i.jobId, i.path])).toEqual([[`${local.ClusterId}.0`, join(iwd, 'y.sif')]])
    await editJobsForStagedImages(images)
    const after = fake.state().jobs
    for (const job of before.filter((j) => j.ClusterId !== local.ClusterId)) expect(after.find((j) => j.ClusterId === job.ClusterId)).toEqual(job)
    expect(isImageUrl('osdf:///x/y.sif')).toBe(true)
    expect(isImageUrl('/x/osdf://y.sif')).toBe(false)
    expect(isImageUrl('relative/y.sif')).toBe(false)
  })

  it('after submit, jobs use the staged image: ContainerImage basename, the image out of TransferInput (undefined if empty)', async () => {
    const iwd = join(fake.dir, 'w')
    mkdirSync(iwd)
    writeFileSync(join(iwd, 'b.sif'), 'sif')
    const one = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'b.sif', TransferInput: 'b.sif'})
    const two = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: join(iwd, 'b.sif'), TransferInput: 'x.dat, b.sif ,y.dat'})
    await editJobsForStagedImages(findSifImages(await annexJobs('demo')))
    const jobs = fake.state().jobs
    expect(jobs.find((j) => j.ClusterId === one.ClusterId)).toMatchObject({ContainerImage: 'b.sif', TransferInput: null})
    expect(jobs.find((j) => j.ClusterId === two.ClusterId)).toMatchObject({ContainerImage: 'b.sif', TransferInput: 'x.dat,y.dat'})
    expect(stagedImageEdits({jobId: '1.0', containerImage: 'c.sif', path: '/c.sif', basename: 'c.sif', before: {}})).toEqual({ContainerImage: 'c.sif', hpc_annex_image_source: '/c.sif'})
    // A later add finds the images again, by the source recorded on the jobs.
    expect(findSifImages(await annexJobs('demo')).map((i) => i.path)).toEqual([join(iwd, 'b.sif'), join(iwd, 'b.sif')])
  })

  it('a failed request puts back what the image edits changed, and only on the jobs already edited', async () => {
    const iwd = join(fake.dir, 'r')
    mkdirSync(iwd)
    writeFileSync(join(iwd, 'c.sif'), 'sif')
    const one = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'c.sif', TransferInput: 'c.sif,in.dat'})
    const two = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: join(iwd, 'c.sif')})
    const original = structuredClone(fake.state().jobs)
    const images = findSifImages(await annexJobs('demo'))
    const applied: typeof images = []
    await editJobsForStagedImages(images, applied)
    expect(applied).toEqual(images)
    expect(fake.state().jobs.find((j) => j.ClusterId === one.ClusterId)).toMatchObject({ContainerImage: 'c.sif', TransferInput: 'in.dat', hpc_annex_image_source: join(iwd, 'c.sif')})
    await revertImageEdits(applied)
    for (const job of [one, two]) {
      const now = fake.state().jobs.find((j) => j.ClusterId === job.ClusterId)!
      const then = original.find((j) => j.ClusterId === job.ClusterId)!
      for (const name of ['ContainerImage', 'TransferInput']) expect(now[name] ?? null, name).toEqual(then[name] ?? null)
      expect(now.hpc_annex_image_source ?? null).toBeNull()
    }
    // A job whose edit failed is not in applied, and is not touched by the revert.
    const partial: typeof images = []
    process.env.FAKE_CONDOR_FAULT = 'condor_qedit:fail'
    try {
      await expect(editJobsForStagedImages(images, partial)).rejects.toThrow(/condor_qedit failed/)
    } finally {
      delete process.env.FAKE_CONDOR_FAULT
    }
    expect(partial).toEqual([])
  })

  it('a hostile .sif path never breaks the edit: it lands as one string on that job only', async () => {
    const iwd = join(fake.dir, 'h')
    mkdirSync(iwd)
    const name = 'x" ; TargetAnnexName = "pwn$(HOME)\\.sif'
    writeFileSync(join(iwd, name), 'sif')
    const job = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: name, TransferInput: `${name},in`})
    const bystander = fake.addJob({TargetAnnexName: 'demo'})
    await editJobsForStagedImages(findSifImages(await annexJobs('demo')))
    const jobs = fake.state().jobs
    expect(jobs.find((j) => j.ClusterId === job.ClusterId)).toMatchObject({ContainerImage: name, TransferInput: 'in', TargetAnnexName: 'demo'})
    expect(jobs.find((j) => j.ClusterId === bystander.ClusterId)).toMatchObject({TargetAnnexName: 'demo'})
    expect(jobs.find((j) => j.ClusterId === bystander.ClusterId)!.ContainerImage).toBeUndefined()
  })

  it('a .sif path with a newline is refused with an error naming the job, not sent', async () => {
    const iwd = join(fake.dir, 'n')
    mkdirSync(iwd)
    writeFileSync(join(iwd, 'a\nb.sif'), 'sif')
    const job = fake.addJob({TargetAnnexName: 'demo', Iwd: iwd, TransferContainer: true, ContainerImage: 'a\nb.sif'})
    const before = fake.calls().filter((c) => c.tool === 'condor_qedit').length
    await expect(editJobsForStagedImages(findSifImages(await annexJobs('demo')))).rejects.toThrow(`Job ${job.ClusterId}.0's container image`)
    expect(fake.calls().filter((c) => c.tool === 'condor_qedit').length).toBe(before)
  })

  it('creates the password file once: 16 random bytes, mode 0400', () => {
    const path = join(fake.dir, 'sub', 'annex_password_file')
    expect(ensurePasswordFile(path)).toBe(true)
    expect(statSync(path).mode & 0o777).toBe(0o400)
    const first = readFileSync(path)
    expect(first).toHaveLength(16)
    expect(ensurePasswordFile(path)).toBe(false)
    expect(readFileSync(path).equals(first)).toBe(true)
    const other = join(fake.dir, 'other_password_file')
    ensurePasswordFile(other)
    expect(readFileSync(other).equals(first)).toBe(false)
  })

  it('refuses a password file that others can read, naming it and the chmod (as a --token_file)', () => {
    const path = join(fake.dir, 'annex_password_file')
    writeFileSync(path, 'secret', {mode: 0o644})
    chmodSync(path, 0o644)
    expect(() => ensurePasswordFile(path)).toThrow(`The password file '${path}' is readable by others; run chmod 600 on it.`)
    expect(() => ensurePasswordFile(path)).toThrow(expect.objectContaining({exitCode: 1}))
    chmodSync(path, 0o640)
    expect(() => ensurePasswordFile(path)).toThrow(/readable by others/)
    chmodSync(path, 0o600)
    expect(ensurePasswordFile(path)).toBe(false)
  })
})
