import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {formatShutdown, shutdownAnnex} from '../../src/annex/shutdown.js'
import {annexOff} from '../../src/condor/off.js'
import {submitToAnnex} from '../../src/annex/submit.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {runCli} from './helpers/cli.js'

let fake: FakeCondor
let restore: () => void
const POOL = 'vm:9618?sock=ap_collector'

beforeEach(() => {
  fake = createFakeCondor()
  restore = fake.install()
  writeFileSync(fake.state().config.ANNEX_PASSWORD_FILE!, 'secret', {mode: 0o400})
  const master = (name: string, annex: string) => ({MyType: 'DaemonMaster', Name: name, AnnexName: annex, IsAnnex: true})
  const slot = (name: string, annex: string) => ({MyType: 'Machine', Name: `slot1@${name}`, AnnexName: annex, PartitionableSlot: true, TotalSlotCpus: 4, ChildCpus: [2]})
  fake.advertise([master('n1', 'alpha'), master('n2', 'alpha'), master('n3', 'alpha'), slot('n1', 'alpha'), master('b1', 'beta'), slot('b1', 'beta')])
  // Requests not yet joined are untouched.
  fake.addJob({hpc_annex_name: 'alpha', hpc_annex_JOB_ID: '55'})
})
afterEach(() => {
  restore()
  fake.cleanup()
})

describe('shutdown', () => {
  it('sends a fast off to every master of the annex and reports how many were told', async () => {
    const result = await shutdownAnnex({name: 'alpha'})
    expect(result).toEqual({annexName: 'alpha', found: 3, told: ['n1', 'n2', 'n3']})
    const left = fake.state().collectors[POOL]!.map((ad) => ad.Name)
    expect(left).toEqual(['b1', 'slot1@b1'])
    expect(fake.state().jobs).toHaveLength(1)
    expect(formatShutdown(result)).toMatch(/^Shutting down annex 'alpha': told 3 of 3 resources to shut down \(n1, n2, n3\)\./)
    const off = fake.calls().find((c) => c.tool === 'condor_off')!
    expect(off.env._CONDOR_SEC_PASSWORD_FILE).toBe(fake.state().config.ANNEX_PASSWORD_FILE)
    expect(fake.tokenFiles()).toEqual([])
    const fetch = fake.calls().find((c) => c.tool === 'condor_token_fetch')!
    expect(fetch.argv[fetch.argv.indexOf('-token') + 1]).toMatch(new RegExp(`^shutdown\\.${fake.user}@vm\\.[^.]+\\.${process.pid}\\.[0-9a-f]{12}$`))
  })

  it('says "nothing found" and runs no condor_off when the annex has no pilots', async () => {
    const result = await shutdownAnnex({name: 'gamma'})
    expect(result).toEqual({annexName: 'gamma', found: 0, told: []})
    expect(formatShutdown(result)).toBe("No resources found in annex 'gamma'.")
    expect(fake.calls().filter((c) => c.tool === 'condor_off')).toEqual([])
  })

  it("waits for the master ad of a pilot whose slot has joined (a master advertises seconds after its startd)", async () => {
    const ids = {AnnexName: 'delta', Machine: 'node7', hpc_annex_request_id: 'ap#9.0#1'}
    fake.advertise({MyType: 'Machine', Name: 'slot1@pilot.node7', PartitionableSlot: true, TotalSlotCpus: 2, ...ids})
    const late = setTimeout(() => fake.advertise({MyType: 'DaemonMaster', Name: 'pilot.node7', ...ids}), 1500)
    try {
      const result = await shutdownAnnex({name: 'delta'})
      expect(result).toEqual({annexName: 'delta', found: 1, told: ['pilot.node7']})
    } finally {
      clearTimeout(late)
    }
  })

  it('waits no longer than it is told to for a master that never advertises', async () => {
    fake.advertise({MyType: 'Machine', Name: 'slot1@pilot.node8', AnnexName: 'epsilon', Machine: 'node8'})
    const t0 = Date.now()
    const result = await shutdownAnnex({name: 'epsilon', masterWait: 1})
    expect(result).toEqual({annexName: 'epsilon', found: 0, told: []})
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000)
    expect(fake.calls().filter((c) => c.tool === 'condor_off')).toEqual([])
  })

  it('a condor_off that finds the masters gone (they left since the query) told nobody; it is no failure', async () => {
    const told = await annexOff({annexName: 'gamma', pool: POOL, passwordFile: fake.state().config.ANNEX_PASSWORD_FILE!})
    expect(told).toEqual([])
    const off = fake.calls().find((c) => c.tool === 'condor_off')!
    expect(off.argv).toEqual(['-fast', '-annex-name', 'gamma', '-pool', POOL])
  })

  it('a failing condor_off is a system error with its stderr', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_off:fail'
    try {
      await expect(shutdownAnnex({name: 'alpha'})).rejects.toThrow(/^condor_off failed \(exit status 1\)/)
    } finally {
      delete process.env.FAKE_CONDOR_FAULT
    }
    expect(fake.tokenFiles()).toEqual([])
  })

  it('the command: exit 0 and the count; exit 1 for a bad name', {timeout: 60_000}, () => {
    const env = {...fake.env}
    const told = runCli(['shutdown', 'beta'], env)
    expect(told).toMatchObject({status: 0, stdout: expect.stringMatching(/told 1 of 1 resource to shut down \(b1\)/)})
    expect(runCli(['shutdown', 'beta', '--json'], env)).toMatchObject({status: 0, stdout: expect.stringContaining('"found": 0')})
    expect(runCli(['shutdown', 'a b'], env)).toMatchObject({status: 1, stderr: expect.stringMatching(/^Error: The annex name 'a b' is not allowed/)})
  })
})

