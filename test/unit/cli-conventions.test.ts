/**
 * What a user of `htcondor annex`, or of any modern CLI, types and expects:
 * HTCondor's spellings (-h, -V, --test), a mistyped verb answered with the
 * nearest one, oclif's own complaints said in hpc-annex's words, and help
 * that shows units.
 */
import {describe, expect, it} from 'vitest'

import {runCli} from './helpers/cli.js'

function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^Error: /)
  return lines[0]!.slice('Error: '.length)
}

describe("oclif's own errors, in hpc-annex's words: one line naming the flag and what to change, exit 1", () => {
  it.each([
    [['submit', 'job.sub'], '--annex-name is required: add --annex-name NAME (the annex the jobs will run on).'],
    [['create', 'x', 'wholenode@anvil', '--dry-run', '--bundle', 'f.tar'], '--bundle and --dry-run cannot be used together; drop one of them.'],
    [['create', 'x', 'wholenode@anvil', '--stall-timeout', '-3'], "--stall-timeout must be at least 5 seconds, not '-3'; change --stall-timeout."],
    [['create', 'x', 'wholenode@anvil', '--stall-timeout', 'soon'], "--stall-timeout must be a whole number of seconds, not 'soon'; change --stall-timeout."],
    [['create', 'x', 'wholenode@anvil', '--emit', '/tmp/x'], '--emit goes with --dry-run; add --dry-run, or drop --emit.'],
    [['admin', 'metaknob', '--force'], '--force goes with --install; add --install, or drop --force.'],
    [['create', 'x', 'wholenode@anvil', '--nodse', '2'], 'Unknown flag --nodse (did you mean --nodes?) for hpc-annex create; see hpc-annex create --help.'],
    [['create', 'x', 'wholenode@anvil', '--nodes'], '--nodes needs a value: --nodes N.'],
    [['create', 'x', 'wholenode@anvil', '--ssh', 'putty'], "--ssh 'putty' is not one of ssh2, openssh; change --ssh."],
    [['create', 'x'], 'hpc-annex create needs TARGET (where to get resources: QUEUE@SYSTEM, e.g. wholenode@anvil): hpc-annex create NAME TARGET.'],
    [['create', 'x', 'wholenode@anvil', 'extra'], "Unexpected argument 'extra': hpc-annex create takes NAME TARGET; quote a value that holds spaces, or see hpc-annex create --help."],
    [['status', '--interval', '1'], "--interval must be at least 2 seconds, not '1'; change --interval."],
    [['status', '--interval', 'soon'], "--interval must be a whole number of seconds, not 'soon'; change --interval."],
  ])('%j', (args, message) => {
    const {status, stdout, stderr} = runCli(args)
    expect(status).toBe(1)
    expect(stdout).toBe('')
    expect(oneErrorLine(stderr)).toBe(message)
  })

  it('under --json the same message is the error object', () => {
    const {status, stdout} = runCli(['create', 'x', 'wholenode@anvil', '--stall-timeout', '-3', '--json'])
    expect(status).toBe(1)
    expect(JSON.parse(stdout).error).toMatchObject({message: "--stall-timeout must be at least 5 seconds, not '-3'; change --stall-timeout.", exitCode: 1})
  })
})

describe('a mistyped verb', () => {
  it('names only the verb, suggests the nearest, and exits 1', () => {
    const {status, stdout, stderr} = runCli(['creat', 'x', 'wholenode@anvil', '--nodes', '2'])
    expect(status).toBe(1)
    expect(stdout).toBe('')
    expect(oneErrorLine(stderr)).toBe("hpc-annex has no verb 'creat'; did you mean 'create'? (hpc-annex --help lists them)")
  })

  it('under a topic, names the topic and the verb', () => {
    const {status, stderr} = runCli(['admin', 'chek'])
    expect(status).toBe(1)
    expect(oneErrorLine(stderr)).toBe("hpc-annex has no verb 'admin chek'; did you mean 'admin check'? (hpc-annex --help lists them)")
  })

  it('suggests nothing when nothing is near, and --json gets the error object', () => {
    expect(oneErrorLine(runCli(['frobnicate']).stderr)).toBe("hpc-annex has no verb 'frobnicate' (hpc-annex --help lists them)")
    const json = runCli(['statsu', '--json'])
    expect(json.status).toBe(1)
    expect(JSON.parse(json.stdout)).toEqual({error: {message: "hpc-annex has no verb 'statsu'; did you mean 'status'? (hpc-annex --help lists them)", exitCode: 1}, warnings: []})
  })
})

describe("HTCondor's spellings", () => {
  it('-h is --help, for the tool and for a verb', () => {
    const top = runCli(['-h'])
    expect(top.status).toBe(0)
    expect(top.stdout).toContain('create')
    const verb = runCli(['create', '-h'])
    expect(verb.status).toBe(0)
    expect(verb.stdout).toContain('USAGE')
    expect(verb.stdout).toContain('--nodes')
  })

  it.each(['-V', '-v', '--version'])('%s prints the version', (flag) => {
    const {status, stdout} = runCli([flag])
    expect(status).toBe(0)
    expect(stdout).toMatch(/^hpc-annex\/\d+\.\d+\.\d+ /)
  })

  it.each([{test: ['--test']}, {test: ['--test', '1']}, {test: ['--test=1']}, {test: ['--test', '2']}])('create $test validates only, as --dry-run', ({test}) => {
    const {status, stdout} = runCli(['create', 'x', 'wholenode@anvil', '--nodes', '2', ...test])
    expect(status).toBe(0)
    expect(stdout).toContain('sbatch -p wholenode --nodes=2 --time=60')
    expect(stdout).toContain('Nothing was submitted (--dry-run).')
  })

  it('--test is hidden, and refuses --bundle as --dry-run does', () => {
    expect(runCli(['create', '--help']).stdout).not.toContain('--test')
    expect(oneErrorLine(runCli(['add', 'x', 'wholenode@anvil', '--test', '--bundle', 'f']).stderr)).toBe('--bundle and --dry-run cannot be used together; drop one of them.')
  })
})

describe('help', () => {
  it('shows usage without empty alternatives, and a unit for every duration', () => {
    const create = runCli(['create', '--help']).stdout
    expect(create).not.toMatch(/\|\s*\]/)
    expect(create).toContain('--stall-timeout=SECONDS')
    expect(runCli(['status', '--help']).stdout).toContain('--interval=SECONDS')
    expect(runCli(['login', '--help']).stdout).toContain('--persist=SECONDS')
  })

  it('marks every example as a command line', () => {
    const help = runCli(['admin', 'metaknob', '--help']).stdout
    const examples = help.slice(help.indexOf('EXAMPLES')).split('\n').slice(1).map((line) => line.trim()).filter(Boolean)
    expect(examples.length).toBeGreaterThan(2)
    for (const line of examples) expect(line).toMatch(/^\$ /)
  })
})
