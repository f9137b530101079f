import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {matchRequests, planKey, sharedTransport} from '../../src/annex/apply.js'
import {parseRequestFile} from '../../src/catalog/request-file.js'
import type {Transport} from '../../src/ssh/transport.js'
import {expectContract} from '../fixtures/json-contract.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {runCli} from './helpers/cli.js'
import {planFor} from './render-helpers.js'
import {refusal} from './helpers/refusal.js'

const toml = `# two stages of a DAG
name = "dag"
owners = ["alice", "bob"]

[[requests]]
target = "wholenode@anvil"
nodes = 2
lifetime = 7200
batch_options = {reservation = "r1", exclusive = true}

[[requests]]
target = "shared@anvil"
cpus = 8
mem_mb = 16384
idle_time = 600
batch_options = ["comment=stage 2"]
`

describe('a request file', () => {
  it('gives each request as create\'s flags would, with its line', () => {
    const file = parseRequestFile('/x/annex.toml', toml)
    expect(file.name).toBe('dag')
    expect(file.requests).toEqual([
      {index: 0, line: 5, input: {name: 'dag', target: 'wholenode@anvil', nodes: '2', lifetime: '7200', owners: 'alice,bob', batchOptions: ['reservation=r1', 'exclusive']}},
      {index: 1, line: 11, input: {name: 'dag', target: 'shared@anvil', cpus: '8', memMb: '16384', idleTime: '600', owners: 'alice,bob', batchOptions: ['comment=stage 2']}},
    ])
  })

  it('is JSON when it ends in .json, with the same schema and lines', () => {
    const json = JSON.stringify({name: 'dag', requests: [{target: 'wholenode@anvil', nodes: 2}, {target: 'shared@anvil', cpus: 8}]}, null, 2)
    const file = parseRequestFile('/x/annex.json', json)
    expect(file.requests.map((r) => [r.line, r.input.target])).toEqual([
      [4, 'wholenode@anvil'],
      [8, 'shared@anvil'],
    ])
    const wrong = json.replace('"nodes": 2', '"nodes": "two"')
    expect(refusal(() => parseRequestFile('/x/annex.json', wrong))).toMatch(/^\/x\/annex\.json:6: requests\.0\.nodes: Expected number, received string; fix the file\.$/)
    expect(refusal(() => parseRequestFile('/x/annex.json', '{\n  "name": "dag",\n}\n'))).toMatch(/^\/x\/annex\.json:3: invalid JSON: /)
  })

  it.each([
    ['a TOML syntax error', toml.replace('nodes = 2', 'nodes = '), /^\/x\/a\.toml:7: invalid TOML: /],
    ['an unknown key', toml.replace('nodes = 2', 'node = 2'), /^\/x\/a\.toml:7: requests\.0\.node: unknown key 'node' \(keys: .*\); fix the file\.$/],
    ['a wrong type', toml.replace('cpus = 8', 'cpus = "8"'), /^\/x\/a\.toml:13: requests\.1\.cpus: Expected number, received string/],
    ['no requests', 'name = "dag"\n', /^\/x\/a\.toml: requests: is required/],
    ['no name', toml.replace('name = "dag"\n', ''), /^\/x\/a\.toml: name: is required/],
    ['a bad annex name', toml.replace('name = "dag"', 'name = "my dag"'), /^\/x\/a\.toml:2: name: The annex name 'my dag' is not allowed/],
  ])('refuses %s at its file:line', (_what, text, message) => {
    expect(refusal(() => parseRequestFile('/x/a.toml', text))).toMatch(message)
  })
})

