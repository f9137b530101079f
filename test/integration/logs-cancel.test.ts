/**
 * logs and shutdown --cancel-pending on the loopback site: a three-node
 * annex that joined, and a second request that cannot start (every node is
 * taken), so its batch job stays pending.
 */
import {afterAll, beforeAll, expect, it} from 'vitest'

import type {AnnexStatus} from '../../src/annex/status.js'
import type {ShutdownResult} from '../../src/annex/shutdown.js'

import {describeOnSite} from '../site/helpers.js'
import {annexSite, until, type AnnexSite} from './annex-site.js'

describeOnSite('logs and shutdown --cancel-pending on the loopback site', () => {
  let a: AnnexSite
  beforeAll(() => {
    a = annexSite()
  })
  afterAll(() => a?.close())

  it("reads a joined request's logs over one login, then cancels the pending request's batch job by its request id", async () => {
    a.fake.addJob({TargetAnnexName: 'logs'})
    const tarball = ['--condor-tarball', a.s.condorTarball!]
    const created = await a.cli(['create', 'logs', 'compute@sandbox', '--nodes', '3', '--lifetime', '1800', ...tarball, '--json'])
    expect(created.code).toBe(0)
    const first = JSON.parse(created.stdout) as {batchJobId: string; pilotDir: string; requestId: string}
    await until('3 nodes joined', async () => {
      const status = JSON.parse((await a.cli(['status', 'logs', '--json'])).stdout) as {annexes: AnnexStatus[]}
      return status.annexes.find((x) => x.name === 'logs')?.nodes.joined === 3 ? true : undefined
    }, 60_000)
    // Every node is taken: this request's batch job waits in the queue.
    const added = await a.cli(['add', 'logs', 'compute@sandbox', '--nodes', '1', '--lifetime', '1800', ...tarball, '--json'])
    expect(added.code).toBe(0)
    const second = JSON.parse(added.stdout) as {batchJobId: string; pilotDir: string; requestId: string}

    const logs = await a.cli(['logs', 'logs', '--lines', '5'])
    expect(logs.code).toBe(0)
    for (const node of ['node1', 'node2', 'node3']) expect(logs.stdout).toContain(`==> ${node}: MasterLog <==\n`)
    expect(logs.stdout).toContain(`batch job ${first.batchJobId} on hpc, pilot directory ${first.pilotDir}`)
    expect(logs.stdout).toContain(`==> slurm-${first.batchJobId}.out <==`)
    expect(logs.stdout).toContain(`no logs yet in ${second.pilotDir} (the batch job has not started)`)
    // (One login per target and one exec per request are counted in the unit tests: the site's sshd is shared with other runs.)

    const off = await a.cli(['shutdown', 'logs', '--cancel-pending', '--json'])
    expect(off.code).toBe(0)
    const result = JSON.parse(off.stdout) as ShutdownResult
    expect(result.found).toBe(3)
    expect(result.pending).toEqual([expect.objectContaining({requestId: second.requestId, outcome: 'cancelled', batchJobs: [second.batchJobId], pilotDirRemoved: true, stateJobRemoved: true})])
    expect(a.fake.state().jobs.filter((j) => j.hpc_annex_name === 'logs').map((j) => j.GlobalJobID)).toEqual([first.requestId])
    await until('batch jobs gone', () => (a.leftovers().jobs.length === 0 ? true : undefined), 60_000)
    await until('pilot dirs gone', () => (a.onSite(`test -e '${first.pilotDir}' || test -e '${second.pilotDir}' || echo gone`).stdout.includes('gone') ? true : undefined), 30_000)
  })
})
