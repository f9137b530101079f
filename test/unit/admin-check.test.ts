import {describe, expect, it} from 'vitest'

import {checkAp, formatReport} from '../../src/annex/admin-check.js'
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
}

/**
 * The AP as `condor_config_val` and `condor_status` would show it: its
 * configuration is a pool AP's files plus the rendered hpc-annex
 * configuration, read by the test reader.
 */
function fakeAp(options: FakeAp = {}): AdminCondor & {config: CondorConfig; asked: string[][]} {
  const config = apConfig([
    ['00-pool.config', POOL_AP],
    ['50-hpc-annex.config', renderMetaknob({exclusive: options.exclusive ?? false})],
    ['99-test.config', options.extra ?? ''],
  ])
  const asked: string[][] = []
  return {
    config,
    asked,
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

const statuses = async (ap: AdminCondor) => Object.fromEntries((await checkAp(ap)).items.map((item) => [item.id, item.status]))
const ALL_OK = {
  'enabled': 'ok',
  'annex-collector': 'ok',
  'annex-collector-reachable': 'ok',
  'one-schedd': 'ok',
  'token-key': 'ok',
  'token-domain': 'ok',
  'transforms': 'ok',
  'idtokens': 'ok',
}

describe('admin check', () => {
  it('finds everything in place on an AP with the hpc-annex configuration', async () => {
    const ap = fakeAp()
    const report = await checkAp(ap)
    expect(report.ok).toBe(true)
    expect(Object.fromEntries(report.items.map((i) => [i.id, i.status]))).toEqual(ALL_OK)
    expect(report.items.every((i) => i.fix === undefined)).toBe(true)
    expect(report.items.find((i) => i.id === 'one-schedd')!.detail).toMatch(/ap@vm/)
    // Multi-line transform bodies are asked alone: condor_config_val prints them over several lines.
    expect(ap.asked.filter((names) => names.some((n) => n.startsWith('JOB_TRANSFORM_Ass'))).every((names) => names.length === 1)).toBe(true)
    expect(formatReport(report)).toMatch(/All 8 items are in place/)
  })

  it('also wants AnnexJobsExclusively when ANNEX_JOBS_EXCLUSIVELY is on, and finds it with --exclusive', async () => {
    expect(await statuses(fakeAp({exclusive: true}))).toEqual(ALL_OK)
    const report = await checkAp(fakeAp({extra: 'ANNEX_JOBS_EXCLUSIVELY = true\n'}))
    const item = report.items.find((i) => i.id === 'transforms')!
    expect(item.status).toBe('missing')
    expect(item.detail).toBe('JOB_TRANSFORM_NAMES lacks AnnexJobsExclusively')
    expect(item.fix).toMatch(/JOB_TRANSFORM_NAMES = \$\(JOB_TRANSFORM_NAMES\) AnnexJobsExclusively/)
  })

  const cases: Array<[string, FakeAp, Record<string, string>, RegExp]> = [
    ['annexes not enabled', {extra: 'HPC_ANNEX_ENABLED = false'}, {enabled: 'missing'}, /HPC_ANNEX_ENABLED = true/],
    ['no HPC_ANNEX_ENABLED', {undefine: ['HPC_ANNEX_ENABLED']}, {enabled: 'missing'}, /metaknob --install/],
    ['no annex collector', {undefine: ['ANNEX_COLLECTOR']}, {'annex-collector': 'missing', 'annex-collector-reachable': 'unchecked', 'one-schedd': 'unchecked'}, /sock=ap_collector/],
    ['the annex collector does not answer', {reachable: false}, {'annex-collector-reachable': 'missing', 'one-schedd': 'unchecked'}, /AP_COLLECTOR must be in DAEMON_LIST/],
    ['no schedd reports to it', {schedds: []}, {'one-schedd': 'missing'}, /SCHEDD\.COLLECTOR_HOST = \$\(COLLECTOR_HOST\), \$\(ANNEX_COLLECTOR\)/],
    ['two schedds report to it', {schedds: [SCHEDD, {Name: 'other@vm'}]}, {'one-schedd': 'missing'}, /only this AP's schedd/],
    ['no token key', {undefine: ['ANNEX_TOKEN_KEY_NAME']}, {'token-key': 'missing'}, /SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS/],
    ['an empty token key', {extra: 'ANNEX_TOKEN_KEY_NAME ='}, {'token-key': 'missing'}, /ANNEX_TOKEN_KEY_NAME = /],
    ['no token domain', {undefine: ['ANNEX_TOKEN_DOMAIN']}, {'token-domain': 'missing'}, /ANNEX_TOKEN_DOMAIN = \$\(UID_DOMAIN\)/],
    ['AssignAnnex not in JOB_TRANSFORM_NAMES', {extra: 'JOB_TRANSFORM_NAMES = SiteDefaults'}, {transforms: 'missing'}, /\) AssignAnnex/],
    ['the AssignAnnex transform not defined', {undefine: ['JOB_TRANSFORM_AssignAnnex']}, {transforms: 'missing'}, /admin metaknob shows/],
    ['no IDTOKENS by default', {extra: 'SEC_DEFAULT_AUTHENTICATION_METHODS = FS, KERBEROS'}, {idtokens: 'missing'}, /SEC_DEFAULT_AUTHENTICATION_METHODS = \$\(SEC_DEFAULT_AUTHENTICATION_METHODS\), IDTOKENS/],
    ['no IDTOKENS for ADVERTISE_STARTD', {extra: 'SEC_ADVERTISE_STARTD_AUTHENTICATION_METHODS = FS'}, {idtokens: 'missing'}, /SEC_ADVERTISE_STARTD_AUTHENTICATION_METHODS = \$\(SEC_ADVERTISE_STARTD_AUTHENTICATION_METHODS\), IDTOKENS/],
  ]

  for (const [what, options, expected, fix] of cases) {
    it(`reports ${what}, with the fix, and nothing else`, async () => {
      const report = await checkAp(fakeAp(options))
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

  it('says what the annex collector answered when it did not', async () => {
    const item = (await checkAp(fakeAp({reachable: false}))).items.find((i) => i.id === 'annex-collector-reachable')!
    expect(item.detail).toBe("condor_status -pool 'ap.example.org:9618?sock=ap_collector' -schedd failed: condor_status failed (exit status 1): Error: communication error CEDAR:6001:Failed to connect to ap.example.org:9618?sock=ap_collector")
  })

  it('accepts token authentication spelled TOKEN, and an AP that sets no method list at all', async () => {
    expect((await statuses(fakeAp({extra: 'SEC_DEFAULT_AUTHENTICATION_METHODS = FS, TOKEN'}))).idtokens).toBe('ok')
    expect((await statuses(fakeAp({undefine: ['SEC_DEFAULT_AUTHENTICATION_METHODS']}))).idtokens).toBe('ok')
  })
})
