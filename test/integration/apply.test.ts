/**
 * hpc-annex apply on the loopback site (the fake condor tools as the Access
 * Point, the site's real sshd and SLURM): a 2-request file is made over one
 * login; applying it again makes nothing; once one request is gone, applying
 * again makes only that one.
 */
import {chownSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {expectContract} from '../fixtures/json-contract.js'
import {describeOnRealHTCondor, describeOnSite} from '../site/helpers.js'
import {annexSite, lenientMachines, until, type AnnexSite} from './annex-site.js'
import {startExtraSshd, type ExtraSshd} from './extra-sshd.js'
import {realAnnexSite, type RealAnnexSite} from './real-site.js'

interface Applied {
  warnings: string[]
  requests: {outcome: string; requestId?: string; stateJobId?: string; batchJobId?: string}[]
  logins: number
}

describeOnSite('hpc-annex apply on the loopback site', () => {
  let a: AnnexSite
  let file: string
  // A login node of this test's own (the site's user and SLURM), so its log counts only this tool's logins.
  let sshd: ExtraSshd
  let sshConfig: string
  const tmp = mkdtempSync(join(tmpdir(), 'hpc-annex-apply-ssh-'))
  beforeAll(async () => {
    a = annexSite()
    sshd = await startExtraSshd(a.s)
    const knownHosts = join(tmp, 'known_hosts')
    writeFileSync(knownHosts, `${sshd.name} ${sshd.hostKey.type} ${sshd.hostKey.base64}\n`)
    sshConfig = join(tmp, 'ssh_config')
    writeFileSync(
      sshConfig,
      ['Host hpc', `    HostName ${sshd.host}`, `    Port ${sshd.port}`, `    User ${a.s.user}`, `    IdentityFile ${a.s.keyFile}`, '    IdentitiesOnly yes', `    UserKnownHostsFile ${knownHosts}`, '    GlobalKnownHostsFile /dev/null', '    StrictHostKeyChecking yes', ''].join('\n'),
    )
    file = join(a.home, 'annex.toml')
    writeFileSync(
      file,
      [
        'name = "applied"',
        '',
        '[[requests]]',
        'target = "compute@sandbox"',
        'nodes = 1',
        'lifetime = 1800',
        'batch_options = {comment = "stage one"}',
        '',
        '[[requests]]',
        'target = "shared@sandbox"',
        'cpus = 1',
        'lifetime = 1800',
        '',
      ].join('\n'),
    )
  })
  afterAll(async () => {
    a?.close()
    await sshd?.stop()
    rmSync(tmp, {recursive: true, force: true})
  })

  const apply = async (extra: string[] = []) => {
    const before = sshd.logSize()
    const run = await a.cli(['apply', file, '--condor-tarball', a.s.condorTarball!, '--json', ...extra], {HPC_ANNEX_SSH_CONFIG: sshConfig})
    expect(run.code, run.stdout + run.stderr).toBe(0)
    const log = sshd.logSince(before)
    // SSH clients only (each says its protocol version): not the start-up check's bare TCP connect to the sshd.
    const counts = {connections: log.match(/Remote protocol version /g)?.length ?? 0, logins: log.match(/Accepted publickey for /g)?.length ?? 0}
    return {out: expectContract('apply', run.stdout) as unknown as Applied, counts, log}
  }
  const liveStateJobs = () => a.fake.state().jobs.filter((job) => job.hpc_annex_name === 'applied' && job.JobStatus !== 3)
  const batchJobs = () => a.leftovers().jobs.filter((name) => name.startsWith('hpc-annex.applied.'))

  it('creates both requests of the file over one login, then makes nothing, then only what went missing', async () => {
    a.fake.addJob({TargetAnnexName: 'applied'})

    const first = await apply()
    expect(first.out.requests.map((r) => r.outcome)).toEqual(['created', 'added'])
    expect(first.out.logins).toBe(1)
    // One TCP connection and one authentication for both requests.
    expect(first.counts.connections, first.log).toBe(1)
    expect(first.counts.logins).toBe(1)
    expect(liveStateJobs()).toHaveLength(2)
    const [one, two] = first.out.requests
    const job = a.onSite(`scontrol show job -o ${one!.batchJobId}`)
    expect(job.stdout).toContain(' Comment=stage one ')
    expect(job.stdout).toContain(' Partition=compute ')
    expect(a.onSite(`scontrol show job -o ${two!.batchJobId}`).stdout).toContain(' Partition=shared ')

    // Again: both are there; nothing is made and no login happens.
    const again = await apply()
    expect(again.out.requests.map((r) => [r.outcome, r.requestId])).toEqual([
      ['exists', one!.requestId],
      ['exists', two!.requestId],
    ])
    expect(again.out.logins).toBe(0)
    expect(again.counts.connections).toBe(0)
    expect(liveStateJobs()).toHaveLength(2)

    // The second request is shut down: its batch job cancelled, its state job removed.
    a.onSite(`scancel ${two!.batchJobId}`)
    a.fake.update((state) => {
      const job = state.jobs.find((j) => j.GlobalJobID === two!.requestId)!
      job.JobStatus = 3
    })
    const dry = await apply(['--dry-run'])
    expect(dry.out.requests.map((r) => r.outcome)).toEqual(['exists', 'would-add'])
    expect(dry.counts.connections).toBe(0)

    const third = await apply()
    expect(third.out.requests.map((r) => r.outcome)).toEqual(['exists', 'added'])
    expect(third.out.requests[0]!.requestId).toBe(one!.requestId)
    expect(third.out.requests[1]!.requestId).not.toBe(two!.requestId)
    expect(third.out.logins).toBe(1)
    expect(third.counts.logins).toBe(1)
    expect(liveStateJobs()).toHaveLength(2)

    const off = await a.cli(['shutdown', 'applied', '--cancel-pending'], {HPC_ANNEX_SSH_CONFIG: sshConfig})
    expect(off.code, off.stderr).toBe(0)
    await until('batch jobs gone', () => batchJobs().length === 0, 60_000)
  })

  it('goes on past a request the batch system refuses, and applying the fixed file makes only that one', async () => {
    a.fake.addJob({TargetAnnexName: 'retry'})
    // debug@lenient allows more time than SLURM's debug partition: sbatch refuses it after every check passed.
    const machineDir = mkdtempSync(join(tmpdir(), 'hpc-annex-apply-machines-'))
    const machines = lenientMachines(machineDir)
    const retry = join(a.home, 'retry.toml')
    const write = (lifetime: number) =>
      writeFileSync(retry, `name = "retry"\n[[requests]]\ntarget = "compute@sandbox"\nlifetime = 1800\n[[requests]]\ntarget = "debug@lenient"\nlifetime = ${lifetime}\n`)
    const run = (extra: NodeJS.ProcessEnv = {}) => a.cli(['apply', retry, '--condor-tarball', a.s.condorTarball!, '--json'], {HPC_ANNEX_SSH_CONFIG: sshConfig, HPC_ANNEX_MACHINES: machines, ...extra})
    write(3600)
    const failed = await run()
    expect(failed.code, failed.stderr).toBe(2)
    const first = expectContract('apply', failed.stdout) as unknown as Applied & {requests: {error?: {message: string}}[]}
    expect(first.requests.map((r) => r.outcome)).toEqual(['created', 'failed'])
    expect(first.requests[1]!.error!.message).toMatch(/the batch system refused the job/)
    // The refused request left no state job behind.
    expect(a.fake.state().jobs.filter((job) => job.hpc_annex_name === 'retry' && job.JobStatus !== 3)).toHaveLength(1)

    write(1800)
    const fixed = await run()
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0)
    const second = expectContract('apply', fixed.stdout) as unknown as Applied
    expect(second.warnings).toEqual([])
    expect(second.requests.map((r) => [r.outcome, r.requestId === first.requests[0]!.requestId])).toEqual([
      ['exists', true],
      ['added', false],
    ])
    const off = await a.cli(['shutdown', 'retry', '--cancel-pending'], {HPC_ANNEX_SSH_CONFIG: sshConfig, HPC_ANNEX_MACHINES: machines})
    expect(off.code, off.stderr).toBe(0)
    await until('batch jobs gone', () => !a.leftovers().jobs.some((name) => name.startsWith('hpc-annex.retry.')), 60_000)
    rmSync(machineDir, {recursive: true, force: true})
  })
})

