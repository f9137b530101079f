/**
 * --batch-option against the loopback site's real SLURM: the extra
 * directives reach sbatch as the user wrote them (a comment with quotes and a
 * '#', a reservation the test makes), as `scontrol show job` reports.
 */
import {spawnSync} from 'node:child_process'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnSite} from '../site/helpers.js'
import {annexSite, until, type AnnexSite} from './annex-site.js'

/** scontrol as root on this machine (the site's slurm.conf is /etc/slurm/slurm.conf): reservations need an administrator. */
function scontrol(args: string[]): {code: number | null; out: string} {
  const r = spawnSync('scontrol', args, {encoding: 'utf8'})
  return {code: r.status, out: r.stdout + r.stderr}
}

describeOnSite('--batch-option on the loopback site', () => {
  let a: AnnexSite
  const reservation = `hpc-annex-test-${process.pid}`
  beforeAll(() => {
    a = annexSite()
    // A day from now: it holds no node while other tests share the site, and the job waits for it.
    const made = scontrol(['create', 'reservation', `ReservationName=${reservation}`, 'StartTime=now+1day', 'Duration=120', 'Nodes=node3', `Users=${a.s.user}`])
    if (made.code !== 0) throw new Error(`scontrol create reservation failed: ${made.out}`)
  })
  afterAll(() => {
    a?.close()
    scontrol(['delete', `ReservationName=${reservation}`])
  })

  it('sends a comment and a reservation to the real sbatch, seen in scontrol show job', async () => {
    const comment = 'run "7" # of 9'
    a.fake.addJob({TargetAnnexName: 'batchopts'})
    const run = await a.cli([
      'create', 'batchopts', 'compute@sandbox', '--lifetime', '1800', '--condor-tarball', a.s.condorTarball!, '--json',
      '--batch-option', `comment=${comment}`,
      '--batch-option', `reservation=${reservation}`,
    ])
    expect(run.code, run.stdout + run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as {batchJobId: string; batchOptions: unknown}
    expect(result.batchOptions).toEqual([
      {key: 'comment', value: comment, from: 'request'},
      {key: 'reservation', value: reservation, from: 'request'},
    ])
    const job = a.onSite(`scontrol show job -o ${result.batchJobId}`)
    expect(job.code, job.stderr).toBe(0)
    expect(job.stdout).toContain(` Reservation=${reservation} `)
    expect(job.stdout).toContain(` Comment=${comment} `)
    // Waiting for its reservation, it has not started.
    expect(job.stdout).toMatch(/ JobState=PENDING /)

    const off = await a.cli(['shutdown', 'batchopts', '--cancel-pending'])
    expect(off.code, off.stderr).toBe(0)
    await until('batch job gone', () => !a.leftovers().jobs.some((name) => name.startsWith('hpc-annex.batchopts.')), 60_000)
  })

  it('refuses a directive hpc-annex sets, before any login', async () => {
    const run = await a.cli(['create', 'batchopts2', 'compute@sandbox', '--condor-tarball', a.s.condorTarball!, '--batch-option', 'time=10'])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/--batch-option 'time=10' is refused: hpc-annex sets --time itself; use --lifetime/)
  })
})
