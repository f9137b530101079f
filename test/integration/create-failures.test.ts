/**
 * A create that fails or is interrupted at any step leaves nothing behind on
 * the login node (no staging or pilot directory, no batch job) nor on the
 * Access Point (no state job, no token file), and a re-run then succeeds.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, beforeEach, expect, it} from 'vitest'

import {describeOnSite} from '../site/helpers.js'
import {added, annexSite, lenientMachines, until, type AnnexSite, type Leftovers} from './annex-site.js'

/** The pid of the sshd session process serving the command that matches `pattern` (run as hpcuser). */
function sessionOf(pattern: string): number | undefined {
  const found = spawnSync('pgrep', ['-u', 'hpcuser', '-f', pattern], {encoding: 'utf8'}).stdout.trim().split('\n')[0]
  let pid = found ? Number(found) : undefined
  while (pid !== undefined && pid > 1) {
    const [ppid, comm] = spawnSync('ps', ['-o', 'ppid=,args=', '-p', String(pid)], {encoding: 'utf8'}).stdout.trim().split(/\s+(.*)/)
    if (comm?.startsWith('sshd-annexsite: hpcuser@notty')) return pid
    pid = ppid ? Number(ppid) : undefined
  }
  return undefined
}

describeOnSite('create failures on the loopback site', () => {
  let a: AnnexSite
  let machines: string
  let lenient: string
  let image: string

  beforeAll(() => {
    a = annexSite()
    // A machine file that allows more than SLURM's debug partition does: sbatch refuses.
    machines = mkdtempSync(join(tmpdir(), 'annex-machines-'))
    lenient = lenientMachines(machines)
    // Big enough that the upload is still running when the test strikes.
    image = join(a.home, 'big.sif')
    // Unique, so no earlier run left it in the login node's cache.
    writeFileSync(image, randomBytes(64))
    execFileSync('truncate', ['-s', String(400 * 1024 * 1024), image])
  })
  afterAll(() => {
    a?.close()
    rmSync(machines, {recursive: true, force: true})
  })
  afterEach(() => {
    a.fake.update((state) => {
      state.jobs = []
    })
  })

  const create = (name: string, extra: string[] = []) => ['create', name, 'compute@sandbox', '--nodes', '1', '--condor-tarball', a.s.condorTarball!, ...extra]

  let baseline: Leftovers
  beforeEach(() => {
    baseline = a.leftovers()
  })

  async function expectNothingLeft(name: string): Promise<void> {
    const none = {staging: [], pilots: [], jobs: []}
    const clean = () => JSON.stringify(added(baseline, a.leftovers())) === JSON.stringify(none)
    await until('the login node to be clean', () => (clean() ? true : undefined), 20_000).catch(() => expect(added(baseline, a.leftovers())).toEqual(none))
    expect(a.fake.state().jobs.filter((j) => j.hpc_annex_name === name)).toEqual([])
    expect(a.fake.tokenFiles()).toEqual([])
  }

  it('sbatch refuses the job: the error says so and what was undone', async () => {
    a.fake.addJob({TargetAnnexName: 'refused'})
    const run = await a.cli(['create', 'refused', 'debug@lenient', '--lifetime', '3600', '--condor-tarball', a.s.condorTarball!], {HPC_ANNEX_MACHINES: lenient})
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: the batch system refused the job: .*\(undone: .*removed the state job/m)
    expect(run.stderr).toContain('deleted the local token')
    expect(run.stderr).toMatch(/sbatch: .*time limit is invalid/i)
    await expectNothingLeft('refused')
  })

  it('condor_submit fails: the error names the step, and nothing is left on either side', async () => {
    a.fake.addJob({TargetAnnexName: 'nosubmit'})
    const run = await a.cli(create('nosubmit'), {FAKE_CONDOR_FAULT: 'condor_submit:fail'})
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/^Error: Submitting the state job for nosubmit failed: /m)
    await expectNothingLeft('nosubmit')
  })

  it('the connection drops during the upload', async () => {
    a.fake.addJob({TargetAnnexName: 'dropped', TransferContainer: true, ContainerImage: image})
    const child = a.start(create('dropped'))
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    const session = await until('the upload to start', () => sessionOf('^tar -b [0-9]+ -B -xf - --to-command'), 60_000)
    process.kill(session, 'SIGKILL')
    expect(await exited).toBe(2)
    expect(stderr).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: .*(connection|lost|closed).*\(undone: .*removed the state job/im)
    await expectNothingLeft('dropped')
  })

  it('Ctrl-C during the upload undoes everything and exits 130', async () => {
    a.fake.addJob({TargetAnnexName: 'interrupted', TransferContainer: true, ContainerImage: image})
    const child = a.start(create('interrupted'))
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    await until('the upload to start', () => sessionOf('^tar -b [0-9]+ -B -xf - --to-command'), 60_000)
    child.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(stderr).toMatch(/failed: interrupted \(undone: .*removed the state job/)
    await expectNothingLeft('interrupted')
  })

  it('after all that, the same request succeeds', async () => {
    a.fake.addJob({TargetAnnexName: 'dropped', TransferContainer: true, ContainerImage: image})
    const run = await a.cli([...create('dropped'), '--json'])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const result = JSON.parse(run.stdout) as {batchJobId: string}
    expect(result.batchJobId).toMatch(/^\d+$/)
    a.onSite(`scancel ${result.batchJobId}`)
  })
})

