import {spawnSync} from 'node:child_process'

import {describe, expect, it} from 'vitest'

import {describeEstimate, describeSubmitEstimate, estimateCommand, liveCommand, parseEstimate, parseEstimateControl, parseLive} from '../../src/batch/slurm-live.js'
import {expectContract} from '../fixtures/json-contract.js'
import {runCli} from './helpers/cli.js'

const MARK = '=-=hpc-annex'

describe('systems --live: sinfo and squeue, machine-readable', () => {
  const output = [
    `${MARK} now 1796400000`,
    `${MARK} user alice`,
    `${MARK} sinfo`,
    'wholenode|10/4/2/16',
    'shared|3/1/0/4',
    // sinfo may list a partition once per set of node states: added up.
    'shared|1/0/1/2',
    'gpu|0/0/0/0',
    `${MARK} squeue`,
    'wholenode|normal|RUNNING|bob',
    'wholenode|normal|PENDING|alice',
    'wholenode,shared|normal|PENDING|alice',
    'shared|normal|RUNNING|alice',
    'other|normal|RUNNING|alice',
  ].join('\n')

  it('counts nodes per partition and jobs per queue, and the user\'s own', () => {
    const report = parseLive(output, ['wholenode', 'shared', 'gpu', 'wide'], 'partition')
    expect(report.now).toBe(1796400000)
    expect(report.user).toBe('alice')
    expect(report.queues).toEqual([
      {name: 'wholenode', nodes: {allocated: 10, idle: 4, down: 2, total: 16}, jobs: {pending: 2, running: 1}, mine: 2},
      {name: 'shared', nodes: {allocated: 4, idle: 1, down: 1, total: 6}, jobs: {pending: 1, running: 1}, mine: 2},
      {name: 'gpu', nodes: {allocated: 0, idle: 0, down: 0, total: 0}, jobs: {pending: 0, running: 0}, mine: 0},
      {name: 'wide', jobs: {pending: 0, running: 0}, mine: 0},
    ])
  })

  it('counts a QoS system\'s jobs by QoS, with no nodes of its own', () => {
    const report = parseLive([`${MARK} now 1`, `${MARK} user u`, `${MARK} sinfo`, 'regular_milan_ss11|1/2/3/6', `${MARK} squeue`, 'p|regular|PENDING|u', 'p|debug|RUNNING|v'].join('\n'), ['regular', 'debug'], 'qos')
    expect(report.queues).toEqual([
      {name: 'regular', jobs: {pending: 1, running: 0}, mine: 1},
      {name: 'debug', jobs: {pending: 0, running: 1}, mine: 0},
    ])
  })

  it('refuses output that is no report', () => {
    expect(() => parseLive('bash: sinfo: command not found', ['x'], 'partition')).toThrow(/printed no report/)
  })

  it('asks with --noheader and --format only', () => {
    expect(liveCommand()).toContain("sinfo --noheader --format='%R|%F'")
    expect(liveCommand()).toContain("squeue --noheader --all --states=PENDING,RUNNING --format='%P|%q|%T|%u'")
  })
})