describe('hpc-annex apply (the fake condor tools)', {timeout: 120_000}, () => {
  let fake: FakeCondor
  let dir: string
  beforeEach(() => {
    fake = createFakeCondor()
    dir = mkdtempSync(join(tmpdir(), 'hpc-annex-apply-'))
  })
  afterEach(() => fake.cleanup())
  const apply = (text: string, args: string[] = [], name = 'annex.toml') => {
    const file = join(dir, name)
    writeFileSync(file, text)
    return {file, ...runCli(['apply', file, ...args], {...fake.env, HOME: fake.dir})}
  }

  it('refuses a request the catalog refuses, at its file:line, naming the file\'s key; nothing is made', () => {
    const run = apply(toml.replace('nodes = 2', 'nodes = 99').replace('"r1"', '"r1", time = "5"'))
    expect(run.status).toBe(1)
    expect(run.stderr).toMatch(/^Error: .*annex\.toml:5: requests\.0: The 'wholenode' queue is limited to 16 nodes per job; change nodes\.$/m)
    const managed = apply(toml.replace('"r1"', '"r1", time = "5"'))
    expect(managed.stderr).toMatch(/annex\.toml:5: requests\.0: batch_options 'time=5' is refused: hpc-annex sets --time itself; use lifetime\./)
    expect(fake.state().jobs).toEqual([])
  })

  it('--dry-run: what exists (a live request asking for the same) and what would be made, in the file\'s order', () => {
    // The annex has the second request already (as its state job records it), and a removed one like the first.
    fake.addJob({hpc_annex_name: 'dag', hpc_annex_system: 'anvil', hpc_annex_queue_name: 'shared', hpc_annex_nodes: '1', hpc_annex_lifetime: '3600', hpc_annex_cpus: '8', hpc_annex_mem_mb: '16384', hpc_annex_JOB_ID: '77', JobStatus: 1})
    fake.addJob({hpc_annex_name: 'dag', hpc_annex_system: 'anvil', hpc_annex_queue_name: 'wholenode', hpc_annex_nodes: '2', hpc_annex_lifetime: '7200', JobStatus: 3})
    const run = apply(toml, ['--dry-run', '--json'])
    expect(run.status, run.stderr).toBe(0)
    const out = expectContract('apply', run.stdout) as {requests: {outcome: string; line: number; batchJobId?: string; batchRequest: string}[]; logins: number; dryRun: boolean}
    expect(out.dryRun).toBe(true)
    expect(out.logins).toBe(0)
    expect(out.requests.map((r) => [r.line, r.outcome])).toEqual([
      [5, 'would-add'],
      [11, 'exists'],
    ])
    expect(out.requests[0]!.batchRequest).toBe('sbatch -p wholenode --nodes=2 --time=120 --reservation=r1 --exclusive')
    expect(out.requests[1]!.batchJobId).toBe('77')
    // Nothing: no state job was submitted.
    expect(fake.state().jobs).toHaveLength(2)
    const text = apply(toml, ['--dry-run'])
    expect(text.stdout).toMatch(/annex\.toml:11: shared@anvil: exists as request .* \(state job \d+\.0\)\./)
    expect(text.stdout).toMatch(/annex\.toml:5: wholenode@anvil: would add: sbatch -p wholenode/)
    expect(text.stdout).toMatch(/1 request of .* already there, 1 would be made \(--dry-run\)\./)
  })

  it('--dry-run on an annex with no live request: the first would be created, the others added', () => {
    const out = JSON.parse(apply(toml, ['--dry-run', '--json']).stdout) as {requests: {outcome: string}[]}
    expect(out.requests.map((r) => r.outcome)).toEqual(['would-create', 'would-add'])
  })
})

describe('apply\'s pieces', () => {
  it('matches each planned request to one live request of the same key; a repeated request needs as many', () => {
    const one = planFor({target: 'wholenode@anvil', nodes: '2'})
    const other = planFor({target: 'wholenode@anvil', nodes: '3'})
    const live = [
      {requestId: 'r1', stateJobId: '1.0', key: planKey(one)},
      {requestId: 'r9', stateJobId: '9.0', key: planKey(planFor({target: 'shared@anvil', cpus: '2'}))},
    ]
    const matched = matchRequests([{plan: one}, {plan: one}, {plan: other}], live)
    expect(matched.map((m) => m.existing?.requestId)).toEqual(['r1', undefined, undefined])
  })

  it('shares one login: the first connect logs in, later ones reuse it, close waits for release', async () => {
    const calls: string[] = []
    const inner: Transport = {
      connect: async () => void calls.push('connect'),
      exec: async (command) => (calls.push(`exec ${command}`), {code: 0, stdout: '', stderr: ''}),
      close: async () => void calls.push('close'),
    }
    const shared = sharedTransport(inner)
    const interaction = {answer: async () => []}
    await shared.connect({host: 'h'}, interaction)
    await shared.exec('one')
    await shared.close()
    await shared.connect({host: 'h'}, interaction)
    await shared.exec('two')
    await shared.close()
    expect(calls).toEqual(['connect', 'exec one', 'exec two'])
    expect(shared.connections()).toBe(1)
    await shared.release()
    expect(calls.at(-1)).toBe('close')
  })
})
