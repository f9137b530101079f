/**
 * hpc-annex's Access Point configuration against real HTCondor: what
 * condor_config_val of the release makes of the metaknob (no daemons), what
 * `admin check` finds on this run's Access Point, and an Access Point without
 * `use feature:HPC_ANNEX` set up by `hpc-annex admin metaknob --install` alone,
 * on which a create's real pilots join and run a job.
 */
import {chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {CheckItem, CheckReport} from '../../src/annex/admin-check.js'
import {renderMetaknob} from '../../src/annex/metaknob.js'
import type {StatusOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'
import {configTemplate} from '../../src/condor/index.js'
import {createFakeCondor} from '../fixtures/fake-condor/index.mjs'
import {annexCollectorOf, apToolEnv, apUserDir, asApUser, startAccessPoint, stopAccessPoint, type AccessPoint} from '../site/htcondor.js'
import {describeOnRealHTCondor, realAccessPoint, runCommand, type RunResult} from '../site/helpers.js'
import {ROOT} from './annex-site.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

const CLI = join(ROOT, 'bin', 'run.js')

/** hpc-annex as the Access Point's user, with `env` (apToolEnv of some configuration). */
function cliAs(ap: AccessPoint, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return runCommand(process.execPath, [CLI, ...args], env, undefined, {uid: ap.uid, gid: ap.gid, cwd: ap.dir})
}

function report(r: RunResult): CheckReport {
  try {
    return JSON.parse(r.stdout) as CheckReport
  } catch {
    throw new Error(`admin check --json printed no report (exit ${r.code}): ${r.stdout}${r.stderr}`)
  }
}

const byId = (r: CheckReport): Record<string, CheckItem> => Object.fromEntries(r.items.map((item) => [item.id, item]))
const statuses = (r: CheckReport): Record<string, string> => Object.fromEntries(r.items.map((item) => [item.id, item.status]))

const ALL_OK = {
  'enabled': 'ok',
  'annex-collector': 'ok',
  'annex-collector-address': 'ok',
  'annex-collector-reachable': 'ok',
  'one-schedd': 'ok',
  'token-key': 'ok',
  'signing-key': 'ok',
  'token-domain': 'ok',
  'transforms': 'ok',
  'idtokens': 'ok',
}
// The test Access Points' annex collector is 127.0.0.1 (the site's nodes share this machine): warned of.
const ON_LOOPBACK = {...ALL_OK, 'annex-collector-address': 'warning'}

describeOnRealHTCondor('the hpc-annex configuration as condor_config_val reads it', () => {
  let ap: AccessPoint
  let work: string
  let n = 0
  beforeAll(() => {
    ap = realAccessPoint()!
    work = mkdtempSync(join(tmpdir(), 'hpc-annex-metaknob-'))
  })
  afterAll(() => {
    if (work) rmSync(work, {recursive: true, force: true})
  })

  /** A configuration of the release with `files` in its LOCAL_CONFIG_DIR; condor_config_val ARGS of it. */
  const configVal = (files: Record<string, string>, args: string[]) => {
    const dir = join(work, String(++n))
    mkdirSync(join(dir, 'config.d'), {recursive: true})
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'config.d', name), text)
    const config = join(dir, 'condor_config')
    writeFileSync(
      config,
      [`RELEASE_DIR = ${ap.release.releaseDir}`, `LOCAL_DIR = ${dir}`, 'LOCAL_CONFIG_FILE =', `LOCAL_CONFIG_DIR = ${join(dir, 'config.d')}`, 'FULL_HOSTNAME = ap.example.org', ''].join('\n'),
    )
    const env: NodeJS.ProcessEnv = {...apToolEnv(ap), CONDOR_CONFIG: config}
    const r = runCommand(join(ap.release.releaseDir, 'bin', 'condor_config_val'), args, env)
    return {r, env}
  }
  const values = async (files: Record<string, string>, args: string[]) => {
    const {r} = configVal(files, args)
    const result = await r
    return result.stdout.split('\n').slice(0, -1)
  }

  it('names the AP signing key where HTCondor defines one, and hpcannex-key where it does not; never a literal $(...)', async () => {
    const metaknob = renderMetaknob({exclusive: false})
    // HTCondor 25 defines SEC_TOKEN_AP_SIGNING_KEY_NAME = AP.
    expect(await values({'50-hpc-annex.config': metaknob}, ['SEC_TOKEN_AP_SIGNING_KEY_NAME', 'ANNEX_TOKEN_KEY_NAME', 'SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS'])).toEqual(['AP', 'AP', 'POOL AP AP'])
    // A release that names no AP signing key (an admin's empty value stands in for one).
    const none = {'00-admin.config': 'SEC_TOKEN_AP_SIGNING_KEY_NAME =\n', '50-hpc-annex.config': metaknob}
    expect(await values(none, ['ANNEX_TOKEN_KEY_NAME', 'SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS'])).toEqual(['hpcannex-key', 'POOL AP hpcannex-key'])
    // What the old line made of it: the text, unexpanded (HTCondor takes no default with a "-").
    expect(await values({'50-old.config': 'ANNEX_TOKEN_KEY_NAME = $(SEC_TOKEN_AP_SIGNING_KEY_NAME:hpcannex-key)\n'}, ['ANNEX_TOKEN_KEY_NAME'])).toEqual([
      '$(SEC_TOKEN_AP_SIGNING_KEY_NAME:hpcannex-key)',
    ])
  })

  it('adds to the admin\'s DC_DAEMON_LIST and advertising rules as HTCondor\'s own feature does', async () => {
    const admin = [
      'DC_DAEMON_LIST = + MY_DAEMON',
      'ALLOW_WRITE = *@ap.example.org',
      'ALLOW_ADVERTISE_STARTD = condor@cm.example.org',
      'ALLOW_ADVERTISE_MASTER = condor@cm.example.org',
      'DAEMON_LIST = MASTER SCHEDD',
      '',
    ].join('\n')
    const names = ['DC_DAEMON_LIST', 'DAEMON_LIST', 'HPC_ANNEX_ENABLED', 'ANNEX_COLLECTOR', 'ANNEX_TOKEN_KEY_NAME', 'ANNEX_TOKEN_DOMAIN']
    const apCollector = ['-subsystem', 'COLLECTOR', '-local-name', 'AP_COLLECTOR', 'ALLOW_ADVERTISE_STARTD', 'ALLOW_ADVERTISE_MASTER']
    const ours = {'00-admin.config': admin, '50-hpc-annex.config': renderMetaknob({exclusive: false})}
    const htcondors = {'00-admin.config': admin, '50-feature.config': 'use feature:HPC_ANNEX\n'}
    expect(await values(ours, names)).toEqual(await values(htcondors, names))
    expect((await values(ours, names))[0]).toBe('+ MY_DAEMON')
    const advertise = await values(ours, apCollector)
    expect(advertise).toEqual(await values(htcondors, apCollector))
    expect(advertise).toEqual(['condor@cm.example.org *@ap.example.org', 'condor@cm.example.org *@ap.example.org'])
  })

  it('tells a feature this HTCondor has from one it lacks, though condor_config_val exits 0 for both; and the fake says the same', async () => {
    const {r, env} = configVal({}, ['use', 'feature:NOSUCH'])
    expect(await r).toEqual({code: 0, stdout: 'Not defined: use FEATURE:NOSUCH\n', stderr: ''})
    const saved = {PATH: process.env.PATH, CONDOR_CONFIG: process.env.CONDOR_CONFIG}
    Object.assign(process.env, {PATH: env.PATH, CONDOR_CONFIG: env.CONDOR_CONFIG})
    let real: Array<string | undefined>
    try {
      real = [await configTemplate('feature', 'HPC_ANNEX'), await configTemplate('feature', 'NOSUCH')]
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
    expect(real[0]).toMatch(/^# Let the command-line tool know that things are configured\.\nHPC_ANNEX_ENABLED = true\n/)
    expect(real[1]).toBeUndefined()

    // The fake condor_config_val prints and exits as the real one.
    const fake = createFakeCondor({metaknob: null})
    const restore = fake.install()
    try {
      const lacking = await runCommand('condor_config_val', ['use', 'feature:NOSUCH'], {...process.env, ...fake.env})
      expect(lacking).toEqual(await r)
      expect(await configTemplate('feature', 'NOSUCH')).toBeUndefined()
    } finally {
      restore()
      fake.cleanup()
    }

    // --prefer-builtin on this release (the Access Point's own configuration, which its user can read): the one use line.
    const printed = await cliAs(ap, ['admin', 'metaknob', '--prefer-builtin'], {...apToolEnv(ap), HOME: ap.dir})
    expect(printed.code, printed.stderr).toBe(0)
    expect(printed.stdout).toMatch(/^use feature:HPC_ANNEX$/m)
  })
})

describeOnRealHTCondor('admin check on the run\'s Access Point', () => {
  let ap: AccessPoint
  let dir: string
  let locked: string
  beforeAll(() => {
    ap = realAccessPoint()!
    dir = apUserDir(mkdtempSync(join(ap.dir, 'check-')), ap)
    // A password directory the Access Point's user cannot read (as a root-owned one is to an admin without sudo).
    locked = mkdtempSync(join(tmpdir(), 'hpc-annex-locked-'))
    chmodSync(locked, 0o700)
  })
  afterAll(() => {
    if (dir) rmSync(dir, {recursive: true, force: true})
    if (locked) rmSync(locked, {recursive: true, force: true})
  })

  let n = 0
  /** admin check --json as the Access Point's user, with `extra` read after the Access Point's configuration. */
  const check = async (extra = ''): Promise<{r: RunResult; report: CheckReport}> => {
    const config = join(dir, `condor_config.${++n}`)
    writeFileSync(config, `include : ${ap.configFile}\n${extra}\n`)
    chownSync(config, ap.uid, ap.gid)
    const r = await cliAs(ap, ['admin', 'check', '--json'], {...apToolEnv(ap), CONDOR_CONFIG: config, HOME: dir})
    return {r, report: report(r)}
  }

  it('finds the AP signing key the AP collector made, and warns of the loopback collector address', async () => {
    const {r, report: checked} = await check()
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(statuses(checked)).toEqual(ON_LOOPBACK)
    const items = byId(checked)
    expect(items['signing-key']!.detail).toBe(`${join(ap.dir, 'local', 'passwords.d', 'AP')} exists`)
    expect(items['annex-collector-address']!.detail).toMatch(/^127\.0\.0\.1 is a loopback address: pilots on compute nodes elsewhere cannot reach/)
    expect(items['annex-collector-address']!.fix).toMatch(/TCP_FORWARDING_HOST/)

    const human = await cliAs(ap, ['admin', 'check'], {...apToolEnv(ap), HOME: dir})
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^WARNING {2}The annex collector's host is not a loopback address/m)
    expect(human.stdout).toMatch(/None of the 10 items is missing, but 1 warning/)
  })

  it('fails the key name the old metaknob made, which HTCondor leaves unexpanded', async () => {
    const {r, report: checked} = await check('ANNEX_TOKEN_KEY_NAME = $(SEC_TOKEN_AP_SIGNING_KEY_NAME:hpcannex-key)')
    expect(r.code).toBe(1)
    expect(statuses(checked)).toEqual({...ON_LOOPBACK, 'token-key': 'missing', 'signing-key': 'unchecked'})
    const item = byId(checked)['token-key']!
    expect(item.detail).toMatch(/^ANNEX_TOKEN_KEY_NAME = \$\(SEC_TOKEN_AP_SIGNING_KEY_NAME:hpcannex-key\) is not a plain key name: HTCondor left a macro/)
    expect(item.fix).toMatch(/^set ANNEX_TOKEN_KEY_NAME = \$\(SEC_TOKEN_AP_SIGNING_KEY_NAME\) \(here AP, the key the AP collector makes\)/)
  })

  it('fails a signing key that is not there', async () => {
    const {r, report: checked} = await check('ANNEX_TOKEN_KEY_NAME = nosuchkey')
    expect(r.code).toBe(1)
    expect(statuses(checked)).toEqual({...ON_LOOPBACK, 'signing-key': 'missing'})
    expect(byId(checked)['signing-key']!.fix).toMatch(/condor_store_cred add -c -i - -f .*\/passwords\.d\/nosuchkey; or use the key the AP collector makes/)
  })

  it('says it could not verify the key when the password directory is not readable, and does not fail for that', async () => {
    const {r, report: checked} = await check(`SEC_PASSWORD_DIRECTORY = ${locked}`)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(statuses(checked)).toEqual({...ON_LOOPBACK, 'signing-key': 'unchecked'})
    expect(byId(checked)['signing-key']!.detail).toBe(`could not be verified: ${locked} cannot be read by ${ap.user}`)
    expect(byId(checked)['signing-key']!.fix).toMatch(/as root/)
  })

  it('warns of a collector name that resolves to a loopback address', async () => {
    const {r, report: checked} = await check('ANNEX_COLLECTOR = localhost:$(SHARED_PORT_PORT)?sock=ap_collector')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(statuses(checked)).toEqual(ON_LOOPBACK)
    expect(byId(checked)['annex-collector-address']!.detail).toMatch(/^localhost resolves to (.*, )?127\.0\.0\.1(, .*)? here, a loopback address/)
  })
})

describeOnRealHTCondor('an Access Point without the feature, set up by admin metaknob --install', () => {
  let ap: AccessPoint | undefined
  let a: RealAnnexSite | undefined
  beforeAll(async () => {
    ap = await startAccessPoint({release: realAccessPoint()!.release, feature: false, name: 'metaknob'})
  })
  afterAll(async () => {
    a?.close()
    if (ap) await stopAccessPoint(ap)
  })

  const annex = async (name: string): Promise<StatusOutput['annexes'][number] | undefined> => {
    const r = await a!.cli(['status', name, '--json'])
    if (r.code !== 0) throw new Error(`status failed (${r.code}): ${r.stderr}`)
    return (expectContract('status', r.stdout) as StatusOutput).annexes.find((x) => x.annexName === name)
  }

  it('installs the configuration, restarts, passes admin check, and runs a job on an annex whose real pilots join', async () => {
    const env = {...apToolEnv(ap!), HOME: ap!.dir}
    // No feature, no annex configuration yet (HTCondor's own default is false), and admin check says so.
    expect(asApUser(ap!, 'condor_config_val', ['HPC_ANNEX_ENABLED']).stdout.trim()).toBe('false')
    const before = await cliAs(ap!, ['admin', 'check', '--json'], env)
    expect(before.code).toBe(1)
    expect(statuses(report(before))).toMatchObject({'enabled': 'missing', 'annex-collector': 'missing', 'transforms': 'missing'})

    // --install takes the first directory of LOCAL_CONFIG_DIR, which this Access Point's user owns.
    const installed = await cliAs(ap!, ['admin', 'metaknob', '--install'], env)
    expect(installed.code, installed.stdout + installed.stderr).toBe(0)
    const file = join(ap!.configDir, '50-hpc-annex.config')
    expect(installed.stdout).toContain(`Wrote the HPC annex configuration to ${file}.`)
    expect(readFileSync(file, 'utf8')).toBe(renderMetaknob({exclusive: false}))

    // The metaknob's ANNEX_COLLECTOR is this machine's name, which the site's nodes
    // cannot resolve (they run in their own mount namespace, whose /etc/hosts lacks
    // it, as a real site's nodes would): the test names the collector by address,
    // in a file read after the metaknob's (config.d is read in name order), as an
    // admin whose host name does not resolve for the compute nodes must.
    const collectorFile = join(ap!.configDir, '90-test-annex-collector.config')
    writeFileSync(collectorFile, 'ANNEX_COLLECTOR = 127.0.0.1:$(SHARED_PORT_PORT)?sock=ap_collector\n')
    chownSync(collectorFile, ap!.uid, ap!.gid)

    // What --install says to do next. This is a personal HTCondor whose collector port was
    // chosen at start-up (COLLECTOR_HOST = 127.0.0.1:0): the configuration pins it, which
    // condor_reconfig would not apply (the shared port stays where it is): condor_restart.
    expect(installed.stdout).toMatch(/^Next: condor_restart /m)
    const restart = asApUser(ap!, 'condor_restart', [])
    expect(restart.code, restart.stdout + restart.stderr).toBe(0)
    const collector = annexCollectorOf(ap!)
    expect(collector).toBe(`127.0.0.1:${ap!.port}?sock=ap_collector`)
    await until('the schedd in the AP collector', () => asApUser(ap!, 'condor_status', ['-pool', collector, '-schedd', '-af', 'Name']).stdout.trim() !== '', 90_000)
    await until('the AP signing key', () => existsSync(join(ap!.dir, 'local', 'passwords.d', 'AP')), 30_000)

    const checked = await cliAs(ap!, ['admin', 'check', '--json'], env)
    expect(checked.code, checked.stdout + checked.stderr).toBe(0)
    expect(statuses(report(checked))).toEqual(ON_LOOPBACK)

    a = realAnnexSite(ap)
    const cluster = await a.submitJob('meta')
    const created = await a.cli(['create', 'meta', 'compute@sandbox', '--nodes', '1', '--lifetime', '1800', '--condor-tarball', a.tarball, '--json'])
    expect(created.code, created.stdout + created.stderr).toBe(0)
    const {batchJobId, pilotDir} = JSON.parse(created.stdout) as {batchJobId: string; pilotDir: string}
    expect(batchJobId).toMatch(/^\d+$/)

    // The pilot joins this Access Point's AP collector, authenticated by the token signed with the AP key.
    const joined = await until('1 node joined', async () => {
      const meta = await annex('meta')
      return meta && meta.nodes.joined === 1 ? meta : undefined
    }, 120_000)
    expect(joined.nodes).toEqual({requested: 1, joined: 1})
    for (const ad of a.ads('meta')) expect(ad.AuthenticatedIdentity).toMatch(new RegExp(`^${ap!.user}@`))

    // The metaknob's AssignAnnex transform sends the job there, and it runs.
    const done = await until('the annex job to complete', () => {
      const r = a!.condor('condor_history', [cluster, '-af', 'JobStatus', 'MachineAttrAnnexName0'])
      const [status, annexName] = r.stdout.trim().split(/\s+/)
      return status === '4' ? {annexName} : undefined
    }, 120_000)
    expect(done.annexName).toBe('meta')

    const off = await a.cli(['shutdown', 'meta'])
    expect(off.code, off.stderr).toBe(0)
    await until('the pilot to leave', () => a!.ads('meta', 'master').length === 0, 60_000)
    await until('the batch job to end', () => !a!.leftovers().jobs.some((job) => job.includes('.meta.')), 60_000)
    await until('the pilot directory to go', () => a!.onSite(`test -e '${pilotDir}' || echo gone`).stdout.includes('gone'), 30_000)
  }, 480_000)
})