describeOnRealHTCondor('hpc-annex apply --dry-run against a real schedd', () => {
  let r: RealAnnexSite
  beforeAll(() => {
    r = realAnnexSite()
  })
  afterAll(() => r?.close())

  it('reads the live requests from real condor_q output: a held state job counts, a removed one does not', async () => {
    // A state job as create writes it (the attributes apply compares), held so that it never runs.
    const sub = join(r.home, 'state.sub')
    writeFileSync(
      sub,
      [
        'universe = local',
        'executable = /bin/true',
        'hold = true',
        '+hpc_annex_name = "realapply"',
        '+hpc_annex_system = "sandbox"',
        '+hpc_annex_queue_name = "compute"',
        '+hpc_annex_nodes = "1"',
        '+hpc_annex_lifetime = "1800"',
        '+hpc_annex_cpus = undefined',
        '+hpc_annex_mem_mb = undefined',
        'queue',
        '',
      ].join('\n'),
    )
    chownSync(sub, r.ap.uid, r.ap.gid)
    const submitted = r.condor('condor_submit', [sub])
    expect(submitted.code, submitted.stderr).toBe(0)
    const cluster = /submitted to cluster (\d+)/.exec(submitted.stdout)![1]!
    const file = join(r.home, 'annex.toml')
    writeFileSync(file, 'name = "realapply"\n[[requests]]\ntarget = "compute@sandbox"\nnodes = 1\nlifetime = 1800\n[[requests]]\ntarget = "shared@sandbox"\ncpus = 1\nlifetime = 1800\n')
    chownSync(file, r.ap.uid, r.ap.gid)
    const dry = async () => {
      const run = await r.cli(['apply', file, '--dry-run', '--json'])
      expect(run.code, run.stdout + run.stderr).toBe(0)
      return (expectContract('apply', run.stdout) as unknown as Applied).requests.map((x) => [x.outcome, x.stateJobId])
    }
    expect(await dry()).toEqual([
      ['exists', `${cluster}.0`],
      ['would-add', undefined],
    ])
    expect(r.condor('condor_rm', [cluster]).code).toBe(0)
    expect(await dry()).toEqual([
      ['would-create', undefined],
      ['would-add', undefined],
    ])
  })
})
