/**
 * The fake condor tools (test/fixtures/fake-condor) stand in for HTCondor in
 * the fast unit tests; here they are held to the real ones. The same driver
 * (test/fixtures/parity-driver.mjs) runs every condor command hpc-annex issues
 * in a request's life, through hpc-annex's own code, once against the fake
 * (its configuration and collector mirroring the real Access Point) and once
 * against real HTCondor; each step must succeed or fail alike and give
 * hpc-annex the same parsed result.
 */
import {execFileSync} from 'node:child_process'
import {chownSync, mkdtempSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect, it} from 'vitest'

import {ANNEX_CONFIG_NAMES} from '../../src/condor/config.js'
import {createFakeCondor} from '../fixtures/fake-condor/index.mjs'
import {annexCollectorOf, apToolEnv, apUserDir, asApUser} from '../site/htcondor.js'
import {describeOnRealHTCondor, realAccessPoint} from '../site/helpers.js'
import {ROOT} from './annex-site.js'

interface Step {
  step: string
  ok: boolean
  value?: unknown
  error?: string
}

describeOnRealHTCondor('the fake condor tools against the real ones', () => {
  it('give hpc-annex the same answers at every step of a request', async () => {
    const ap = realAccessPoint()!
    const home = apUserDir(mkdtempSync(join(ap.dir, 'parity-')), ap)
    const submitFile = join(home, 'job.sub')
    writeFileSync(submitFile, 'executable = /bin/true\nrequest_cpus = 1\nrequest_memory = 64\nqueue\n')
    chownSync(submitFile, ap.uid, ap.gid)
    const base = {HOME: home, USER: ap.user, LOGNAME: ap.user, HPC_ANNEX_MACHINES: join(ROOT, 'test', 'site', 'machines')}

    // The fake mirrors what the real Access Point says: its configuration and its annex collector's schedd.
    const names = [...ANNEX_CONFIG_NAMES, 'HPC_ANNEX_SANDBOX_USER_NAME', 'HPC_ANNEX_SANDBOX_HOST_NAME']
    const config: Record<string, string | null> = {}
    for (const name of names) {
      const r = asApUser(ap, 'condor_config_val', [name])
      config[name] = r.code === 0 ? r.stdout.replace(/\n$/, '') : null
    }
    const collector = annexCollectorOf(ap)
    const scheddName = asApUser(ap, 'condor_status', ['-pool', collector, '-schedd', '-af', 'Name']).stdout.trim()
    const fake = createFakeCondor({config})
    try {
      fake.advertise({MyType: 'Scheduler', Name: scheddName, MyAddress: '<127.0.0.1:9618>'}, collector)
      execFileSync('chown', ['-R', `${ap.uid}:${ap.gid}`, fake.dir])
      const drive = (env: NodeJS.ProcessEnv): Step[] => {
        const r = asApUser(ap, process.execPath, [join(ROOT, 'test', 'fixtures', 'parity-driver.mjs'), ROOT, submitFile], {env, cwd: home})
        if (r.code !== 0) throw new Error(`the parity driver failed (${r.code}): ${r.stderr}`)
        return JSON.parse(r.stdout) as Step[]
      }
      const real = drive({...apToolEnv(ap), ...base})
      const pretend = drive({...process.env, ...fake.env, ...base, FAKE_CONDOR_USER: ap.user, PATH: `${fake.bin}:${process.env.PATH}`})

      expect(pretend.map((s) => s.step)).toEqual(real.map((s) => s.step))
      // What the failures say beyond the tool and its exit status is the tools' own prose.
      const outcome = (s: Step) => (s.ok ? {ok: true, value: s.value} : {ok: false, error: s.error!.replace(/^(\S+ failed \(exit status \d+\)).*/, '$1')})
      for (const [i, step] of real.entries()) expect(outcome(pretend[i]!), step.step).toEqual(outcome(step))
      // The steps that must fail do, on the real tools too: the comparison above is not of two empty runs.
      expect(real.filter((s) => !s.ok).map((s) => s.step)).toEqual([
        'condor_qedit: a job that is not there',
        'condor_q: a constraint that does not parse',
        'condor_rm: a job that is not there',
      ])
    } finally {
      asApUser(ap, 'condor_rm', ['-constraint', 'TargetAnnexName == "parity" || hpc_annex_name == "parity"'])
      fake.cleanup()
    }
  })
})
