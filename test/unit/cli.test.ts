import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

// Runs the built CLI (npm test builds first) as a user would.
const bin = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
let tripwire: string

function cli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string, cwd?: string) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    input,
    cwd,
    env: {...process.env, PATH: `${tripwire}:${process.env.PATH}`, HPC_ANNEX_MACHINES: '', ...env},
  })
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

beforeAll(() => {
  // condor_* tools that record being run: a dry run must run none of them.
  tripwire = mkdtempSync(join(tmpdir(), 'hpc-annex-tripwire-'))
  for (const tool of ['condor_config_val', 'condor_submit', 'condor_q', 'condor_status', 'condor_token_fetch', 'ssh']) {
    writeFileSync(join(tripwire, tool), `#!/bin/sh\necho "$0" >> "${tripwire}/ran"\nexit 1\n`)
    chmodSync(join(tripwire, tool), 0o755)
  }
})

function unshareWorks(): boolean {
  return spawnSync('unshare', ['-n', 'true']).status === 0
}

describe('hpc-annex create --dry-run', () => {
  it('prints the plan, exits 0, and runs no HTCondor tool and no ssh', () => {
    const {status, stdout} = cli(['create', 'example', 'wholenode@anvil', '--nodes', '2', '--dry-run'])
    expect(status).toBe(0)
    expect(stdout).toContain("This will request 2 nodes for 1.00 hours for an annex named 'example' from the queue 'wholenode' on the system 'Anvil' (as the default project).")
    expect(stdout).toContain('To change the project, use --project.')
    expect(stdout).toContain('sbatch -p wholenode --nodes=2 --time=60')
    expect(existsSync(join(tripwire, 'ran'))).toBe(false)
  })

  it('works with no network at all', () => {
    if (!unshareWorks()) {
      if (process.env.CI) throw new Error('unshare -n is needed for this test under CI (run as root)')
      return
    }
    const result = spawnSync('unshare', ['-n', process.execPath, bin, 'create', 'example', 'gpu@expanse', '--project', 'abc123', '--nodes', '2', '--dry-run'], {encoding: 'utf8'})
    expect(result.status).toBe(0)
    expect(result.stdout).toContain('--gpus=8')
    expect(result.stdout).toContain('--mem=375808M')
  })

  it('--json prints what would be asked for, with the batch request the text shows', () => {
    const {status, stdout} = cli(['create', 'example', 'regular@perlmutter', '--project', 'm1', '--gpus', '4', '--dry-run', '--json'])
    expect(status).toBe(0)
    const plan = JSON.parse(stdout)
    expect(plan).toMatchObject({dryRun: true, annexName: 'example', constraint: 'gpu', gpus: {flag: '--gpus-per-task', value: '4'}})
    expect(plan.batchRequest).toBe('sbatch -q regular --nodes=1 --gpus-per-task=4 --constraint=gpu --time=60 --account=m1')
  })

  it('an invalid request exits 1 with one line naming the flag', () => {
    const {status, stdout, stderr} = cli(['create', 'example', 'shared@expanse'])
    expect(status).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/^Error: .*--cpus.*--mem_mb.*\n$/)
    expect(stderr.trim().split('\n')).toHaveLength(1)
  })

  it.each([
    [['create', 'example', 'wholenode@anvil', '--nodes', 'abc'], /--nodes must be a positive whole number/],
    [['create', 'example', 'wholenode@anvil', '--bogus'], /Unknown flag --bogus for hpc-annex create/],
    [['create', 'example'], /hpc-annex create needs TARGET/],
    [['create', 'bad name', 'wholenode@anvil'], /annex name/],
    [['create', 'x', 'anvil'], /QUEUE@SYSTEM.*default: wholenode/],
  ])('%j exits 1 with one line, no stack trace', (args, pattern) => {
    const {status, stderr} = cli(args)
    expect(status).toBe(1)
    expect(stderr).toMatch(pattern)
    expect(stderr).toMatch(/^Error: [^\n]*\n$/)
  })

  it('accepts the HTCondor spellings of the flags and their aliases', () => {
    const {status, stdout} = cli(['create', 'x', 'shared@anvil', '--cpus', '4', '--mem_mb', '8192', '--startd-noclaim-shutdown', '600',
      '--login', 'alice', '--host', 'login04.anvil.rcac.purdue.edu', '--owners', 'alice,bob', '--lifetime', '7200', '--dry-run', '--json'])
    expect(status).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({idleTimeSeconds: 600, login: {user: 'alice', host: 'login04.anvil.rcac.purdue.edu'}, owners: ['alice', 'bob'], lifetimeSeconds: 7200, cpus: 4, memMb: 8192})
  })
})

