/**
 * Several annexes and requests on real HTCondor: two annexes at once (one
 * made over each SSH transport) each running only its own jobs, `add` to a
 * running annex, `shutdown --cancel-pending` of a request whose batch job
 * waits for nodes another job holds, and pilots that leave by themselves when
 * idle.
 */
import {afterAll, afterEach, beforeAll, expect, it} from 'vitest'

import type {ShutdownOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'

import {describeOnRealHTCondor} from '../site/helpers.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

interface Created {
  batchJobId: string
  pilotDir: string
  requestId: string
}

describeOnRealHTCondor('annexes and requests on the loopback site', () => {
  let a: RealAnnexSite
  beforeAll(() => {
    a = realAnnexSite()
  })
  afterAll(() => a?.close())
  afterEach(() => {
    // Each test leaves the site's nodes free for the next.
    a.condor('condor_rm', ['-all'])
    a.onSite(`squeue --noheader --user="$(id -un)" --format='%i %j' | awk '$2 ~ /^(hpc-annex\\.|blocker$)/ {print $1}' | xargs -r scancel`)
  })

  const joined = (name: string, nodes: number) =>
    until(`${nodes} node(s) of ${name} joined`, async () => {
      const annex = (await a.status(name)).find((x) => x.annexName === name)
      return annex && annex.nodes.joined === nodes ? annex : undefined
    }, 90_000)
  const create = async (verb: 'create' | 'add', name: string, extra: string[] = []): Promise<Created> => {
    const r = await a.cli([verb, name, 'compute@sandbox', '--nodes', '1', '--lifetime', '1800', '--condor-tarball', a.tarball, '--json', ...extra])
    if (r.code !== 0) throw new Error(`${verb} ${name} failed (${r.code}): ${r.stderr}${r.stdout}`)
    return JSON.parse(r.stdout) as Created
  }
  const ranOn = (cluster: string) =>
    until(`job ${cluster} to complete`, () => {
      const [status, annexName] = a.condor('condor_history', [cluster, '-af', 'JobStatus', 'MachineAttrAnnexName0']).stdout.trim().split(/\s+/)
      return status === '4' ? annexName : undefined
    }, 90_000)

  it('runs two annexes at once, one over each SSH transport, each with only its own jobs; add grows one of them', async () => {
    const alphaJob = await a.submitJob('alpha')
    const betaJob = await a.submitJob('beta')
    const alpha = await create('create', 'alpha')
    const beta = await create('create', 'beta', ['--ssh', 'openssh'])
    await joined('alpha', 1)
    await joined('beta', 1)
    expect(await ranOn(alphaJob)).toBe('alpha')
    expect(await ranOn(betaJob)).toBe('beta')
    const alphaMachine = a.ads('alpha')[0]!.Machine
    expect(a.ads('beta')[0]!.Machine).not.toBe(alphaMachine)

    // A second request for alpha (jobs are waiting for it): its pilot joins the same annex, on the third node.
    // The job may start at once on alpha's idle pilot: it lasts long enough to be still queued when add checks.
    const laterJob = await a.submitJob('alpha', 30)
    const grown = await create('add', 'alpha')
    expect(grown.requestId).not.toBe(alpha.requestId)
    const both = await joined('alpha', 2)
    expect(both.requests.total).toBe(2)
    expect(new Set(a.ads('alpha').map((ad) => ad.hpc_annex_request_id))).toEqual(new Set([alpha.requestId, grown.requestId]))
    expect(await ranOn(laterJob)).toBe('alpha')

    // Without a name, status shows both annexes.
    expect((await a.status()).map((x) => x.annexName).sort()).toEqual(['alpha', 'beta'])

    // Shutting alpha down leaves beta alone.
    const off = await a.cli(['shutdown', 'alpha', '--json'])
    expect(off.code, off.stderr).toBe(0)
    expect((expectContract('shutdown', off.stdout) as ShutdownOutput).told).toHaveLength(2)
    await until('alpha\'s pilots to leave', () => a.ads('alpha', 'master').length === 0, 60_000)
    await until('alpha\'s batch jobs to end', () => !a.leftovers().jobs.some((j) => j.startsWith('hpc-annex.alpha.')), 60_000)
    expect(a.ads('beta', 'master')).toHaveLength(1)
    expect((await a.cli(['shutdown', 'beta'])).code).toBe(0)
    await until('beta\'s batch job to end', () => a.leftovers().jobs.length === 0, 60_000)
    for (const dir of [alpha.pilotDir, beta.pilotDir, grown.pilotDir]) {
      await until(`${dir} to go`, () => a.onSite(`test -e '${dir}' || echo gone`).stdout.includes('gone'), 30_000)
    }
  })

  it('shutdown --cancel-pending cancels a request whose batch job waits for nodes another job holds', async () => {
    // Every node taken by someone else's job: the request's batch job stays pending.
    const blocker = a.onSite('sbatch --parsable -p compute -N 3 -t 10 -J blocker -o /dev/null --wrap "sleep 600"').stdout.trim()
    expect(blocker).toMatch(/^\d+$/)
    await a.submitJob('held')
    const held = await create('create', 'held')
    expect(a.onSite(`squeue --noheader -j ${held.batchJobId} -o %T`).stdout.trim()).toBe('PENDING')
    const logs = await a.cli(['logs', 'held'])
    expect(logs.code, logs.stderr).toBe(0)
    expect(logs.stdout).toContain(`no logs yet in ${held.pilotDir} (the batch job has not started)`)
    const logsJson = await a.cli(['logs', 'held', '--json'])
    expect(logsJson.code, logsJson.stderr).toBe(0)
    expect(expectContract('logs', logsJson.stdout)).toMatchObject({annexName: 'held', output: expect.stringContaining('no logs yet')})

    const off = await a.cli(['shutdown', 'held', '--cancel-pending', '--json'])
    expect(off.code, off.stderr).toBe(0)
    const result = expectContract('shutdown', off.stdout) as ShutdownOutput
    expect(result.found).toBe(0)
    expect(result.pending).toEqual([expect.objectContaining({requestId: held.requestId, outcome: 'cancelled', batchJobs: [held.batchJobId], pilotDirRemoved: true, stateJobRemoved: true})])
    // The real schedd no longer holds the state job; the site no longer holds the batch job or its pilot directory.
    // (Removed while it ran at its cron minute, it stays a moment as Removed, on its way out.)
    expect(a.jobs(`hpc_annex_request_id == "${held.requestId}" && JobStatus =!= 3`)).toEqual([])
    await until('the cancelled batch job to leave the queue', () => a.onSite(`squeue --noheader -j ${held.batchJobId} -o %T 2>/dev/null`).stdout.trim() === '', 30_000)
    expect(a.onSite(`test -e '${held.pilotDir}' || echo gone`).stdout).toContain('gone')
    a.onSite(`scancel ${blocker}`)
  })

  it('a batch job cancelled while its pilots run still removes its pilot directory and the secrets in it, keeping the logs', async () => {
    await a.submitJob('cancelled', 300)
    const made = await create('create', 'cancelled')
    await joined('cancelled', 1)
    expect(a.onSite(`ls '${made.pilotDir}/secrets'`).stdout.split('\n').filter(Boolean).sort()).toEqual(['password', 'token'])
    a.onSite(`scancel ${made.batchJobId}`)
    await until('the pilot to leave', () => a.ads('cancelled', 'master').length === 0, 60_000)
    await until('the pilot directory to go', () => a.onSite(`test -e '${made.pilotDir}' || echo gone`).stdout.includes('gone'), 60_000)
    expect(a.onSite(`ls '${made.pilotDir}.logs'`).stdout).toMatch(/slurm-\d+\.err/)
  })

  it('pilots that run no job for --idle-time leave by themselves, and their batch job ends', async () => {
    const job = await a.submitJob('idle')
    const idle = await create('create', 'idle', ['--idle-time', '15'])
    await joined('idle', 1)
    expect(await ranOn(job)).toBe('idle')
    // Nothing more to run: after 15 s unclaimed the pilot shuts down, the batch job ends, the pilot directory goes.
    await until('the idle pilot to leave', () => a.ads('idle', 'master').length === 0 && a.ads('idle').length === 0, 90_000)
    await until('the batch job to end', () => a.onSite(`squeue --noheader -j ${idle.batchJobId} -o %T 2>/dev/null`).stdout.trim() === '', 60_000)
    await until('the pilot directory to go', () => a.onSite(`test -e '${idle.pilotDir}' || echo gone`).stdout.includes('gone'), 30_000)
    const [request] = (await a.status('idle'))[0]!.requestList
    expect(request!.nodesJoined).toBe(0)
  })
})
