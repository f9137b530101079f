import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, statSync, writeFileSync} from 'node:fs'
import {basename, join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {
  adValue,
  annexConfigFrom,
  annexOff,
  classadLiteral,
  editJob,
  editJobs,
  exprText,
  fetchToken,
  loginOverrides,
  parseSubmitOutput,
  queryJobs,
  readAnnexConfig,
  removeJobs,
  requireAnnexEnabled,
  submitDescription,
  sweepTokens,
  TOKEN_AUTHZ,
  tokenName,
  withToken,
  type TokenRequest,
} from '../../src/condor/index.js'
import {AnnexError} from '../../src/errors.js'
import {classadString} from '../../src/quote.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

let fake: FakeCondor
let restore: () => void

function use(options: Parameters<typeof createFakeCondor>[0] = {}) {
  restore?.()
  fake?.cleanup()
  fake = createFakeCondor(options)
  restore = fake.install()
}

beforeEach(() => use())
afterEach(() => {
  restore()
  fake.cleanup()
  delete process.env.FAKE_CONDOR_FAULT
})

const HOSTILE = [
  'x" || true || "',
  'a\\" || TargetAnnexName =!= undefined || "',
  '$(HOME) $(DOLLAR) `id` \'; rm -rf /',
  ') || (true',
  'ünïcödé ☃',
]

describe('the annex configuration', () => {
  it('reads the AP values, with HTCondor\'s defaults for the rest', async () => {
    use({config: {ANNEX_TOKEN_FETCH_TIMEOUT: '7', HPC_ANNEX_REQUIRE_JOB: 'False'}})
    const config = await readAnnexConfig()
    expect(config).toMatchObject({
      enabled: true, collector: 'vm:9618?sock=ap_collector', tokenDomain: 'vm', tokenKeyName: 'AP', tokenLifetime: 7776000,
      requireJob: false, timeouts: {tokenFetch: 7, initialConnection: 180, remoteCleanup: 60, remoteMkdir: 30, remotePopulate: 60},
    })
    expect(config.tokenDirectory).toBe(join(fake.dir, 'tokens.d'))
  })

  it('defaults: key hpcannex-key, ~ expanded, domain from UID_DOMAIN, job required', () => {
    const config = annexConfigFrom({UID_DOMAIN: 'ap.example.org', SEC_TOKEN_DIRECTORY: '~/t'})
    expect(config.tokenKeyName).toBe('hpcannex-key')
    expect(config.tokenDomain).toBe('ap.example.org')
    expect(config.requireJob).toBe(true)
    expect(config.tokenDirectory).not.toContain('~')
    expect(config.passwordFile).toMatch(/\.condor\/annex_password_file$/)
    expect(config.enabled).toBe(false)
    expect(config.collector).toBeUndefined()
  })

  it("the token directory: SEC_TOKEN_DIRECTORY; unset, the user's ~/.condor/tokens.d, or root's SEC_TOKEN_SYSTEM_DIRECTORY", () => {
    expect(annexConfigFrom({SEC_TOKEN_DIRECTORY: '/t', SEC_TOKEN_SYSTEM_DIRECTORY: '/s'}, true).tokenDirectory).toBe('/t')
    expect(annexConfigFrom({SEC_TOKEN_SYSTEM_DIRECTORY: '/s'}, true).tokenDirectory).toBe('/s')
    expect(annexConfigFrom({}, true).tokenDirectory).toBe('/etc/condor/tokens.d')
    expect(annexConfigFrom({SEC_TOKEN_SYSTEM_DIRECTORY: '/s'}, false).tokenDirectory).toMatch(/\/\.condor\/tokens\.d$/)
  })

  it('a timeout that is not a number is an error naming the knob', () => {
    expect(() => annexConfigFrom({ANNEX_TOKEN_FETCH_TIMEOUT: 'soon'})).toThrow(/ANNEX_TOKEN_FETCH_TIMEOUT = soon/)
  })

  it.each([['true', true], ['TRUE', true], ['yes', true], ['1', true], ['false', false], ['', false], [undefined, false]])(
    'HPC_ANNEX_ENABLED = %j is %j',
    (value, enabled) => {
      expect(annexConfigFrom({HPC_ANNEX_ENABLED: value}).enabled).toBe(enabled)
    },
  )

  it('not enabled: HTCondor\'s wording, and a hint to ask the admin to run admin check', async () => {
    use({config: {HPC_ANNEX_ENABLED: null}})
    const config = await readAnnexConfig()
    let error: unknown
    try {
      requireAnnexEnabled(config)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).message).toBe('HPC Annex functionality has not been enabled by your HTCondor administrator.')
    expect((error as AnnexError).hint).toContain('hpc-annex admin check')
  })

  it('per-system login overrides', async () => {
    use({config: {HPC_ANNEX_ANVIL_USER_NAME: 'x-me', HPC_ANNEX_ANVIL_HOST_NAME: 'login.example.org'}})
    expect(await loginOverrides('anvil')).toEqual({user: 'x-me', host: 'login.example.org'})
    expect(await loginOverrides('delta')).toEqual({})
  })
})

