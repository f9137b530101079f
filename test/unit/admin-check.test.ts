import {describe, expect, it} from 'vitest'

import {collectorEndpoint} from '../../src/render/address.js'
import {checkAp, formatReport, isLoopback, type CheckHost, type KeyFileState} from '../../src/annex/admin-check.js'
import type {AdminCondor, CondorAd} from '../../src/annex/admin-condor.js'
import {renderMetaknob} from '../../src/annex/metaknob.js'
import {systemError} from '../../src/errors.js'
import {apConfig, POOL_AP} from '../fixtures/ap-config.js'
import type {CondorConfig} from '../fixtures/condor-config-reader.js'

const SCHEDD: CondorAd = {MyType: 'Scheduler', Name: 'ap@vm'}

interface FakeAp {
  /** Extra configuration text read after the AP's files. */
  extra?: string
  /** Names condor_config_val reports as not defined. */
  undefine?: string[]
  exclusive?: boolean
  reachable?: boolean
  schedds?: CondorAd[]
  /** HTCondor's built-in defaults beyond the test AP's (SEC_TOKEN_AP_SIGNING_KEY_NAME, say). */
  defaults?: Record<string, string>
  /** What host names resolve to here (default: ap.example.org is 192.0.2.2). */
  hosts?: Record<string, string[]>
  /** The key files in SEC_PASSWORD_DIRECTORY, by name (default: every key is present). */
  keys?: Record<string, KeyFileState>
}