describe('--estimate: sbatch --test-only with the batch script', () => {
  it('sends the script quoted, whatever it holds, and cuts the start time out on the login node', () => {
    // Run the command with a stand-in sbatch that echoes its stdin's directives and says what SLURM says.
    const script = "#!/bin/bash\n#SBATCH -J 'it''s'\n#SBATCH --nodes=2\n"
    const sbatch = `sbatch() { [ "$1" = --test-only ] || return 9; grep -c '^#SBATCH' >&2; echo "sbatch: Job 77 to start at 2026-12-04T14:10:00 using 4 processors on nodes node[1-2] in partition compute" >&2; }`
    const r = spawnSync('bash', ['-c', `${sbatch}\n${estimateCommand(script)}`], {encoding: 'utf8', env: {...process.env, TZ: 'UTC'}})
    expect(r.status).toBe(0)
    expect(r.stdout).toContain(`${MARK} out\n2\nsbatch: Job 77`)
    const estimate = parseEstimate(r.stdout)
    expect(estimate.start).toBe(Date.UTC(2026, 11, 4, 14, 10) / 1000)
    expect(estimate.nodeList).toBe('node[1-2]')
  })

  it('a start SLURM puts at its own "now" is now, however long sbatch took to answer', () => {
    // A slow sbatch (a loaded controller) that answers "now" once it has taken more than a second.
    const sbatch = `sbatch() { cat >/dev/null; sleep 1.2; echo "sbatch: Job 78 to start at $(date +%Y-%m-%dT%H:%M:%S) using 2 processors on nodes node1 in partition debug" >&2; }`
    const r = spawnSync('bash', ['-c', `${sbatch}\n${estimateCommand('#!/bin/bash\n')}`], {encoding: 'utf8', env: {...process.env, TZ: 'UTC'}})
    expect(r.status).toBe(0)
    const estimate = parseEstimate(r.stdout)
    expect(estimate.start - estimate.now).toBeLessThanOrEqual(0)
    expect(describeEstimate(estimate, 1)).toBe('would start now, on 1 node (node1)')
  })

  it('says what sbatch said when it gives no start', () => {
    expect(() => parseEstimate([`${MARK} now 5`, `${MARK} rc 1`, `${MARK} out`, 'sbatch: error: invalid partition specified: nope', `${MARK} start `, `${MARK} nodes `].join('\n'))).toThrow(
      'sbatch --test-only gave no start time: sbatch: error: invalid partition specified: nope',
    )
  })

  it('words it: now, or in about N min at HH:MM, on N nodes', () => {
    expect(describeEstimate({now: 1000, start: 1000, nodeList: 'node1'}, 1)).toBe('would start now, on 1 node (node1)')
    expect(describeEstimate({now: 0, start: 2400, nodeList: 'n[1-2]'}, 2, 'UTC')).toBe('would start in about 40 min, at 00:40, on 2 nodes (n[1-2])')
    expect(describeEstimate({now: 0, start: 3 * 3600, nodeList: ''}, 2, 'UTC')).toBe('would start in about 3.0 h, at 03:00, on 2 nodes')
  })
})

describe('a real create: the back-end\'s ESTIMATE line, asked just before it submits', () => {
  it('reads SLURM\'s start, or what sbatch said instead, and words it', () => {
    const found = parseEstimateControl('1000 3400 node[1-2]')
    expect(found).toEqual({estimate: {now: 1000, start: 3400, nodeList: 'node[1-2]'}})
    expect(describeSubmitEstimate(found!, 2, 'UTC')).toBe('SLURM says the request would start in about 40 min, at 00:56, on 2 nodes (node[1-2]) (sbatch --test-only).')
    const refused = parseEstimateControl('1000 - sbatch: error: Invalid account  ')
    expect(refused).toEqual({now: 1000, said: 'sbatch: error: Invalid account'})
    expect(describeSubmitEstimate(refused!, 2)).toBe('No start estimate: sbatch --test-only said: sbatch: error: Invalid account.')
    expect(describeSubmitEstimate(parseEstimateControl('1000 -')!, 2)).toBe('No start estimate: sbatch --test-only gave no answer in time.')
    expect(parseEstimateControl('')).toBeUndefined()
    expect(parseEstimateControl('soon')).toBeUndefined()
  })
})

describe('the flags, before any login', () => {
  it('an HTCondor-batch system has no estimate, and says so without logging in', () => {
    const r = runCli(['create', 'x', 'cpu@path-facility', '--cpus', '1', '--estimate', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const out = expectContract('create', r.stdout) as {estimate: {available: boolean; text: string}}
    expect(out.estimate).toEqual({available: false, text: "PATh Facility's batch system is HTCondor: no start estimate is available."})
  })

  it('--estimate submits nothing, so it does not go with --dry-run or --bundle', () => {
    const r = runCli(['create', 'x', 'wholenode@anvil', '--estimate', '--dry-run'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('--estimate logs in and submits nothing; drop --dry-run.')
  })

  it('--live needs a system', () => {
    const r = runCli(['systems', '--live'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('--live needs a SYSTEM')
  })

  it('--max-charge refuses before any login, with the figure', () => {
    const r = runCli(['create', 'x', 'wholenode@anvil', '--nodes', '2', '--lifetime', '7200', '--max-charge', '500', '--login-host', 'nowhere.invalid'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('This request can charge up to 512 SUs (2 nodes × 128 cores × 2 h), more than --max-charge 500')
    expect(r.stderr).not.toContain('Logging in')
  })
})