describe('the schedd', () => {
  it('submits a description on stdin and reads back the cluster', async () => {
    const {clusterId, jobs} = await submitDescription('executable = /bin/true\n+hpc_annex_name = "demo"\nqueue 2\n')
    expect(jobs).toBe(2)
    const ads = await queryJobs({ids: [String(clusterId)], attributes: ['ClusterId', 'ProcId', 'hpc_annex_name']})
    expect(ads.map((ad) => adValue(ad, 'ProcId'))).toEqual([0, 1])
    const submit = fake.calls().find((c) => c.tool === 'condor_submit')!
    expect(submit.argv).toEqual(['-terse', '-'])
  })

  it('a bad description is condor_submit\'s error, reported', async () => {
    await expect(submitDescription('executable = /no/such/file\nqueue\n')).rejects.toThrow(/condor_submit failed \(exit status 1\): ERROR: Executable file \/no\/such\/file does not exist/)
  })

  it('parses both of condor_submit\'s outputs, and refuses anything else', () => {
    expect(parseSubmitOutput('17.0 - 17.4\n')).toEqual({clusterId: 17, jobs: 5})
    expect(parseSubmitOutput('Submitting job(s).\n1 job(s) submitted to cluster 17.\n')).toEqual({clusterId: 17, jobs: 1})
    expect(() => parseSubmitOutput('WARNING: something\n')).toThrow(/reported no cluster id/)
  })

  it('queries with a constraint and a projection; no match is an empty list', async () => {
    fake.addJob({hpc_annex_name: 'a', Extra: 1})
    fake.addJob({hpc_annex_name: 'b'})
    const ads = await queryJobs({constraint: `hpc_annex_name == ${classadString('A')}`, attributes: ['hpc_annex_name']})
    // ClassAd == on strings ignores case.
    expect(ads).toEqual([{hpc_annex_name: 'a'}])
    expect(await queryJobs({constraint: `hpc_annex_name =?= ${classadString('A')}`})).toEqual([])
  })

  it('reads expressions as /Expr(...)/', async () => {
    fake.addJob({hpc_annex_request_id: {$expr: 'GlobalJobID'}})
    const [ad] = await queryJobs({attributes: ['hpc_annex_request_id']})
    expect(exprText(adValue(ad!, 'hpc_annex_request_id'))).toBe('GlobalJobID')
  })

  it.each(HOSTILE)('a hostile value %j is one string in a constraint and an edit', async (value) => {
    const victim = fake.addJob({TargetAnnexName: 'victim'})
    const target = fake.addJob({TargetAnnexName: value})
    // Only the job whose value is exactly the hostile string matches.
    const ads = await queryJobs({constraint: `TargetAnnexName =?= ${classadString(value)}`, attributes: ['ClusterId']})
    expect(ads).toEqual([{ClusterId: target.ClusterId}])
    await editJob(`${victim.ClusterId}.0`, 'Note', value)
    const jobs = fake.state().jobs
    expect(jobs.find((j) => j.ClusterId === victim.ClusterId)!.Note).toBe(value)
    expect(jobs.find((j) => j.ClusterId === target.ClusterId)!.Note).toBeUndefined()
  })

  it('edits strings, integers, booleans and undefined as ClassAd literals', async () => {
    const job = fake.addJob()
    await editJobs(`${job.ClusterId}.0`, {S: 'x', I: 42, B: true, U: null})
    expect(fake.state().jobs[0]).toMatchObject({S: 'x', I: 42, B: true, U: null})
    expect(classadLiteral(-3)).toBe('-3')
    expect(() => classadLiteral(1.5)).toThrow(/not an integer/)
    expect(() => classadLiteral(Number.NaN)).toThrow(/not an integer/)
  })

  it('refuses attribute names and job ids that are not one', async () => {
    await expect(editJob('1.0', 'a = b', 'x')).rejects.toThrow(/not a ClassAd attribute name/)
    await expect(editJob('1.0; rm', 'a', 'x')).rejects.toThrow(/not a job id/)
    await expect(queryJobs({attributes: ['Name,Owner']})).rejects.toThrow(/not a ClassAd attribute name/)
  })

  it('an edit of a job that is gone is an error', async () => {
    await expect(editJob('99.0', 'hpc_annex_JOB_ID', '1')).rejects.toThrow(/condor_qedit failed.*Failed to set attribute/)
  })

  it('removes a job with a one-line reason', async () => {
    const job = fake.addJob()
    await removeJobs(`${job.ClusterId}.0`, 'sbatch failed:\nInvalid account')
    const state = fake.state()
    expect(state.jobs).toEqual([])
    expect(state.history[0]).toMatchObject({JobStatus: 3, RemoveReason: 'sbatch failed: Invalid account'})
    await expect(removeJobs('99.0', 'x')).rejects.toThrow(/condor_rm failed.*Job 99.0 not found/)
  })
})

