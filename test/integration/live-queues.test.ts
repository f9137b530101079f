/**
 * `systems sandbox --live` and `create --estimate` against the loopback
 * site's real SLURM, each with one login (counted on a private sshd of this
 * file, so other tests' logins to the site's sshds never count).
 *
 * The site's 3 nodes are shared with every other test run: this file holds
 * one node at most, for as short as it can (a `sleep` job with a 5-minute
 * limit, cancelled in afterAll), and waits (bounded) for the debug partition
 * to be idle rather than assuming it is.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {CreateOutputJson, SystemsOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'
import {describeOnSite} from '../site/helpers.js'
import {annexSite, until, type AnnexSite} from './annex-site.js'
import {startExtraSshd, type ExtraSshd} from './extra-sshd.js'

describeOnSite('live queues and start estimates on the real SLURM', () => {
  let a: AnnexSite
  let sshd: ExtraSshd
  let tmp: string
  let sshConfig: string
  let hold: string | undefined

  beforeAll(async () => {
    a = annexSite()
    sshd = await startExtraSshd(a.s)
    tmp = mkdtempSync(join(tmpdir(), 'live-queues-'))
    const known = join(tmp, 'known_hosts')
    writeFileSync(known, `${sshd.name} ${sshd.hostKey.type} ${sshd.hostKey.base64}\n`)
    // The sandbox's login host "hpc", sent to this file's own sshd.
    sshConfig = join(tmp, 'ssh_config')
    writeFileSync(
      sshConfig,
      [
        'Host hpc',
        `    HostName ${sshd.host}`,
        `    Port ${sshd.port}`,
        `    User ${a.s.user}`,
        `    IdentityFile ${a.s.keyFile}`,
        '    IdentitiesOnly yes',
        `    UserKnownHostsFile ${known}`,
        '    GlobalKnownHostsFile /dev/null',
        '    StrictHostKeyChecking yes',
        '',
      ].join('\n'),
    )
  })
  afterAll(async () => {
    if (hold !== undefined) a.onSite(`scancel ${hold}`)
    await sshd?.stop()
    a?.close()
    if (tmp) rmSync(tmp, {recursive: true, force: true})
  })

  /** Runs the CLI through this file's sshd; what it printed and how many logins it made. */
  const run = async (args: string[]) => {
    const offset = sshd.logSize()
    const r = await a.cli(args, {HPC_ANNEX_SSH_CONFIG: sshConfig})
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const logins = sshd.logSince(offset).split('\n').filter((line) => /Accepted (publickey|keyboard-interactive\/pam|password) for /.test(line)).length
    return {...r, logins}
  }
  const live = async () => {
    const r = await run(['systems', 'sandbox', '--live', '--json'])
    const out = expectContract('systems', r.stdout) as unknown as SystemsOutput
    return {debug: out.live!.queues.find((q) => q.name === 'debug')!, out, logins: r.logins}
  }
  const estimate = async (nodes: number) => {
    const r = await run(['create', 'est', 'debug@sandbox', '--nodes', String(nodes), '--lifetime', '600', '--estimate', '--json'])
    const out = expectContract('create', r.stdout) as unknown as Extract<CreateOutputJson, {dryRun: true}>
    return {estimate: out.estimate!, logins: r.logins}
  }

  it('shows the 3 nodes idle, and "now" for a request on the idle partition, with one login each', async () => {
    const idle = await until('the debug partition to be idle (other tests share it)', async () => {
      const l = await live()
      return l.debug.nodes?.idle === 3 ? l : undefined
    }, 240_000)
    expect(idle.debug.nodes).toEqual({idle: 3, allocated: 0, down: 0, total: 3})
    expect(idle.out.live).toMatchObject({system: 'sandbox', user: a.s.user, queuesAre: 'partition'})
    expect(idle.logins).toBe(1)

    const text = await run(['systems', 'sandbox', '--live'])
    expect(text.stdout).toMatch(/^PARTITION\s+NODES IDLE\s+ALLOCATED\s+DOWN\s+TOTAL\s+JOBS PENDING\s+RUNNING\s+\S+'S JOBS\/MAX$/m)
    expect(text.stdout).toMatch(/^debug\s+\d\s+\d\s+\d\s+3\s+\d+\s+\d+\s+\d+\/-$/m)

    const now = await estimate(1)
    expect(now.logins).toBe(1)
    expect(now.estimate).toMatchObject({available: true, waitSeconds: 0})
    expect(now.estimate.text).toMatch(/^The request would start now, on 1 node \(node\d\)/)
  })

  it('while a job holds a node: allocated, the user\'s own job counted, and a later start for all 3 nodes', async () => {
    hold = a.onSite("sbatch --parsable -p debug --nodes=1 --time=5 -J live-queues-hold --wrap 'sleep 300'").stdout.trim()
    expect(hold).toMatch(/^\d+$/)
    await until('the holding job to run', () => (a.onSite(`squeue --noheader --jobs=${hold} --format=%T`).stdout.trim() === 'RUNNING' ? true : undefined), 120_000)

    const held = await live()
    expect(held.logins).toBe(1)
    expect(held.debug.nodes!.allocated).toBeGreaterThanOrEqual(1)
    expect(held.debug.nodes!.idle).toBeLessThanOrEqual(2)
    expect(held.debug.jobs.running).toBeGreaterThanOrEqual(1)
    expect(held.debug.yourJobs).toBeGreaterThanOrEqual(1)

    const later = await estimate(3)
    expect(later.logins).toBe(1)
    expect(later.estimate.available).toBe(true)
    expect(later.estimate.startEpochSeconds!).toBeGreaterThan(later.estimate.nowEpochSeconds!)
    expect(later.estimate.text).toMatch(/^The request would start in about \d+ min, at \d\d:\d\d, on 3 nodes \(node\[1-3\]\)/)

    a.onSite(`scancel ${hold}`)
    hold = undefined
  })
})