describe('submit --annex-name', () => {
  it('submits the file with MY.TargetAnnexName set', async () => {
    const file = join(fake.dir, 'job.sub')
    writeFileSync(file, 'executable = /bin/true\narguments = $(Process)\nqueue 2\n')
    expect(await submitToAnnex({file, annexName: 'alpha'})).toMatchObject({annexName: 'alpha', jobs: 2})
    const jobs = fake.state().jobs.filter((j) => j.Args !== undefined)
    expect(jobs.map((j) => [j.TargetAnnexName, j.Args])).toEqual([['alpha', '0'], ['alpha', '1']])
  })

  it('refuses when annexes are not enabled, a bad name, or a missing file; submits nothing', async () => {
    const file = join(fake.dir, 'job.sub')
    writeFileSync(file, 'executable = /bin/true\nqueue\n')
    await expect(submitToAnnex({file, annexName: 'bad"name'})).rejects.toThrow(/annex name/)
    await expect(submitToAnnex({file: join(fake.dir, 'none.sub'), annexName: 'alpha'})).rejects.toThrow(/does not exist/)
    fake.update((s) => {
      s.config.HPC_ANNEX_ENABLED = 'false'
    })
    await expect(submitToAnnex({file, annexName: 'alpha'})).rejects.toThrow('HPC Annex functionality has not been enabled by your HTCondor administrator.')
    expect(fake.calls().filter((c) => c.tool === 'condor_submit')).toEqual([])
  })

  it('the command prints the cluster and returns it with --json', {timeout: 60_000}, () => {
    const file = join(fake.dir, 'job.sub')
    writeFileSync(file, 'executable = /bin/true\nqueue\n')
    const result = runCli(['submit', file, '--annex-name', 'alpha', '--json'], fake.env)
    expect(result.status).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({annexName: 'alpha', jobs: 1})
    expect(runCli(['submit', file], fake.env)).toMatchObject({status: 1, stderr: expect.stringContaining('--annex-name is required: add --annex-name NAME')})
  })
})
