/**
 * The whole flow on real HTCondor: an Access Point with `use feature:HPC_ANNEX`
 * (a personal pool run by an unprivileged user), `admin check`, a job
 * submitted for the annex, a create whose real pilots (from the HTCondor
 * release tarball, started by the site's real SLURM) join and run that job,
 * then status, logs and shutdown.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnRealHTCondor, logOffsets, sshdCounts} from '../site/helpers.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'
import {expectContract} from '../fixtures/json-contract.js'

interface Created {
  batchJobId: string
  estimate?: {available: boolean; text: string}
  pilotDir: string
  requestId: string
  stateJobId: string
  remoteCommands: number
}

describeOnRealHTCondor('create on the loopback site', () => {
  let a: RealAnnexSite
  beforeAll(() => {
    a = realAnnexSite()
  })
  afterAll(() => a?.close())

  const annex = async (name: string) => (await a.status(name)).find((x) => x.annexName === name)

  it('checks the Access Point, creates a two-node annex whose real pilots run the annex job, and shuts it down', async () => {
    const check = await a.cli(['admin', 'check'])
    expect(check.code, check.stdout + check.stderr).toBe(0)

    const cluster = await a.submitJob('demo')
    // Other test runs on this machine may be staging at the same time: what this create leaves is what is new.
    const staged = a.leftovers().staging
    const before = logOffsets()
    const created = await a.cli(['create', 'demo', 'compute@sandbox', '--nodes', '2', '--lifetime', '1800', '--condor-tarball', a.tarball, '--json'])
    expect(created.code, created.stderr).toBe(0)
    const result = expectContract('create', created.stdout) as unknown as Created
    expect(result.batchJobId).toMatch(/^\d+$/)
    expect(result.remoteCommands).toBe(1)
    // In that one command, just before sbatch: SLURM's own start estimate for the same script
    // (now on an idle partition; other runs may hold the site's nodes, so a later start too).
    expect(result.estimate).toMatchObject({available: true})
    expect(result.estimate!.text).toMatch(/^SLURM says the request would start (now|in about \d+ min, at \d\d:\d\d), on 2 nodes \(node\[\d-\d\]\) \(sbatch --test-only\)\.$/)

    // One connection, one login, one session.
    const counts = sshdCounts(before)
    expect(counts.connections).toBe(1)
    expect(counts.logins).toBe(1)
    expect(counts.sessions).toBe(1)

    // The real schedd holds the state job with what the back-end reported, and no token is left on the Access Point.
    const [state] = a.jobs(`hpc_annex_request_id == "${result.requestId}"`)
    expect(state).toMatchObject({
      hpc_annex_name: 'demo',
      hpc_annex_JOB_ID: result.batchJobId,
      hpc_annex_PILOT_DIR: result.pilotDir,
      hpc_annex_system: 'sandbox',
      JobUniverse: 12,
      JobBatchName: 'demo [HPC Annex]',
    })
    expect(String(state!.hpc_annex_PID)).toMatch(/^\d+$/)
    expect(a.condor('sh', ['-c', 'ls -A "$(condor_config_val SEC_TOKEN_DIRECTORY)"']).stdout).toBe('')

    // Both pilots join the annex collector, authenticated by their token as the Access Point's user.
    const joined = await until('2 nodes joined', async () => {
      const demo = await annex('demo')
      return demo && demo.nodes.joined === 2 ? demo : undefined
    }, 90_000)
    expect(joined.nodes).toEqual({requested: 2, joined: 2})
    expect(joined.cpus.total).toBe(4)
    expect(joined.requestList[0]!.batchJobId).toBe(result.batchJobId)
    const slots = a.ads('demo')
    expect(new Set(slots.map((ad) => ad.Machine))).toEqual(new Set(['node1', 'node2']))
    for (const ad of slots) {
      expect(ad.hpc_annex_request_id).toBe(result.requestId)
      expect(ad.AuthenticatedIdentity).toMatch(new RegExp(`^${a.ap.user}@`))
    }
    const human = await a.cli(['status', 'demo'])
    expect(human.stdout).toContain('You requested 2 nodes for this annex, of which 2 are in an established annex.')

    // The job for the annex runs there and completes.
    const done = await until('the annex job to complete', () => {
      const r = a.condor('condor_history', [cluster, '-af', 'JobStatus', 'MachineAttrAnnexName0', 'LastRemoteHost'])
      const [status, annexName, host] = r.stdout.trim().split(/\s+/)
      return status === '4' ? {annexName, host} : undefined
    }, 90_000)
    expect(done.annexName).toBe('demo')
    expect(readFileSync(join(a.home, 'job-demo-1.out'), 'utf8').trim()).toMatch(/^node[12]$/)

    const logs = await a.cli(['logs', 'demo', '--lines', '20'])
    expect(logs.code, logs.stderr).toBe(0)
    for (const node of ['node1', 'node2']) expect(logs.stdout).toContain(`==> ${node}: MasterLog <==\n`)
    expect(logs.stdout).toMatch(/condor_startd/)

    const off = await a.cli(['shutdown', 'demo'])
    expect(off.code, off.stderr).toBe(0)
    expect(off.stdout).toMatch(/2/)
    // The pilots leave, the batch job ends and its pilot directory goes with it.
    await until('the pilots to leave', () => a.ads('demo', 'master').length === 0, 60_000)
    await until('batch job gone', () => a.leftovers().jobs.length === 0, 60_000)
    await until('pilot dir gone', () => a.onSite(`test -e '${result.pilotDir}' || echo gone`).stdout.includes('gone'), 30_000)
    expect(a.leftovers().staging.filter((dir) => !staged.includes(dir))).toEqual([])
  })
})