/** The machine the check runs on, as the test says. */
function fakeHost(options: FakeAp): CheckHost & {looked: string[]} {
  const looked: string[] = []
  return {
    looked,
    async addresses(host) {
      looked.push(host)
      const found = (options.hosts ?? {'ap.example.org': ['192.0.2.2']})[host]
      if (found === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`)
      return found
    },
    keyFile(dir, name) {
      return options.keys?.[name] ?? (options.keys === undefined ? {state: 'present'} : {state: 'absent', why: `${dir}/${name} does not exist`})
    },
  }
}

/**
 * The AP as `condor_config_val` and `condor_status` would show it: its
 * configuration is a pool AP's files plus the rendered hpc-annex
 * configuration, read by the test reader.
 */
function fakeAp(options: FakeAp = {}): AdminCondor & {config: CondorConfig; asked: string[][]; host: CheckHost & {looked: string[]}} {
  const config = apConfig(
    [
      ['00-pool.config', POOL_AP],
      ['50-hpc-annex.config', renderMetaknob({exclusive: options.exclusive ?? false})],
      ['99-test.config', options.extra ?? ''],
    ],
    options.defaults,
  )
  const asked: string[][] = []
  return {
    config,
    asked,
    host: fakeHost(options),
    async configValues(names) {
      asked.push(names)
      return Object.fromEntries(names.map((name) => [name, options.undefine?.includes(name) ? undefined : config.value(name)]))
    },
    async configTemplate() {
      return undefined
    },
    async scheddAds(pool) {
      if (pool !== config.value('ANNEX_COLLECTOR')) throw systemError(`asked the wrong collector ${pool}`)
      if (options.reachable === false) throw systemError(`condor_status failed (exit status 1): Error: communication error CEDAR:6001:Failed to connect to ${pool}`)
      return options.schedds ?? [SCHEDD]
    },
  }
}

const check = (ap: ReturnType<typeof fakeAp>) => checkAp(ap, ap.host)
const statuses = async (ap: ReturnType<typeof fakeAp>) => Object.fromEntries((await check(ap)).items.map((item) => [item.id, item.status]))
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

describe('admin check', () => {
  it('finds everything in place on an AP with the hpc-annex configuration', async () => {
    const ap = fakeAp()
    const report = await check(ap)
    expect(report.ok).toBe(true)
    expect(Object.fromEntries(report.items.map((i) => [i.id, i.status]))).toEqual(ALL_OK)
    expect(report.items.every((i) => i.fix === undefined)).toBe(true)
    expect(report.items.find((i) => i.id === 'one-schedd')!.detail).toMatch(/ap@vm/)
    // Multi-line transform bodies are asked alone: condor_config_val prints them over several lines.
    expect(ap.asked.filter((names) => names.some((n) => n.startsWith('JOB_TRANSFORM_Ass'))).every((names) => names.length === 1)).toBe(true)
    expect(formatReport(report)).toMatch(/All 10 items are in place/)
  })

  it('also wants AnnexJobsExclusively when ANNEX_JOBS_EXCLUSIVELY is on, and finds it with --exclusive', async () => {
    expect(await statuses(fakeAp({exclusive: true}))).toEqual(ALL_OK)
    const report = await check(fakeAp({extra: 'ANNEX_JOBS_EXCLUSIVELY = true\n'}))
    const item = report.items.find((i) => i.id === 'transforms')!
    expect(item.status).toBe('missing')
    expect(item.detail).toBe('JOB_TRANSFORM_NAMES lacks AnnexJobsExclusively')
    expect(item.fix).toMatch(/JOB_TRANSFORM_NAMES = \$\(JOB_TRANSFORM_NAMES\) AnnexJobsExclusively/)
  })

  const cases: Array<[string, FakeAp, Record<string, string>, RegExp]> = [
    ['annexes not enabled', {extra: 'HPC_ANNEX_ENABLED = false'}, {enabled: 'missing'}, /HPC_ANNEX_ENABLED = true/],
    ['no HPC_ANNEX_ENABLED', {undefine: ['HPC_ANNEX_ENABLED']}, {enabled: 'missing'}, /metaknob --install/],
    ['no annex collector', {undefine: ['ANNEX_COLLECTOR']}, {'annex-collector': 'missing', 'annex-collector-address': 'unchecked', 'annex-collector-reachable': 'unchecked', 'one-schedd': 'unchecked'}, /sock=ap_collector/],
    ['the annex collector does not answer', {reachable: false}, {'annex-collector-reachable': 'missing', 'one-schedd': 'unchecked'}, /AP_COLLECTOR must be in DAEMON_LIST/],
    ['no schedd reports to it', {schedds: []}, {'one-schedd': 'missing'}, /SCHEDD\.COLLECTOR_HOST = \$\(COLLECTOR_HOST\), \$\(ANNEX_COLLECTOR\)/],
    ['two schedds report to it', {schedds: [SCHEDD, {Name: 'other@vm'}]}, {'one-schedd': 'missing'}, /only this AP's schedd/],
    ['no token key', {undefine: ['ANNEX_TOKEN_KEY_NAME']}, {'token-key': 'missing', 'signing-key': 'unchecked'}, /SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS/],
    ['an empty token key', {extra: 'ANNEX_TOKEN_KEY_NAME ='}, {'token-key': 'missing', 'signing-key': 'unchecked'}, /ANNEX_TOKEN_KEY_NAME = hpcannex-key \(this HTCondor names no AP signing key\)/],
    // What HTCondor makes of `$(SEC_TOKEN_AP_SIGNING_KEY_NAME:hpcannex-key)`: the text as it is.
    [
      'a token key HTCondor left unexpanded',
      {extra: 'ANNEX_TOKEN_KEY_NAME = $(SEC_TOKEN_AP_SIGNING_KEY_NAME:hpcannex-key)', defaults: {SEC_TOKEN_AP_SIGNING_KEY_NAME: 'AP'}},
      {'token-key': 'missing', 'signing-key': 'unchecked'},
      /ANNEX_TOKEN_KEY_NAME = \$\(SEC_TOKEN_AP_SIGNING_KEY_NAME\) \(here AP, the key the AP collector makes\)/,
    ],
    ['a token key that is a path', {extra: 'ANNEX_TOKEN_KEY_NAME = ../POOL'}, {'token-key': 'missing', 'signing-key': 'unchecked'}, /ANNEX_TOKEN_KEY_NAME = hpcannex-key/],
    [
      'a signing key nobody made',
      {keys: {}},
      {'signing-key': 'missing'},
      /^make it once, as root: openssl rand -base64 32 \| sudo condor_store_cred add -c -i - -f \/etc\/condor\/passwords\.d\/hpcannex-key$/,
    ],
    [
      'a signing key nobody made, where the AP collector would make another',
      {keys: {}, extra: 'ANNEX_TOKEN_KEY_NAME = mykey', defaults: {SEC_TOKEN_AP_SIGNING_KEY_NAME: 'AP'}},
      {'signing-key': 'missing'},
      /-f \/etc\/condor\/passwords\.d\/mykey; or use the key the AP collector makes: ANNEX_TOKEN_KEY_NAME = \$\(SEC_TOKEN_AP_SIGNING_KEY_NAME\)/,
    ],
    [
      'the AP signing key missing though the AP collector runs',
      {keys: {}, defaults: {SEC_TOKEN_AP_SIGNING_KEY_NAME: 'AP'}},
      {'signing-key': 'missing'},
      /make sure \/etc\/condor\/passwords\.d exists .*condor_reconfig: the AP collector makes AP when it starts/,
    ],
    ['no SEC_PASSWORD_DIRECTORY', {undefine: ['SEC_PASSWORD_DIRECTORY']}, {'signing-key': 'missing'}, /set SEC_PASSWORD_DIRECTORY/],
    ['no token domain', {undefine: ['ANNEX_TOKEN_DOMAIN']}, {'token-domain': 'missing'}, /ANNEX_TOKEN_DOMAIN = \$\(UID_DOMAIN\)/],
    ['AssignAnnex not in JOB_TRANSFORM_NAMES', {extra: 'JOB_TRANSFORM_NAMES = SiteDefaults'}, {transforms: 'missing'}, /\) AssignAnnex/],
    ['the AssignAnnex transform not defined', {undefine: ['JOB_TRANSFORM_AssignAnnex']}, {transforms: 'missing'}, /admin metaknob shows/],
    ['no IDTOKENS by default', {extra: 'SEC_DEFAULT_AUTHENTICATION_METHODS = FS, KERBEROS'}, {idtokens: 'missing'}, /SEC_DEFAULT_AUTHENTICATION_METHODS = \$\(SEC_DEFAULT_AUTHENTICATION_METHODS\), IDTOKENS/],
    ['no IDTOKENS for ADVERTISE_STARTD', {extra: 'SEC_ADVERTISE_STARTD_AUTHENTICATION_METHODS = FS'}, {idtokens: 'missing'}, /SEC_ADVERTISE_STARTD_AUTHENTICATION_METHODS = \$\(SEC_ADVERTISE_STARTD_AUTHENTICATION_METHODS\), IDTOKENS/],
  ]

  for (const [what, options, expected, fix] of cases) {
    it(`reports ${what}, with the fix, and nothing else`, async () => {
      const report = await check(fakeAp(options))
      expect(report.ok).toBe(false)
      expect(Object.fromEntries(report.items.map((i) => [i.id, i.status]))).toEqual({...ALL_OK, ...expected})
      const first = report.items.find((i) => i.id === Object.keys(expected)[0])!
      expect(first.fix).toMatch(fix)
      const text = formatReport(report)
      expect(text).toMatch(/^MISSING/m)
      expect(text).toContain(`Fix: ${first.fix}`)
      expect(text).toMatch(/not in place/)
    })
  }

  // Items that do not fail the check: a warning, or what could not be verified.
  const notFailing: Array<[string, FakeAp, Record<string, string>, RegExp, RegExp]> = [
    [
      'an annex collector at a loopback address',
      {extra: 'ANNEX_COLLECTOR = 127.0.0.1:9618?sock=ap_collector'},
      {'annex-collector-address': 'warning'},
      /^127\.0\.0\.1 is a loopback address: pilots on compute nodes elsewhere cannot reach/,
      /None of the 10 items is missing, but 1 warning: read it above/,
    ],
    [
      'an annex collector whose name resolves to loopback here (Debian\'s 127.0.1.1)',
      {hosts: {'ap.example.org': ['127.0.1.1']}},
      {'annex-collector-address': 'warning'},
      /^ap\.example\.org resolves to 127\.0\.1\.1 here, a loopback address \(an \/etc\/hosts line such as "127\.0\.1\.1 ap\.example\.org"\?\)/,
      /but 1 warning/,
    ],
    [
      'an annex collector at ::1 through TCP_FORWARDING_HOST',
      {extra: 'TCP_FORWARDING_HOST = [::1]\nANNEX_COLLECTOR = $(TCP_FORWARDING_HOST):9618?sock=ap_collector'},
      {'annex-collector-address': 'warning'},
      /^::1 is a loopback address/,
      /but 1 warning/,
    ],
    [
      'an annex collector whose name does not resolve here',
      {hosts: {}},
      {'annex-collector-address': 'unchecked'},
      /^could not be verified: ap\.example\.org does not resolve here \(getaddrinfo ENOTFOUND ap\.example\.org\)$/,
      /but 1 item could not be verified \(\?\)/,
    ],
    [
      'a password directory this user cannot read',
      {keys: {'hpcannex-key': {state: 'unreadable', why: '/etc/condor/passwords.d cannot be read by alice'}}},
      {'signing-key': 'unchecked'},
      /^could not be verified: \/etc\/condor\/passwords\.d cannot be read by alice$/,
      /None of the 10 items is missing, but 1 item could not be verified/,
    ],
    [
      'an AP signing key the AP collector has yet to make',
      {keys: {}, defaults: {SEC_TOKEN_AP_SIGNING_KEY_NAME: 'AP'}, reachable: false},
      {'signing-key': 'ok', 'annex-collector-reachable': 'missing', 'one-schedd': 'unchecked'},
      /^not there yet \(\/etc\/condor\/passwords\.d\/AP does not exist\): the AP collector makes it when it starts$/,
      /2 of 10 items are not in place/,
    ],
  ]

  for (const [what, options, expected, detail, summary] of notFailing) {
    it(`tells ${what}, without failing for it`, async () => {
      const report = await check(fakeAp(options))
      expect(Object.fromEntries(report.items.map((i) => [i.id, i.status]))).toEqual({...ALL_OK, ...expected})
      const item = report.items.find((i) => i.id === Object.keys(expected)[0])!
      expect(item.detail).toMatch(detail)
      expect(report.ok).toBe(!Object.values(expected).includes('missing'))
      const text = formatReport(report)
      if (item.status === 'warning') expect(text).toMatch(/^WARNING {2}The annex collector's host is not a loopback address {2}/m)
      if (item.status === 'unchecked') expect(text).toMatch(/^\? {6} /m)
      expect(text).toMatch(summary)
    })
  }

  it('tells the collector address warning how to fix it, and asks the resolver for the host only', async () => {
    const ap = fakeAp({hosts: {'ap.example.org': ['192.0.2.2', '127.0.1.1']}})
    const item = (await check(ap)).items.find((i) => i.id === 'annex-collector-address')!
    expect(item.status).toBe('warning')
    expect(item.fix).toMatch(/^set ANNEX_COLLECTOR to a name or address of this AP that the compute nodes can reach, .*TCP_FORWARDING_HOST/)
    expect(ap.host.looked).toEqual(['ap.example.org'])
    expect((await check(fakeAp())).items.find((i) => i.id === 'annex-collector-address')!.detail).toBe('ap.example.org resolves to 192.0.2.2')
  })

  it('finds the key the metaknob names whether or not this HTCondor has an AP signing key', async () => {
    const seen: string[] = []
    const keys = (name: string): KeyFileState => (seen.push(name), {state: 'present'})
    const withAp = fakeAp({defaults: {SEC_TOKEN_AP_SIGNING_KEY_NAME: 'AP'}})
    withAp.host.keyFile = (_dir, name) => keys(name)
    expect((await statuses(withAp))['signing-key']).toBe('ok')
    const without = fakeAp()
    without.host.keyFile = (_dir, name) => keys(name)
    expect((await statuses(without))['signing-key']).toBe('ok')
    expect(seen).toEqual(['AP', 'hpcannex-key'])
  })

  it('reads the host out of every form of collector address, and knows loopback addresses', () => {
    expect(['vm:9618?sock=ap_collector', '<192.0.2.2:9618?sock=ap_collector>', '[::1]:9618?sock=x', 'host', '<[fe80::1]:9618>', '::1'].map((a) => collectorEndpoint(a)?.host)).toEqual(['vm', '192.0.2.2', '::1', 'host', 'fe80::1', '::1'])
    const loopback = ['127.0.0.1', '127.0.1.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1']
    const other = ['10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', 'fe80::1', '::', '1::1', 'localhost']
    expect(loopback.filter(isLoopback)).toEqual(loopback)
    expect(other.filter(isLoopback)).toEqual([])
  })

  it('says what the annex collector answered when it did not', async () => {
    const item = (await check(fakeAp({reachable: false}))).items.find((i) => i.id === 'annex-collector-reachable')!
    expect(item.detail).toBe("condor_status -pool 'ap.example.org:9618?sock=ap_collector' -schedd failed: condor_status failed (exit status 1): Error: communication error CEDAR:6001:Failed to connect to ap.example.org:9618?sock=ap_collector")
  })

  it('accepts token authentication spelled TOKEN, and an AP that sets no method list at all', async () => {
    expect((await statuses(fakeAp({extra: 'SEC_DEFAULT_AUTHENTICATION_METHODS = FS, TOKEN'}))).idtokens).toBe('ok')
    expect((await statuses(fakeAp({undefine: ['SEC_DEFAULT_AUTHENTICATION_METHODS']}))).idtokens).toBe('ok')
  })
})
