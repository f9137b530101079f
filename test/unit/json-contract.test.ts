/**
 * The --json contract: one schema per verb (src/cli/json/schemas.ts),
 * published in docs/json/ and by `hpc-annex schema VERB`, and every verb's
 * real output follows it: the built CLI against the fake condor tools here;
 * logs, cache and a real create through their use cases in logs-cancel,
 * cache and create-flow; the CLI against a real login node in the
 * integration tests.
 */
import {chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {jsonSchema, PUBLISHED_SCHEMAS, schemaFileName} from '../../src/cli/json/schemas.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {expectContract} from '../fixtures/json-contract.js'
import {runCli} from './helpers/cli.js'

const docs = join(import.meta.dirname, '..', '..', 'docs', 'json')

describe('the published schemas', () => {
  it('docs/json holds each, exactly as the schemas make it (npm run schemas writes them)', () => {
    expect(readdirSync(docs).sort()).toEqual(PUBLISHED_SCHEMAS.map(schemaFileName).sort())
    for (const name of PUBLISHED_SCHEMAS) {
      expect(JSON.parse(readFileSync(join(docs, schemaFileName(name)), 'utf8')), name).toEqual(jsonSchema(name))
    }
  })

  it('hpc-annex schema VERB prints the same', () => {
    for (const [args, name] of [[['create'], 'create'], [['admin', 'check'], 'admin check'], [['admin-metaknob'], 'admin metaknob'], [['error'], 'error']] as const) {
      const {status, stdout} = runCli(['schema', ...args])
      expect(status, args.join(' ')).toBe(0)
      expect(JSON.parse(stdout)).toEqual(jsonSchema(name))
    }
    expect(runCli(['schema', 'nope'])).toMatchObject({status: 1, stderr: expect.stringMatching(/^Error: No --json output is called 'nope'; give one of: create, add, /)})
  })

  it('name quantities by their unit, and keep every object closed', () => {
    const text = readdirSync(docs).map((file) => readFileSync(join(docs, file), 'utf8')).join('\n')
    for (const unitless of ['"maxDuration"', '"ramPerNode"', '"lifetime"', '"idleTime"', '"bytesSent"', '"submittedAt"', '"memoryChunkMb"', '"fanOut"', '"shellFragment"']) {
      expect(text).not.toContain(`${unitless}:`)
    }
    for (const name of PUBLISHED_SCHEMAS) expect(JSON.stringify(jsonSchema(name))).not.toContain('"additionalProperties":{}')
  })
})

describe("every verb's --json output follows its schema (the fake condor tools)", {timeout: 120_000}, () => {
  let fake: FakeCondor
  const env = () => ({...fake.env, HOME: fake.dir})
  const json = (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const result = runCli([...args, '--json'], {...env(), ...extra})
    return {...result, output: result.stdout}
  }

  beforeEach(() => {
    fake = createFakeCondor({config: {JOB_TRANSFORM_NAMES: 'AssignAnnex', JOB_TRANSFORM_AssignAnnex: 'REQUIREMENTS defined MY.TargetAnnexName'}})
    const me = `${fake.user}@vm`
    const now = Math.floor(Date.now() / 1000)
    const request = fake.addJob({hpc_annex_name: 'alpha', hpc_annex_system: 'anvil', hpc_annex_collector: fake.state().config.ANNEX_COLLECTOR!, hpc_annex_nodes: '2', hpc_annex_lifetime: '7200', hpc_annex_PID: '11', hpc_annex_PILOT_DIR: '/p', hpc_annex_JOB_ID: '101', hpc_annex_start_time: now - 600, JobStatus: 1})
    fake.addJob({hpc_annex_name: 'alpha', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_JOB_ID: '102', JobStatus: 2, QDate: now - 900})
    fake.addJob({TargetAnnexName: 'alpha', JobStatus: 2})
    fake.advertise([
      {MyType: 'Machine', IsAnnex: true, AuthenticatedIdentity: me, Name: 'slot1@n1', Machine: 'n1', AnnexName: 'alpha', hpc_annex_request_id: request.GlobalJobID, PartitionableSlot: true, TotalSlotCpus: 16, ChildCpus: [4], DaemonStartTime: now - 600},
      {MyType: 'DaemonMaster', Name: 'n1', Machine: 'n1', AnnexName: 'alpha', hpc_annex_request_id: request.GlobalJobID, AuthenticatedIdentity: me},
      {MyType: 'Scheduler', Name: 'ap@vm', MyAddress: '<192.0.2.2:9618?sock=schedd_1_a>'},
    ])
  })
  afterEach(() => fake.cleanup())

  it('systems: all, one, and with a skipped machine file', () => {
    const all = expectContract('systems', json(['systems']).output) as {systems: {key: string; queues: {cpusMultipleOf?: number; memMbFlag: string; name: string}[]}[]}
    expect(all.systems.map((s) => s.key)).toContain('perlmutter')
    // What `notes` says in words, a field says for scripts.
    expect(all.systems.find((s) => s.key === 'bridges2')!.queues.find((q) => q.name === 'EM')).toMatchObject({cpusMultipleOf: 24, memMbFlag: 'forbidden'})
    expectContract('systems', json(['systems', 'bridges2']).output)
    const machines = mkdtempSync(join(tmpdir(), 'hpc-annex-machines-'))
    writeFileSync(join(machines, 'broken.toml'), 'name = \n')
    const warned = expectContract('systems', json(['systems'], {HPC_ANNEX_MACHINES: machines}).output)
    expect(warned.warnings).toEqual([expect.stringMatching(/^skipped an invalid machine file: .*broken\.toml:1: invalid TOML/)])
  })

  it('create and add --dry-run: what would be asked for, on every kind of queue and batch system', () => {
    for (const args of [
      ['create', 'x', 'wholenode@anvil', '--nodes', '2'],
      ['create', 'x', 'regular@perlmutter', '--project', 'm1', '--gpus', '4'],
      ['create', 'x', 'EM@bridges2', '--cpus', '48', '--project', 'abc'],
      ['create', 'x', 'GPU@bridges2', '--gpus', 'v100-32:16', '--project', 'abc'],
      ['create', 'x', 'shared@expanse', '--cpus', '4', '--mem_mb', '8192', '--project', 'abc123'],
      ['create', 'x', 'cpu@path-facility', '--cpus', '4'],
      ['add', 'x', 'wholenode@anvil', '--login', 'alice', '--owners', 'alice,bob', '--pool', 'cm.example.org:9618', '--tmp_dir', '/tmp/x'],
    ]) {
      const {status, output} = json([...args, '--dry-run'])
      expect(status, args.join(' ')).toBe(0)
      const plan = expectContract('create', output)
      expect(plan).toMatchObject({dryRun: true, verb: args[0], batchRequest: expect.any(String)})
      // Nothing internal: the batch system's quirks and the machine file's fragments stay out.
      for (const internal of ['memoryChunkMb', 'fanOut', 'shellFragment', 'configFragment', 'pilotDirFragment', 'scratch', 'queueArgument']) expect(plan).not.toHaveProperty(internal)
    }
  })

  it('status: every annex, and one', () => {
    const all = expectContract('status', json(['status']).output) as {annexes: {annexName: string; requestList: {submittedEpochSeconds?: number}[]}[]}
    expect(all.annexes.map((a) => a.annexName)).toEqual(['alpha'])
    expect(all.annexes[0]!.requestList.some((r) => r.submittedEpochSeconds !== undefined)).toBe(true)
    expectContract('status', json(['status', 'alpha']).output)
    expectContract('status', json(['status', 'nothing-here']).output)
  })

  it('shutdown, submit, admin check, admin metaknob, and the state job\'s mark-started', () => {
    writeFileSync(fake.state().config.ANNEX_PASSWORD_FILE!, 'secret', {mode: 0o400})
    const shutdown = expectContract('shutdown', json(['shutdown', 'alpha']).output)
    expect(shutdown).toMatchObject({found: 1, told: ['n1']})
    const file = join(fake.dir, 'job.sub')
    writeFileSync(file, 'executable = /bin/true\nqueue\n')
    expectContract('submit', json(['submit', file, '--annex-name', 'alpha']).output)
    expectContract('admin check', json(['admin', 'check']).output)
    expectContract('admin metaknob', json(['admin', 'metaknob']).output)
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-config.d-'))
    chmodSync(dir, 0o755)
    expectContract('admin metaknob', json(['admin', 'metaknob', '--install', dir]).output)
    for (const job of fake.state().jobs.filter((j) => j.hpc_annex_name === 'alpha')) {
      const marked = json(['internal', 'mark-started', `${String(job.ClusterId)}.0`], {})
      if (job.hpc_annex_collector === undefined) expectContract('error', marked.output)
      else expect(expectContract('internal mark-started', marked.output)).toMatchObject({marked: false, startEpochSeconds: expect.any(Number)})
    }
  })

  it('a failure, of any verb: the error object', () => {
    for (const args of [['status', 'bad name'], ['systems', 'nowhere'], ['create', 'x', 'nowhere@anvil'], ['shutdown']]) {
      const {status, output} = json(args)
      expect(status, args.join(' ')).toBe(1)
      expectContract('error', output)
    }
    fake.update((s: {config: Record<string, string>}) => {
      s.config.HPC_ANNEX_ENABLED = 'false'
    })
    const refused = json(['status'])
    expect(refused.status).toBe(2)
    expect(expectContract('error', refused.output)).toMatchObject({error: {exitCode: 2, hint: expect.any(String)}})
  })
})
