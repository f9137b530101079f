import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, writeFileSync, existsSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {evaluate, matches, UNDEFINED} from '../fixtures/fake-condor/lib/classad.mjs'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

let fake: FakeCondor
beforeEach(() => {
  fake = createFakeCondor()
})
afterEach(() => fake.cleanup())

function sh(command: string) {
  return spawnSync('bash', ['-c', command], {encoding: 'utf8', env: {...process.env, ...fake.env}})
}

describe('the fake\'s ClassAd constraints', () => {
  const ad = {Name: 'demo', N: 3, B: true, Expr: {$expr: 'N + 1'}, Nothing: null}
  it.each([
    ['name == "DEMO"', true],
    ['Name =?= "DEMO"', false],
    ['Name =?= "demo"', true],
    ['Missing == "x"', UNDEFINED],
    ['Missing =?= undefined', true],
    ['Nothing =?= undefined', true],
    ['Name =!= undefined', true],
    ['Name != "other" && N == 3', true],
    ['Missing == 1 && false', false],
    ['Missing == 1 || true', true],
    ['!(N == 3)', false],
    ['!Missing', UNDEFINED],
    ['(N > 2) && (Expr == 4)', true],
    ['MY.N == 3 && TARGET.N =?= undefined', true],
    ['Name is "demo" && N isnt 4', true],
  ])('%s → %s', (constraint, value) => {
    expect(evaluate(constraint, ad)).toBe(value)
  })

  it('only true matches', () => {
    expect(matches('Missing == 1', ad)).toBe(false)
    expect(() => matches('Name == "unterminated', ad)).toThrow()
  })

  it('condor_q refuses a constraint it cannot parse, as the real one does', () => {
    const result = sh(`condor_q -json -constraint 'Name == ('`)
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('Invalid constraint')
  })
})

describe('the fake\'s shared state', () => {
  it('concurrent condor_submit runs each get their own cluster', async () => {
    const runs = Array.from({length: 12}, () => new Promise<string>((resolve) => {
      const child = spawn('condor_submit', ['-terse', '-'], {env: {...process.env, ...fake.env}})
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      child.on('close', () => resolve(out))
      child.stdin.end('executable = /bin/true\nqueue\n')
    }))
    const outputs = await Promise.all(runs)
    const clusters = outputs.map((o) => Number(o.split('.')[0]))
    expect(new Set(clusters).size).toBe(12)
    expect(fake.state().jobs).toHaveLength(12)
  })

  it('a pilot can advertise with condor_advertise or by dropping an ad file; condor_off removes both', () => {
    const ad = 'MyType = "DaemonMaster"\nName = "node9"\nAnnexName = "drop"\nhpc_annex_request_id = "ap@vm#1.0#1"\n'
    writeFileSync(join(fake.dir, 'm.ad'), ad.replace('node9', 'node8'))
    expect(sh(`condor_advertise UPDATE_MASTER_AD ${fake.dir}/m.ad`).status).toBe(0)
    mkdirSync(join(fake.dir, 'ads.d'))
    writeFileSync(join(fake.dir, 'ads.d', 'node9.ad'), `${ad}\nMyType = "Machine"\nName = "slot1@node9"\nAnnexName = "drop"\nPartitionableSlot = true\nChildCpus = {1, 2}\n`)
    const masters = JSON.parse(sh(`condor_status -json -master -pool 'vm:9618?sock=ap_collector' -attributes Name`).stdout)
    expect(masters).toEqual([{Name: 'node8'}, {Name: 'node9'}])
    const slots = JSON.parse(sh(`condor_status -json -pool 'vm:9618?sock=ap_collector' -constraint 'AnnexName == "drop"' -attributes ChildCpus`).stdout)
    expect(slots).toEqual([{ChildCpus: [1, 2]}])
    writeFileSync(join(fake.dir, 'pw'), 'x')
    const off = sh(`_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=PASSWORD _CONDOR_SEC_PASSWORD_FILE=${fake.dir}/pw condor_off -fast -annex-name drop -pool 'vm:9618?sock=ap_collector'`)
    expect(off.stdout).toBe('Sent "Kill-Daemon-Fast" command for "master" to master node8\nSent "Kill-Daemon-Fast" command for "master" to master node9\n')
    expect(existsSync(join(fake.dir, 'ads.d', 'node9.ad'))).toBe(false)
    expect(sh(`condor_status -json -any -pool 'vm:9618?sock=ap_collector'`).stdout).toBe('')
  })

  it('FAKE_CONDOR_FAULT injects failures per tool', () => {
    const run = (fault: string, command: string) => spawnSync('bash', ['-c', command], {encoding: 'utf8', env: {...process.env, ...fake.env, FAKE_CONDOR_FAULT: fault}})
    expect(run('condor_q:fail=7', 'condor_q -json').status).toBe(7)
    expect(() => JSON.parse(run('condor_q:garbage', 'condor_q -json').stdout)).toThrow()
    expect(run('condor_status:fail', 'condor_q -json').status).toBe(0)
  })
})