describe('tokens', () => {
  const request = (): TokenRequest => ({type: 'demo', user: fake.user, domain: 'vm', keyName: 'AP', lifetime: 3600, directory: join(fake.dir, 'tokens.d'), timeout: 20})

  it('fetches with the exact authz list and lifetime; 0600; removed after use; never on our output', async () => {
    let seen = ''
    const result = await withToken(request(), async (token) => {
      seen = token.path
      expect(token.name).toMatch(new RegExp(`^demo\\.${fake.user}@vm\\.[A-Za-z0-9-]+\\.${process.pid}\\.[0-9a-f]{12}$`))
      expect(token.path).toBe(join(fake.dir, 'tokens.d', token.name))
      expect(statSync(token.path).mode & 0o777).toBe(0o600)
      return 'done'
    })
    expect(result).toBe('done')
    expect(existsSync(seen)).toBe(false)
    const call = fake.calls().find((c) => c.tool === 'condor_token_fetch')!
    expect(call.argv).toEqual(['-lifetime', '3600', '-token', basename(seen), '-key', 'AP', '-authz', 'READ', '-authz', 'ADVERTISE_STARTD', '-authz', 'ADVERTISE_MASTER', '-authz', 'WRITE'])
    expect(TOKEN_AUTHZ).toEqual(['READ', 'ADVERTISE_STARTD', 'ADVERTISE_MASTER', 'WRITE'])
  })

  it('overlapping runs each have a token file of their own: the end of one leaves the other', async () => {
    // Two `status` runs (or a create and an add of one name) at once, in one process or two.
    const [first, second] = await Promise.all([fetchToken(request()), fetchToken(request())])
    expect(first.path).not.toBe(second.path)
    expect(fake.tokenFiles().sort()).toEqual([first.name, second.name].sort())
    first.remove()
    expect(existsSync(second.path)).toBe(true)
    expect(statSync(second.path).mode & 0o777).toBe(0o600)
    second.remove()
    expect(fake.tokenFiles()).toEqual([])
  })

  it("sweeps the tokens of this machine's runs that were killed outright, and no others", async () => {
    const dir = join(fake.dir, 'tokens.d')
    mkdirSync(dir, {recursive: true})
    const gone = spawnSync(process.execPath, ['-e', '']).pid!
    const host = tokenName('x', 'u', 'd').split('.')[2]!
    const left = {
      dead: `status.${fake.user}@vm.${host}.${gone}.0123456789ab`,
      deadCreate: `my.annex.${fake.user}@vm.${host}.${gone}.0123456789ab`,
      alive: `status.${fake.user}@vm.${host}.${process.ppid}.0123456789ab`,
      elsewhere: `status.${fake.user}@vm.otherhost${host}.${gone}.0123456789ab`,
      otherUser: `status.someoneelse@vm.${host}.${gone}.0123456789ab`,
      old: `status.${fake.user}@vm`,
      unrelated: 'pool-token',
    }
    for (const name of Object.values(left)) writeFileSync(join(dir, name), 'token', {mode: 0o600})
    const token = await fetchToken(request())
    expect(fake.tokenFiles().sort()).toEqual([token.name, left.alive, left.elsewhere, left.otherUser, left.old, left.unrelated].sort())
    token.remove()
    expect(sweepTokens(join(fake.dir, 'nowhere'), fake.user, 'vm')).toEqual([])
  })

  it('the token is removed even when the work fails', async () => {
    let seen = ''
    await expect(withToken(request(), async (token) => {
      seen = token.path
      throw new Error('boom')
    })).rejects.toThrow('boom')
    expect(existsSync(seen)).toBe(false)
  })

  it('an unknown signing key is condor_token_fetch\'s error, reported; no file is left', async () => {
    await expect(fetchToken({...request(), keyName: 'nope'})).rejects.toThrow(/condor_token_fetch failed.*signing key "nope"/)
    expect(fake.tokenFiles()).toEqual([])
  })

  it('a hung condor_token_fetch is bounded by ANNEX_TOKEN_FETCH_TIMEOUT', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_token_fetch:hang'
    await expect(fetchToken({...request(), timeout: 1})).rejects.toThrow('condor_token_fetch did not finish within 1 seconds (ANNEX_TOKEN_FETCH_TIMEOUT).')
  })

  it('refuses a token name that would leave the token directory', async () => {
    await expect(fetchToken({...request(), type: '../x'})).rejects.toThrow(/unusable token name/)
    await expect(fetchToken({...request(), domain: 'a/b'})).rejects.toThrow(/unusable token name/)
    expect(() => tokenName('status', 'u', 'd', '../../x')).toThrow(/unusable token name/)
  })

  it('removes the token when the process exits', async () => {
    const token = await fetchToken(request())
    // The exit hook is what runs on exit; call it as the process would.
    process.emit('exit', 0)
    expect(existsSync(token.path)).toBe(false)
  })
})

