/**
 * The loopback site's HTCondor test double (test/site/condor-double/condor_master)
 * and its tarball, run here without the site: a made-up pilot configuration,
 * the fake condor tools' collector.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

const SITE = join(import.meta.dirname, '..', 'site')
const DOUBLE = join(SITE, 'condor-double', 'condor_master')
const POOL = 'vm:9618?sock=ap_collector'

let fake: FakeCondor
let tmp: string

beforeEach(() => {
  fake = createFakeCondor()
  tmp = mkdtempSync(join(tmpdir(), 'condor-double-'))
})
afterEach(() => {
  fake.cleanup()
  rmSync(tmp, {recursive: true, force: true})
})

function pilotDir(settings: Record<string, string> = {}): {config: string; local: string} {
  const local = join(tmp, 'pilot', 'hosts', 'node7')
  mkdirSync(join(local, 'tokens.d'), {recursive: true})
  const token = spawnSync('condor_token_fetch', ['-file', join(local, 'tokens.d', 'annex')], {env: {...process.env, ...fake.env}, encoding: 'utf8'})
  expect(token.status, token.stderr).toBe(0)
  const values: Record<string, string> = {
    AnnexName: '"demo"',
    hpc_annex_request_id: '"ap.vm#12.0#1700000000"',
    NUM_CPUS: '2',
    MEMORY: '3000',
    STARTD_NOCLAIM_SHUTDOWN: '300',
    ANNEX_LIFETIME: '3600',
    ANNEX_CLEANUP_TIME: '300',
    ...settings,
  }
  const config = join(tmp, 'pilot', 'condor_config')
  writeFileSync(config, [
    '# Written when the pilot directory was prepared.',
    `PILOT_DIR = ${join(tmp, 'pilot')}`,
    'JOB_EXECUTION_TRANSFORM_AnnexSif @=end',
    'if defined MY.ContainerImage',
    '    SET AnnexName "not this one"',
    'endif',
    '@end',
    'RELEASE_DIR = $(PILOT_DIR)/condor',
    'use role:execute',
    `COLLECTOR_HOST = ${POOL}`,
    'AnnexName = "overridden below"',
    ...Object.entries(values).map(([k, v]) => `${k} = ${v}`),
    'MASTER.DAEMON_SHUTDOWN_FAST = (CurrentTime - DaemonStartTime) > ($(ANNEX_LIFETIME))',
    '',
  ].join('\n'))
  return {config, local}
}

function startDouble(config: string, local: string, extraEnv: NodeJS.ProcessEnv = {}): ChildProcess & {done: Promise<number | null>; errText: string} {
  const child = spawn(DOUBLE, ['-f'], {
    env: {
      ...process.env, ...fake.env, CONDOR_CONFIG: config, _CONDOR_LOCAL_DIR: local,
      _CONDOR_MASTER_NAME: 'pilot.node7', _CONDOR_STARTD_NAME: 'pilot.node7', _CONDOR_ANNEX_SETUP_SECONDS: '0', ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  }) as ChildProcess & {done: Promise<number | null>; errText: string}
  child.errText = ''
  child.stderr!.on('data', (d: Buffer) => (child.errText += d.toString()))
  child.done = new Promise(resolve => child.on('exit', code => resolve(code)))
  return child
}

const adFile = () => join(fake.dir, 'ads.d', 'pilot.node7.ad')

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 50))
  }
}

function status(kind?: '-master'): Record<string, unknown>[] {
  const r = spawnSync('condor_status', ['-json', ...(kind ? [kind] : []), '-pool', POOL, '-constraint', 'AnnexName == "demo"'], {env: {...process.env, ...fake.env}, encoding: 'utf8'})
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as Record<string, unknown>[])
}

describe('the condor_master test double', () => {
  it('advertises a master and a partitionable slot of the annex, and leaves on condor_off', async () => {
    const {config, local} = pilotDir()
    const master = startDouble(config, local)
    await until('the ad file', () => existsSync(adFile()))
    const [slot] = status()
    expect(slot).toMatchObject({
      MyType: 'Machine', Name: 'slot1@pilot.node7', AnnexName: 'demo', hpc_annex_request_id: 'ap.vm#12.0#1700000000',
      PartitionableSlot: true, Cpus: 2, TotalSlotCpus: 2, Memory: 3000, ChildCpus: [], State: 'Unclaimed', IsAnnex: true,
      AuthenticatedIdentity: `${fake.user}@vm`,
    })
    expect(typeof slot!.DaemonStartTime).toBe('number')
    expect(status('-master')).toMatchObject([{MyType: 'DaemonMaster', Name: 'pilot.node7', AnnexName: 'demo'}])

    const password = join(tmp, 'password')
    writeFileSync(password, 'x')
    const off = spawnSync('condor_off', ['-fast', '-annex-name', 'demo', '-pool', POOL], {
      env: {...process.env, ...fake.env, _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS: 'PASSWORD', _CONDOR_SEC_PASSWORD_FILE: password},
      encoding: 'utf8',
    })
    expect(off.stdout).toBe('Sent "Kill-Daemon-Fast" command for "master" to master pilot.node7\n')
    expect(await master.done).toBe(0)
    expect(master.errText).toMatch(/condor_off/)
    expect(readFileSync(join(local, 'log', 'MasterLog'), 'utf8')).toMatch(/advertised pilot\.node7 of annex "demo" \(2 CPUs, 3000 MB\)/)
  })

  it('leaves on SIGTERM, removing its ads', async () => {
    const {config, local} = pilotDir()
    const master = startDouble(config, local)
    await until('the ad file', () => existsSync(adFile()))
    master.kill('SIGTERM')
    expect(await master.done).toBe(0)
    expect(existsSync(adFile())).toBe(false)
    expect(status()).toEqual([])
  })

  it('leaves when the lifetime (less set-up and clean-up time) is over', async () => {
    const {config, local} = pilotDir({ANNEX_LIFETIME: '5', ANNEX_CLEANUP_TIME: '2'})
    const started = Date.now()
    const master = startDouble(config, local, {_CONDOR_ANNEX_SETUP_SECONDS: '1'})
    expect(await master.done).toBe(0)
    expect(Date.now() - started).toBeGreaterThan(1_000)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(master.errText).toMatch(/lifetime is over/)
    expect(readdirSync(join(fake.dir, 'ads.d'))).toEqual([])
  })

  it('finds the collector through ~/.hpc-annex-test-collector, and fails clearly without one', async () => {
    const {config, local} = pilotDir({STARTD_NOCLAIM_SHUTDOWN: '1'})
    const home = join(tmp, 'home')
    mkdirSync(home)
    const env = {FAKE_CONDOR_STATE: '', HOME: home}
    const none = startDouble(config, local, env)
    expect(await none.done).toBe(1)
    expect(none.errText).toMatch(/no collector: set FAKE_CONDOR_STATE or write its directory to ~\/\.hpc-annex-test-collector/)
    writeFileSync(join(home, '.hpc-annex-test-collector'), `${fake.dir}\n`)
    const master = startDouble(config, local, env)
    expect(await master.done).toBe(0)
    expect(master.errText).toMatch(/STARTD_NOCLAIM_SHUTDOWN/)
    // Its ad lived for a second only (no claim); the log says where it went, and it went again on leaving.
    expect(readFileSync(join(local, 'log', 'MasterLog'), 'utf8')).toContain(`advertised pilot.node7 of annex "demo" (2 CPUs, 3000 MB) to ${join(fake.dir, 'ads.d')}\n`)
    expect(existsSync(adFile())).toBe(false)
  })
})

describe('make-condor-tarball.sh', () => {
  it('makes one release directory with an executable sbin/condor_master, reproducibly', () => {
    const make = (out: string) => spawnSync('bash', [join(SITE, 'make-condor-tarball.sh'), out], {encoding: 'utf8'})
    const a = make(join(tmp, 'a.tar.gz'))
    const b = make(join(tmp, 'b.tar.gz'))
    expect(a.status, a.stderr).toBe(0)
    expect(a.stdout).toMatch(/^[0-9a-f]{64}\n$/)
    expect(b.stdout).toBe(a.stdout)
    const list = spawnSync('tar', ['-tzvf', join(tmp, 'a.tar.gz')], {encoding: 'utf8'}).stdout.trim().split('\n')
    const tops = new Set(list.map(line => line.split(/\s+/).pop()!.split('/')[0]))
    expect([...tops]).toEqual(['condor-test-25.0.4'])
    expect(list.find(line => line.endsWith(' condor-test-25.0.4/sbin/condor_master'))).toMatch(/^-rwxr-xr-x/)
    expect(statSync(join(tmp, 'a.tar.gz')).size).toBeLessThan(20_000)
  })
})
