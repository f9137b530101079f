import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {classadString} from '../../src/quote.js'
import {createFakeCondor, type Ad, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

// The fake condor tools, run against the outputs recorded from real HTCondor
// 25.14 (test/fixtures/condor-samples.md, a copy of the project's reference):
// if the fake drifts from those formats, these tests fail.
const samples = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'condor-samples.md'), 'utf8')
const blocks = [...samples.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!)

function block(start: string): string {
  const found = blocks.find((b) => b.startsWith(start))
  if (found === undefined) throw new Error(`no sample block starts with ${start}`)
  return found
}

/** A `$ command` block: the command (continuation lines joined) and the output after it. */
function commandBlock(start: string): {command: string; output: string} {
  const text = block(start)
  const lines = text.split('\n')
  let i = 0
  let command = ''
  for (;;) {
    const line = lines[i++]!.replace(/^\$ /, '')
    if (line.endsWith('\\')) command += `${line.slice(0, -1)} `
    else {
      command += line
      break
    }
  }
  return {command, output: lines.slice(i).join('\n')}
}

let fake: FakeCondor
let home: string

function sh(command: string, env: Record<string, string> = {}) {
  const result = spawnSync('bash', ['-c', command], {encoding: 'utf8', env: {...process.env, ...fake.env, HOME: home, ...env}})
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

/** Old ClassAd text for condor_advertise. */
function oldAd(ad: Ad): string {
  return Object.entries(ad)
    .map(([k, v]) => `${k} = ${typeof v === 'string' ? classadString(v) : Array.isArray(v) ? `{${v.join(', ')}}` : String(v)}`)
    .join('\n')
}

beforeEach(() => {
  fake = createFakeCondor({nextCluster: 17, config: {ANNEX_TOKEN_KEY_NAME: 'AP'}})
  home = join(fake.dir, 'home')
  mkdirSync(home)
})
afterEach(() => fake.cleanup())

describe('the fake condor tools against recorded real output', () => {
  it('condor_config_val prints one value per line in the order asked', () => {
    const {command, output} = commandBlock('$ condor_config_val ANNEX_COLLECTOR')
    const result = sh(command)
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(output)
  })

  it('condor_config_val says "Not defined: NAME" on stderr and exits 1', () => {
    expect(samples).toContain('`Not defined: NAME` on stderr and exit 1')
    const result = sh('condor_config_val NO_SUCH_KNOB')
    expect(result).toMatchObject({status: 1, stdout: '', stderr: 'Not defined: NO_SUCH_KNOB\n'})
  })

  it('condor_submit prints the real text on stdout and stderr, and -terse its range', () => {
    const stdout = block('Submitting job(s).')
    const result = sh(`printf 'executable = /bin/true\\nqueue\\n' | condor_submit`)
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(stdout)
    const stderrLine = /stderr: `(To monitor[^`]*)`/.exec(samples)![1]!
    expect(result.stderr).toBe(`${stderrLine}\n`)
    const terse = /`condor_submit -terse` prints `([^`]*)`/.exec(samples)![1]!.replace(/17/g, '18')
    expect(sh(`printf 'executable = /bin/true\\nqueue\\n' | condor_submit -terse`).stdout).toBe(`${terse}\n`)
  })

  it('$(X) expands inside quotes too, and $(DOLLAR) keeps a literal $', () => {
    expect(samples).toContain('`$(hostname)` expands to\nnothing')
    sh(`printf '%s\\n' 'executable = /bin/true' '+a = "x$(hostname)y"' '+b = "$(DOLLAR)(HOME)"' queue | condor_submit`)
    const [job] = fake.state().jobs
    expect(job).toMatchObject({a: 'xy', b: '$(HOME)'})
  })

  it('condor_q -json prints the recorded ad: GlobalJobID, sorted names, /Expr(...)/', () => {
    const {command, output} = commandBlock('$ condor_q -json -attributes')
    const submit = [
      'universe = local', 'executable = /bin/true', 'jobbatchname = demo [HPC Annex]',
      '+hpc_annex_request_id = GlobalJobID', '+hpc_annex_name = "demo"', 'queue',
    ].join('\n')
    expect(sh(`condor_submit <<'EOF'\n${submit}\nEOF`, {FAKE_CONDOR_NOW: '1795320996'}).status).toBe(0)
    expect(sh(`condor_qedit 17.0 hpc_annex_JOB_ID '"123"'`).stdout).toBe(block('$ condor_qedit').split('\n')[1] + '\n')
    fake.update((s) => {
      s.jobs[0]!.JobStatus = 2
    })
    const result = sh(command)
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(output)
  })

  it('condor_q -json prints NOTHING when no job matches', () => {
    expect(samples).toContain('with no matching job it prints NOTHING')
    const result = sh(`condor_q -json -constraint 'hpc_annex_name == "none"'`)
    expect(result).toMatchObject({status: 0, stdout: '', stderr: ''})
  })

  it('condor_rm prints "Job N.0 marked for removal"', () => {
    const line = /`condor_rm 3\.0` prints `([^`]*)`/.exec(samples)![1]!
    fake.update((s) => {
      s.nextCluster = 3
    })
    sh(`printf 'executable = /bin/true\\nqueue\\n' | condor_submit`)
    expect(sh('condor_rm 3.0').stdout).toBe(`${line}\n`)
    expect(fake.state().jobs).toHaveLength(0)
  })

  it('condor_token_fetch prints nothing and writes a 0600 token file named after -token', () => {
    const {command} = commandBlock('$ condor_token_fetch')
    const result = sh(command)
    expect(result).toMatchObject({status: 0, stdout: '', stderr: ''})
    const file = join(fake.state().config.SEC_TOKEN_DIRECTORY!, 'test.condoruser@vm')
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const usage = /Usage line: `([^`]*)`/.exec(samples)![1]!.replace(/\s+/g, ' ')
    expect(sh('condor_token_fetch -bogus').stderr).toContain(usage)
  })

  it('condor_status -json returns the recorded slot and master ads, advertised with condor_advertise', () => {
    const slot = JSON.parse(block('{"Activity":"Idle"')) as Ad
    const master = JSON.parse(block('{"MyType":"DaemonMaster"')) as Ad
    writeFileSync(join(fake.dir, 'slot.ad'), oldAd(slot))
    writeFileSync(join(fake.dir, 'master.ad'), oldAd(master))
    const pool = 'vm:9618?sock=ap_collector'
    expect(sh(`condor_advertise -pool '${pool}' UPDATE_STARTD_AD ${fake.dir}/slot.ad`).status).toBe(0)
    expect(sh(`condor_advertise -pool '${pool}' UPDATE_MASTER_AD ${fake.dir}/master.ad`).status).toBe(0)
    const slots = sh(`condor_status -json -pool '${pool}' -attributes ${Object.keys(slot).join(',')}`)
    expect(JSON.parse(slots.stdout)).toEqual([slot])
    const masters = sh(`condor_status -json -pool '${pool}' -master -attributes ${Object.keys(master).join(',')}`)
    expect(JSON.parse(masters.stdout)).toEqual([master])
  })

  it('condor_status -schedd -af Name MyAddress prints the recorded line', () => {
    const line = /Schedd ad \(`-schedd -af Name MyAddress`\): `([^`]*)`/.exec(samples)![1]!
    const [name, address] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)]
    fake.advertise({MyType: 'Scheduler', Name: name, MyAddress: address})
    expect(sh(`condor_status -pool 'vm:9618?sock=ap_collector' -schedd -af Name MyAddress`).stdout).toBe(`${line}\n`)
  })

  it('condor_off -fast -annex-name prints the recorded line per master, with the password file in its environment', () => {
    const {command} = commandBlock('_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS')
    const line = /prints `(Sent "Kill-Daemon-Fast"[^`]*)`/.exec(samples)![1]!
    fake.advertise([
      {MyType: 'DaemonMaster', Name: 'node3', AnnexName: 'demo', IsAnnex: true},
      {MyType: 'Machine', Name: 'slot1@node3', AnnexName: 'demo', IsAnnex: true},
    ])
    mkdirSync(join(home, '.condor'))
    writeFileSync(join(home, '.condor', 'annex_password_file'), 'x', {mode: 0o400})
    const result = sh(command)
    expect(result).toMatchObject({status: 0, stdout: `${line}\n`})
    expect(fake.state().collectors['vm:9618?sock=ap_collector']).toEqual([])
    // Without the annex password the pilots would refuse the command.
    fake.advertise({MyType: 'DaemonMaster', Name: 'node3', AnnexName: 'demo'})
    expect(sh("condor_off -fast -annex-name demo -pool 'vm:9618?sock=ap_collector'").status).toBe(1)
  })

  it('use feature:HPC_ANNEX prints the metaknob body where it exists, and "Not defined" with exit 0 where not, as HTCondor 25', () => {
    expect(sh('condor_config_val use feature:HPC_ANNEX')).toMatchObject({status: 0, stdout: 'use FEATURE:HPC_ANNEX is\n\tHPC_ANNEX_ENABLED = true\n'})
    fake.update((s) => {
      s.metaknob = null
    })
    expect(sh('condor_config_val use feature:HPC_ANNEX')).toMatchObject({status: 0, stdout: 'Not defined: use FEATURE:HPC_ANNEX\n', stderr: ''})
    expect(sh('condor_config_val use feature:nosuch')).toMatchObject({status: 0, stdout: 'Not defined: use FEATURE:NOSUCH\n'})
  })

  it('the fake tools are on PATH as the real names, executable', () => {
    for (const tool of ['condor_config_val', 'condor_submit', 'condor_q', 'condor_qedit', 'condor_rm', 'condor_status', 'condor_token_fetch', 'condor_off']) {
      expect(existsSync(join(fake.bin, tool))).toBe(true)
      expect(execFileSync('bash', ['-c', `command -v ${tool}`], {encoding: 'utf8', env: {...process.env, ...fake.env}}).trim()).toBe(join(fake.bin, tool))
    }
  })
})