describe('condor_off', () => {
  it('tells each master of the annex, with the password file in its environment only', async () => {
    const passwordFile = join(fake.dir, 'annex_password_file')
    writeFileSync(passwordFile, 'secret', {mode: 0o400})
    fake.advertise([
      {MyType: 'DaemonMaster', Name: 'node1', AnnexName: 'demo'},
      {MyType: 'DaemonMaster', Name: 'node2', AnnexName: 'demo'},
      {MyType: 'DaemonMaster', Name: 'other', AnnexName: 'other'},
    ])
    const told = await annexOff({annexName: 'demo', pool: 'vm:9618?sock=ap_collector', passwordFile})
    expect(told).toEqual(['node1', 'node2'])
    const call = fake.calls().find((c) => c.tool === 'condor_off')!
    expect(call.argv).toEqual(['-fast', '-annex-name', 'demo', '-pool', 'vm:9618?sock=ap_collector'])
    expect(call.env).toEqual({_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS: 'FS IDTOKENS PASSWORD', _CONDOR_SEC_PASSWORD_FILE: passwordFile})
    expect(fake.state().collectors['vm:9618?sock=ap_collector']!.map((ad) => ad.Name)).toEqual(['other'])
  })

  it('a missing password file is a clear error before condor_off runs', async () => {
    await expect(annexOff({annexName: 'demo', pool: 'p', passwordFile: join(fake.dir, 'none')})).rejects.toThrow(/password file .* does not exist/)
    expect(fake.calls().filter((c) => c.tool === 'condor_off')).toEqual([])
  })
})