describe('hpc-annex systems', () => {
  it('lists every system with its queues and limits', () => {
    const {status, stdout} = cli(['systems'])
    expect(status).toBe(0)
    for (const name of ['Anvil', 'Bridges-2', 'Delta', 'Expanse', 'PATh Facility', 'Perlmutter', 'Spark']) expect(stdout).toContain(name)
    expect(stdout).toMatch(/wholenode \*\s+whole node\s+16\s+96 h\s+128\s+256000/)
  })

  it('shows one system, and --json for scripts', () => {
    const one = cli(['systems', 'Bridges-2'])
    expect(one.stdout).toContain('GPU — v100-32, all 16 GPUs: at most 1 node, 48 cores, 1572864 MB, 16 GPUs')
    expect(one.stdout).not.toContain('Anvil')
    const json = JSON.parse(cli(['systems', 'expanse', '--json']).stdout)
    expect(json.systems[0].queues.find((q: {name: string}) => q.name === 'gpu')).toMatchObject({gpuCountPer: 'job', gpusPerNode: 4, maxNodes: 4})
    expect(cli(['systems', 'nowhere']).status).toBe(1)
  })

  it('never takes a left-off argument from piped stdin', () => {
    const {status, stdout} = cli(['systems'], {}, 'nowhere\n')
    expect(status).toBe(0)
    expect(stdout).toContain('Anvil')
    expect(stdout).toContain('Spark')
  })
})

describe('a machine file in $HPC_ANNEX_MACHINES', () => {
  it('adds a system that systems lists and create --dry-run accepts, with no code change', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-site-'))
    writeFileSync(join(dir, 'minihpc.toml'), readFileSync(join(import.meta.dirname, '..', '..', 'backends', 'spark.toml'), 'utf8')
      .replace('name = "Spark"', 'name = "Mini HPC"').replace('spark-login.chtc.wisc.edu', 'login.mini.example.org'))
    writeFileSync(join(dir, 'broken.toml'), 'name = "x"\nqueues = 3\n')
    const env = {HPC_ANNEX_MACHINES: dir}
    const listed = cli(['systems'], env)
    expect(listed.stdout).toContain('Mini HPC (minihpc) — login login.mini.example.org')
    expect(listed.stderr).toMatch(/broken\.toml/)
    const created = cli(['create', 'x', 'int@minihpc', '--cpus', '16', '--dry-run'], env)
    expect(created.status).toBe(0)
    expect(created.stdout).toContain("from the queue 'int' on the system 'Mini HPC'")
  })
})

describe('machine files another user could have written', () => {
  const anvil = readFileSync(join(import.meta.dirname, '..', '..', 'backends', 'anvil.toml'), 'utf8')
  const planted = `shell_fragment = 'touch ~/PWNED'\n${anvil.replace('name = "Anvil"', 'name = "Planted Anvil"')}`

  it('a relative $HPC_ANNEX_MACHINES entry is refused, not read from the current directory: one line, exit 1', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'hpc-annex-cwd-'))
    mkdirSync(join(cwd, 'machines'))
    writeFileSync(join(cwd, 'machines', 'anvil.toml'), planted)
    for (const args of [['create', 'x', 'wholenode@anvil', '--dry-run'], ['systems']]) {
      const run = cli(args, {HPC_ANNEX_MACHINES: 'machines'}, undefined, cwd)
      expect(run.status, args.join(' ')).toBe(1)
      expect(run.stderr.trim()).toBe("Error: $HPC_ANNEX_MACHINES lists 'machines', which is not an absolute path; machine files are read only from absolute directories.")
      expect(run.stdout).not.toContain('Planted')
    }
  })

  it('a group-writable file is refused by name: systems warns and lists the others, a request for its system exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-site-'))
    writeFileSync(join(dir, 'anvil.toml'), planted)
    chmodSync(join(dir, 'anvil.toml'), 0o664)
    const file = join(dir, 'anvil.toml')
    const listed = cli(['systems'], {HPC_ANNEX_MACHINES: dir})
    expect(listed.status).toBe(0)
    // oclif wraps a warning to the terminal's width.
    // eslint-disable-next-line no-control-regex -- oclif's colours
    const warning = listed.stderr.replace(/\u001b\[\d+m/g, '').replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')
    expect(warning).toContain(`skipped an untrusted machine file: ${file}: not trusted: it is writable by its group (chmod go-w ${file})`)
    expect(listed.stdout).toContain('Anvil (anvil)')
    expect(listed.stdout).toContain('Spark (spark)')
    expect(listed.stdout).not.toContain('Planted')
    const created = cli(['create', 'x', 'wholenode@anvil', '--dry-run'], {HPC_ANNEX_MACHINES: dir})
    expect(created.status).toBe(1)
    expect(created.stderr.trim()).toBe(`Error: Refusing the machine file for 'anvil': ${file}: not trusted: it is writable by its group (chmod go-w ${file}).`)
    expect(cli(['create', 'x', 'int@spark', '--cpus', '16', '--dry-run'], {HPC_ANNEX_MACHINES: dir}).status).toBe(0)
  })
})

describe('hpc-annex --help', () => {
  it('lists the verbs', () => {
    const out = execFileSync(process.execPath, [bin, '--help'], {encoding: 'utf8'})
    expect(out).toMatch(/create/)
    expect(out).toMatch(/systems/)
  })
})
