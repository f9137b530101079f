import {mkdtempSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {runCli} from './helpers/cli.js'

// The admin commands end to end: the built CLI, through src/condor, against
// the fake condor tools.
let fake: FakeCondor | undefined
afterEach(() => {
  fake?.cleanup()
  fake = undefined
})

const TRANSFORMS = {
  JOB_TRANSFORM_NAMES: 'AssignAnnex',
  JOB_TRANSFORM_AssignAnnex: 'REQUIREMENTS defined MY.TargetAnnexName',
}

describe('hpc-annex admin check (against the fake condor tools)', () => {
  it('finds a complete AP complete, and exits 0', () => {
    fake = createFakeCondor({config: TRANSFORMS})
    fake.advertise({MyType: 'Scheduler', Name: 'ap@vm', MyAddress: '<192.0.2.2:9618?sock=schedd_1_a>'}, 'vm:9618?sock=ap_collector')
    const {status, stdout} = runCli(['admin', 'check'], fake.env)
    expect(stdout).not.toContain('MISSING')
    expect(status).toBe(0)
    const asked = fake.calls().map((call) => call.tool)
    expect(asked).toContain('condor_config_val')
    expect(asked).toContain('condor_status')
  })

  it('names each missing item with its fix, exits 1, and says the same in --json', () => {
    fake = createFakeCondor({config: {HPC_ANNEX_ENABLED: 'false'}})
    const {status, stdout} = runCli(['admin', 'check'], fake.env)
    expect(status).toBe(1)
    expect(stdout).toMatch(/MISSING\s+HPC annexes are enabled/)
    expect(stdout).toMatch(/MISSING\s+Exactly one schedd reports to the annex collector/)
    expect(stdout).toMatch(/MISSING\s+The job transforms/)
    const json = runCli(['admin', 'check', '--json'], fake.env)
    expect(json.status).toBe(1)
    const report = JSON.parse(json.stdout)
    const missing = report.items.filter((item: {status: string}) => item.status === 'missing').map((item: {id: string}) => item.id)
    expect(missing).toEqual(['enabled', 'one-schedd', 'transforms'])
    expect(report.ok).toBe(false)
  })
})

describe('hpc-annex admin metaknob --install (against the fake condor tools)', () => {
  it('installs into the first LOCAL_CONFIG_DIR, 0644, and writes the built-in line when asked and available', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-config.d-'))
    fake = createFakeCondor({config: {LOCAL_CONFIG_DIR: `${dir}, /etc/condor/other.d`}, metaknob: 'HPC_ANNEX_ENABLED = true'})
    const installed = runCli(['admin', 'metaknob', '--install'], fake.env)
    expect(installed.status).toBe(0)
    const file = join(dir, '50-hpc-annex.config')
    expect(statSync(file).mode & 0o777).toBe(0o644)
    expect(readFileSync(file, 'utf8')).toContain('JOB_TRANSFORM_AssignAnnex')
    const builtin = runCli(['admin', 'metaknob', '--install', '--prefer-builtin', '--force'], fake.env)
    expect(builtin.status).toBe(0)
    expect(readFileSync(file, 'utf8')).toMatch(/^use feature:HPC_ANNEX$/m)
  })

  it('says to restart, not reconfigure, when the configuration pins a collector port chosen at start-up', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-config.d-'))
    fake = createFakeCondor({config: {LOCAL_CONFIG_DIR: dir}})
    expect(runCli(['admin', 'metaknob', '--install'], fake.env).stdout).toMatch(/^Next: condor_reconfig /m)
    // What condor_config_val says once the file is in place on a personal HTCondor (COLLECTOR_HOST = host:0).
    fake.update((s) => {
      s.config._HPC_ANNEX_PINNED_COLLECTOR = 'true'
    })
    const installed = runCli(['admin', 'metaknob', '--install', '--force', '--exclusive'], fake.env)
    expect(installed.status).toBe(0)
    expect(installed.stdout).toMatch(/^Next: condor_restart \(this HTCondor's collector port was chosen at start-up/m)
  })

  it('writes the full configuration when this HTCondor has no built-in feature', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-config.d-'))
    fake = createFakeCondor({config: {LOCAL_CONFIG_DIR: dir}, metaknob: null})
    expect(runCli(['admin', 'metaknob', '--install', '--prefer-builtin'], fake.env).status).toBe(0)
    expect(readFileSync(join(dir, '50-hpc-annex.config'), 'utf8')).not.toMatch(/^use feature:HPC_ANNEX$/m)
  })
})

describe('an Access Point without ANNEX_COLLECTOR', () => {
  it('status, shutdown and create name the knob, the flag, and the admin check item that reports it', () => {
    fake = createFakeCondor({config: {...TRANSFORMS, ANNEX_COLLECTOR: null}})
    for (const args of [['status'], ['shutdown', 'x'], ['create', 'x', 'wholenode@anvil']]) {
      const {status, stderr} = runCli(args, fake.env)
      expect(status, args.join(' ')).toBe(2)
      const error = stderr.split('\n').find((line) => line.startsWith('Error: '))
      const hint = stderr.split('\n').find((line) => line.startsWith('Try: '))
      expect(error).toContain("ANNEX_COLLECTOR is not set in this Access Point's HTCondor configuration")
      expect(error).toContain('htcondor-cm-hpcannex.osgdev.chtc.io')
      expect(error).toContain('give one with --pool HOST[:PORT], or have the administrator set ANNEX_COLLECTOR.')
      expect(hint).toBe("Try: hpc-annex admin check (it reports 'MISSING  The annex collector is defined', with the fix)")
    }
    // What the hint quotes is what admin check says.
    expect(runCli(['admin', 'check'], fake.env).stdout).toMatch(/^MISSING {2}The annex collector is defined\s/m)
    // --pool is enough.
    expect(runCli(['status', '--pool', 'vm:9618?sock=ap_collector'], fake.env).stderr).not.toContain('ANNEX_COLLECTOR')
  })
})
