/**
 * create, status and shutdown end to end on the loopback site: a real sshd,
 * real SLURM running three pilots (the condor_master double) on three nodes,
 * the fake condor tools as the Access Point.
 */
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {AnnexStatus} from '../../src/annex/status.js'

import {describeOnSite, logOffsets, sshdCounts} from '../site/helpers.js'
import {annexSite, until, type AnnexSite} from './annex-site.js'

describeOnSite('create on the loopback site', () => {
  let a: AnnexSite
  beforeAll(() => {
    a = annexSite()
  })
  afterAll(() => a?.close())

  it('creates a three-node annex with one login, watches it join, and shuts it down', async () => {
    a.fake.addJob({TargetAnnexName: 'demo'})
    const before = logOffsets()
    const created = await a.cli(['create', 'demo', 'compute@sandbox', '--nodes', '3', '--lifetime', '1800', '--condor-tarball', a.s.condorTarball!, '--json'])
    expect(created.stderr).toBe('')
    expect(created.code).toBe(0)
    const result = JSON.parse(created.stdout) as {batchJobId: string; pilotDir: string; requestId: string; remoteCommands: number}
    expect(result.batchJobId).toMatch(/^\d+$/)
    expect(result.remoteCommands).toBe(1)

    // One connection, one login, one session: the cache question, staging and the back-end share it.
    const counts = sshdCounts(before)
    expect(counts.connections).toBe(1)
    expect(counts.logins).toBe(1)
    expect(counts.sessions).toBe(result.remoteCommands)

    // The state job carries what the back-end reported.
    const state = a.fake.state().jobs.find((j) => j.hpc_annex_name === 'demo')!
    expect(state.hpc_annex_JOB_ID).toBe(result.batchJobId)
    expect(state.hpc_annex_PILOT_DIR).toBe(result.pilotDir)
    expect(String(state.hpc_annex_PID)).toMatch(/^\d+$/)
    expect(state.hpc_annex_system).toBe('sandbox')
    expect(a.fake.tokenFiles()).toEqual([])

    // Three pilots on three nodes join.
    const annex = await until('3 nodes joined', async () => {
      const status = JSON.parse((await a.cli(['status', 'demo', '--json'])).stdout) as {annexes: AnnexStatus[]}
      const demo = status.annexes.find((x) => x.name === 'demo')
      return demo && demo.nodes.joined === 3 ? demo : undefined
    }, 60_000)
    expect(annex.nodes).toEqual({requested: 3, joined: 3})
    expect(annex.cpus.total).toBe(6)
    expect(annex.requestList[0]!.batchJobId).toBe(result.batchJobId)
    const ads = readdirSync(join(a.fake.dir, 'ads.d')).map((f) => readFileSync(join(a.fake.dir, 'ads.d', f), 'utf8'))
    const machines = new Set(ads.flatMap((ad) => [...ad.matchAll(/^Machine = "([^"]+)"/gm)].map((m) => m[1])))
    expect([...machines].sort()).toEqual(['node1', 'node2', 'node3'])
    const human = await a.cli(['status', 'demo'])
    expect(human.stdout).toContain('You requested 3 nodes for this annex, of which 3 are in an established annex.')

    const off = await a.cli(['shutdown', 'demo'])
    expect(off.code).toBe(0)
    expect(off.stdout).toMatch(/3/)
    // The batch job ends and its pilot directory goes with it.
    await until('batch job gone', () => (a.leftovers().jobs.length === 0 ? true : undefined), 60_000)
    await until('pilot dir gone', () => (a.onSite(`test -e '${result.pilotDir}' || echo gone`).stdout.includes('gone') ? true : undefined), 30_000)
    expect(a.leftovers().staging).toEqual([])
  })
})
