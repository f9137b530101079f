import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import Handlebars from 'handlebars'
import {describe, expect, it} from 'vitest'

import {renderBuiltinUse, renderMetaknob} from '../../src/annex/metaknob.js'
import {projectPath} from '../../src/paths.js'
import {apConfig, PERSONAL_AP, POOL_AP} from '../fixtures/ap-config.js'
import {applyTransform} from '../fixtures/condor-transform.js'

const metaknob = (exclusive = false) => renderMetaknob({exclusive})

describe('the AP configuration (metaknobs/)', () => {
  it('lets values in only through the quoting helpers', () => {
    const allowed = new Set(['condor', 'int', 'classad'])
    for (const file of readdirSync(projectPath('metaknobs'))) {
      const ast = Handlebars.parse(readFileSync(join(projectPath('metaknobs'), file), 'utf8'))
      const visit = (node: hbs.AST.Node): void => {
        if (node.type === 'MustacheStatement') {
          const m = node as hbs.AST.MustacheStatement
          const helper = (m.path as hbs.AST.PathExpression).original
          expect(allowed.has(helper) && m.params.length === 1 && m.escaped, `${file}: {{${helper}}}`).toBe(true)
        } else if (node.type === 'BlockStatement') {
          const b = node as hbs.AST.BlockStatement
          expect(['if', 'unless'], file).toContain((b.path as hbs.AST.PathExpression).original)
          b.program.body.forEach(visit)
          b.inverse?.body.forEach(visit)
        }
      }
      ast.body.forEach(visit)
    }
  })

  it('parses on top of a pool AP and sets what an annex needs', () => {
    const c = apConfig([['00-pool.config', POOL_AP], ['50-hpc-annex.config', metaknob()]])
    expect(c.uses).toEqual([])
    expect(c.value('HPC_ANNEX_ENABLED')).toBe('true')
    expect(c.value('ANNEX_COLLECTOR')).toBe('ap.example.org:9618?sock=ap_collector')
    // The AP collector: its own daemon, arguments, log and address file.
    expect(c.value('DAEMON_LIST')).toBe('MASTER SCHEDD AP_COLLECTOR')
    // As HTCondor's own feature: DC_DAEMON_LIST is the admin's (every daemon is a DaemonCore one by default).
    expect(c.defined('DC_DAEMON_LIST')).toBe(false)
    expect(c.value('AP_COLLECTOR')).toBe('/usr/sbin/condor_collector')
    expect(c.value('AP_COLLECTOR_ARGS')).toBe('-local-name AP_COLLECTOR -sock ap_collector')
    const apCollector = {subsystem: 'COLLECTOR', localName: 'AP_COLLECTOR'}
    expect(c.value('COLLECTOR_LOG', apCollector)).toBe('/var/log/condor/APCollectorLog')
    expect(c.value('COLLECTOR_LOG', {subsystem: 'COLLECTOR'})).toBe('/var/log/condor/CollectorLog')
    expect(c.value('COLLECTOR_ADDRESS_FILE', apCollector)).toBe('/var/log/condor/.ap_collector_address')
    expect(c.value('COLLECTOR_ADDRESS_FILE', {subsystem: 'COLLECTOR'})).toBeUndefined()
    // Submitters may advertise pilots to the AP collector, and nowhere else because of this file.
    expect(c.value('ALLOW_ADVERTISE_STARTD', apCollector)).toBe(' *@ap.example.org')
    expect(c.value('ALLOW_ADVERTISE_MASTER', apCollector)).toBe(' *@ap.example.org')
    expect(c.value('ALLOW_ADVERTISE_STARTD', {subsystem: 'COLLECTOR'})).toBeUndefined()
    // The schedd reports to the pool's collector and the AP collector; other daemons only to the pool's.
    expect(c.value('COLLECTOR_HOST', {subsystem: 'SCHEDD'})).toBe('cm.example.org, ap.example.org:9618?sock=ap_collector')
    expect(c.value('COLLECTOR_HOST', {subsystem: 'STARTD'})).toBe('cm.example.org')
    // Tokens.
    expect(c.value('ANNEX_TOKEN_KEY_NAME')).toBe('hpcannex-key')
    expect(c.value('SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS')).toBe('POOL hpcannex-key')
    expect(c.value('ANNEX_TOKEN_DOMAIN')).toBe('ap.example.org')
    // Transforms: added after the site's own; the exclusive one defined but off.
    expect(c.value('JOB_TRANSFORM_NAMES')).toBe('SiteDefaults AssignAnnex')
    expect(c.raw('JOB_TRANSFORM_AssignAnnex')).toMatch(/REQUIREMENTS TargetAnnexName isnt undefined/)
    expect(c.raw('JOB_TRANSFORM_AnnexJobsExclusively')).toBeDefined()
    expect(c.defined('ANNEX_JOBS_EXCLUSIVELY')).toBe(false)
  })

  it('keeps the admin\'s DC_DAEMON_LIST and advertising rules, adding to them as HTCondor\'s feature does', () => {
    const admin = 'DC_DAEMON_LIST = + MY_DAEMON\nALLOW_ADVERTISE_STARTD = condor@cm.example.org\nALLOW_ADVERTISE_MASTER = condor@cm.example.org\n'
    const c = apConfig([['00-pool.config', `${POOL_AP}${admin}`], ['50-hpc-annex.config', metaknob()]])
    expect(c.value('DC_DAEMON_LIST')).toBe('+ MY_DAEMON')
    const apCollector = {subsystem: 'COLLECTOR', localName: 'AP_COLLECTOR'}
    expect(c.value('ALLOW_ADVERTISE_STARTD', apCollector)).toBe('condor@cm.example.org *@ap.example.org')
    expect(c.value('ALLOW_ADVERTISE_MASTER', apCollector)).toBe('condor@cm.example.org *@ap.example.org')
    expect(c.value('ALLOW_ADVERTISE_STARTD', {subsystem: 'COLLECTOR'})).toBe('condor@cm.example.org')
  })

  it('follows the AP\'s own signing key, forwarding host and earlier allowed keys', () => {
    const c = apConfig(
      [['00-pool.config', `${POOL_AP}\nSEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS = POOL OTHER\nTCP_FORWARDING_HOST = gw.example.org\n`], ['50-hpc-annex.config', metaknob()]],
      {SEC_TOKEN_AP_SIGNING_KEY_NAME: 'AP'},
    )
    expect(c.value('ANNEX_TOKEN_KEY_NAME')).toBe('AP')
    expect(c.value('SEC_TOKEN_FETCH_ALLOWED_SIGNING_KEYS')).toBe('POOL OTHER AP')
    expect(c.value('ANNEX_COLLECTOR')).toBe('gw.example.org:9618?sock=ap_collector')
  })

  it('pins a personal HTCondor\'s collector to its port, and leaves a pool\'s alone', () => {
    const personal = apConfig([['00-personal.config', PERSONAL_AP], ['50-hpc-annex.config', metaknob()]])
    expect(personal.value('COLLECTOR_HOST')).toBe('ap.example.org:9618')
    // admin metaknob --install reads it: the moved collector needs a restart.
    expect(personal.value('_HPC_ANNEX_PINNED_COLLECTOR')).toBe('true')
    expect(personal.value('COLLECTOR_HOST', {subsystem: 'SCHEDD'})).toBe('ap.example.org:9618, ap.example.org:9618?sock=ap_collector')
    const pool = apConfig([['00-pool.config', POOL_AP.replace('$(CONDOR_HOST)', 'cm.example.org:9610')], ['50-hpc-annex.config', metaknob()]])
    expect(pool.value('COLLECTOR_HOST')).toBe('cm.example.org:9610')
    expect(pool.defined('_HPC_ANNEX_PINNED_COLLECTOR')).toBe(false)
  })

  it('routes a job that names an annex to that annex and its owner\'s pilots', () => {
    const c = apConfig([['00-pool.config', POOL_AP], ['50-hpc-annex.config', metaknob()]], {FULL_HOSTNAME: 'vm'})
    const body = c.raw('JOB_TRANSFORM_AssignAnnex')!
    const job = {Owner: 'condoruser', TargetAnnexName: 'demo', Requirements: {expr: '<original>'}}
    const out = applyTransform(body, job, c)
    // As recorded from HTCondor's own feature (reference/condor-samples.md), up to spaces after commas.
    const requirements = (out.Requirements as {expr: string}).expr.replace(/,\s+/g, ',')
    expect(requirements).toBe('ifThenElse(TARGET.AuthenticatedIdentity is undefined,true,"condoruser@vm" == TARGET.AuthenticatedIdentity) && (MY.TargetAnnexName == TARGET.AnnexName) && (<original>)')
    expect(out.JobMachineAttrs).toBe('AnnexName')
    expect(applyTransform(body, {...job, JobMachineAttrs: 'GLIDEIN_Site'}, c).JobMachineAttrs).toBe('GLIDEIN_Site AnnexName')
    const plain = {Owner: 'condoruser', Requirements: {expr: 'true'}}
    expect(applyTransform(body, plain, c)).toBe(plain)
  })

  it('with --exclusive, keeps jobs that name no annex on the pool\'s own machines', () => {
    const c = apConfig([['00-pool.config', POOL_AP], ['50-hpc-annex.config', metaknob(true)]])
    expect(c.value('ANNEX_JOBS_EXCLUSIVELY')).toBe('true')
    expect(c.value('JOB_TRANSFORM_NAMES')).toBe('SiteDefaults AssignAnnex AnnexJobsExclusively')
    const body = c.raw('JOB_TRANSFORM_AnnexJobsExclusively')!
    const plain = applyTransform(body, {Owner: 'u', Requirements: {expr: 'Memory > 1'}}, c)
    expect((plain.Requirements as {expr: string}).expr).toBe('(TARGET.AuthenticatedIdentity is undefined || regexp("^condor(_pool)?@", TARGET.AuthenticatedIdentity)) && (Memory > 1)')
    const annexJob = {Owner: 'u', TargetAnnexName: 'demo', Requirements: {expr: 'true'}}
    expect(applyTransform(body, annexJob, c)).toBe(annexJob)
  })

  it('turns the exclusive transform on when the admin set ANNEX_JOBS_EXCLUSIVELY in an earlier file', () => {
    const c = apConfig([['00-pool.config', `${POOL_AP}\nANNEX_JOBS_EXCLUSIVELY = True\n`], ['50-hpc-annex.config', metaknob()]])
    expect(c.value('JOB_TRANSFORM_NAMES')).toBe('SiteDefaults AssignAnnex AnnexJobsExclusively')
  })

  it('--prefer-builtin is the one use line, with the exclusive knob set before it', () => {
    const plain = apConfig([['50-hpc-annex.config', renderBuiltinUse({exclusive: false})]])
    expect(plain.uses.map((u) => [u.category, u.names])).toEqual([['FEATURE', ['HPC_ANNEX']]])
    expect(plain.definitions).toEqual([])
    const exclusive = apConfig([['50-hpc-annex.config', renderBuiltinUse({exclusive: true})]])
    expect(exclusive.definitions.map((d) => [d.name, d.raw])).toEqual([['ANNEX_JOBS_EXCLUSIVELY', 'true']])
    const line = (where: string) => Number(where.split(':').at(-1))
    expect(line(exclusive.definitions[0]!.where)).toBeLessThan(line(exclusive.uses[0]!.where))
  })
})
