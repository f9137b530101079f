import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {dryRunContext, renderFiles} from '../../src/backend/index.js'
import {batchOptionProblem, resolveBatchOptions} from '../../src/catalog/batch-options.js'
import {formatProblem, loadCatalog, parseMachineFile, validateRequest} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'
import {directiveString} from '../../src/quote.js'
import {runCli} from './helpers/cli.js'
import {planFor, tempDir} from './render-helpers.js'
import {refusal} from './helpers/refusal.js'

const none = {queueIsQos: false}

const batchScript = (plan: ReturnType<typeof planFor>) =>
  renderFiles(plan, dryRunContext(plan)).find((file) => file.path === 'batch.slurm')!.content

describe('--batch-option on SLURM', () => {
  // Every directive hpc-annex writes, long and short forms (sbatch(1)), and the flag that sets it.
  const managed: [string, RegExp][] = [
    ['nodes', /--nodes/],
    ['N', /--nodes/],
    ['time', /--lifetime/],
    ['t', /--lifetime/],
    ['time-min', /--lifetime/],
    ['partition', /QUEUE@SYSTEM/],
    ['p', /QUEUE@SYSTEM/],
    ['account', /--project/],
    ['A', /--project/],
    ['job-name', /names the job/],
    ['J', /names the job/],
    ['output', /hpc-annex logs/],
    ['o', /hpc-annex logs/],
    ['error', /hpc-annex logs/],
    ['e', /hpc-annex logs/],
    ['chdir', /hpc-annex logs/],
    ['gpus', /--gpus/],
    ['G', /--gpus/],
    ['gpus-per-node', /--gpus/],
    ['gpus-per-task', /--gpus/],
    ['gres', /--gpus/],
    ['mem', /--mem_mb/],
    ['mem-per-cpu', /--mem_mb/],
    ['mem-per-gpu', /--mem_mb/],
    ['cpus-per-task', /--cpus/],
    ['c', /--cpus/],
    ['cpus-per-gpu', /--cpus/],
    ['ntasks', /--cpus/],
    ['n', /--cpus/],
    ['ntasks-per-node', /--cpus/],
    ['array', /hpc-annex add/],
  ]
  it.each(managed)('refuses %s, naming what to use instead', (key, instead) => {
    const message = refusal(() => planFor({target: 'wholenode@anvil', batchOptions: [`${key}=1`]}))
    expect(message).toMatch(/^--batch-option '.*' is refused: hpc-annex sets --/)
    expect(message).toMatch(instead)
    // Written with dashes, the same.
    expect(refusal(() => planFor({target: 'wholenode@anvil', batchOptions: [`--${key}=1`]}))).toMatch(instead)
  })

  it.each([
    ['a b=1', /not an sbatch option name/],
    ['Reservation=x', /not an sbatch option name/],
    ['x=1', /long option name/],
    ['=x', /has no key/],
    ['comment=a\nb', /newline/],
    ['comment=a\rb', /control character/],
    ['comment=', /empty/],
    ['comment=my packjob', /packjob/],
    [`comment=${'x'.repeat(1025)}`, /longer than 1024/],
  ])('refuses %j: it cannot be a directive', (text, why) => {
    expect(refusal(() => planFor({target: 'wholenode@anvil', batchOptions: [text]}))).toMatch(why)
  })

  it('refuses the QoS where the queue is the QoS, and a constraint where the queue sends one', () => {
    expect(batchOptionProblem('slurm', 'qos', 'high', {queueIsQos: true})).toMatch(/QUEUE@SYSTEM/)
    expect(batchOptionProblem('slurm', 'qos', 'high', none)).toBeUndefined()
    expect(batchOptionProblem('slurm', 'constraint', 'a100', {queueIsQos: false, constraint: 'gpu'})).toMatch(/already sends --constraint=gpu/)
    expect(batchOptionProblem('slurm', 'constraint', 'a100', none)).toBeUndefined()
  })

  it('writes each option as an #SBATCH line, its value quoted as sbatch reads it', () => {
    const plan = planFor({target: 'wholenode@anvil', batchOptions: ['reservation=res1', 'comment=run "7" # of 9 \\ ok', 'exclusive', 'mail-type=END,FAIL']})
    expect(plan.batchOptions).toEqual([
      {key: 'reservation', value: 'res1', from: 'request'},
      {key: 'comment', value: 'run "7" # of 9 \\ ok', from: 'request'},
      {key: 'exclusive', from: 'request'},
      {key: 'mail-type', value: 'END,FAIL', from: 'request'},
    ])
    const script = batchScript(plan)
    expect(script).toContain('#SBATCH --reservation="res1"\n')
    expect(script).toContain('#SBATCH --comment="run \\"7\\" # of 9 \\\\ ok"\n')
    expect(script).toContain('#SBATCH --exclusive\n')
    expect(script).toContain('#SBATCH --mail-type="END,FAIL"\n')
    // Before the first command: sbatch reads no directive after it.
    const lines = script.split('\n')
    const lastDirective = lines.findLastIndex((line) => line.startsWith('#SBATCH'))
    expect(lines.slice(1, lastDirective).every((line) => line.startsWith('#') || line === '')).toBe(true)
    expect(plan.system.batch).toBe('slurm')
  })

  it('quotes through the one path: directiveString escapes \\ and ", refuses control characters', () => {
    expect(directiveString('a "b" \\c')).toBe('"a \\"b\\" \\\\c"')
    expect(() => directiveString('a\nb')).toThrow(/control character/)
  })

  it('takes the queue\'s defaults from the machine file; a request\'s own option of the same key replaces it', () => {
    const options = resolveBatchOptions('slurm', {qos: 'standby', exclusive: true}, ['qos=high', 'comment=x'], none)
    expect(options).toEqual([
      {key: 'exclusive', from: 'machine'},
      {key: 'qos', value: 'high', from: 'request'},
      {key: 'comment', value: 'x', from: 'request'},
    ])
  })
})

describe('batch_options in a machine file', () => {
  const anvil = readFileSync(join(projectPath('backends'), 'anvil.toml'), 'utf8')
  const withDefaults = (options: string) => anvil.replace('[queues.wholenode]\n', `[queues.wholenode]\nbatch_options = ${options}\n`)

  it('are the queue\'s defaults, shown in the plan and written to the batch script', () => {
    const dir = tempDir('machines')
    writeFileSync(join(dir, 'anvil.toml'), withDefaults('{qos = "standby", comment = "from the site"}'))
    const catalog = loadCatalog([dir])
    expect(catalog.problems).toEqual([])
    const plan = validateRequest(catalog, {name: 'demo', target: 'wholenode@anvil', batchOptions: ['comment=mine']}, {defaultOwner: 'alice'})
    expect(plan.batchOptions).toEqual([
      {key: 'qos', value: 'standby', from: 'machine'},
      {key: 'comment', value: 'mine', from: 'request'},
    ])
    expect(batchScript(plan)).toContain('#SBATCH --qos="standby"\n#SBATCH --comment="mine"\n')
    // Other queues are not touched.
    expect(validateRequest(catalog, {name: 'demo', target: 'wide@anvil'}, {defaultOwner: 'alice'}).batchOptions).toBeUndefined()
  })

  it('refuses a managed directive at its file and line', () => {
    const text = withDefaults('{time = "10"}')
    const [problem] = parseMachineFile('/x/anvil.toml', text).problems
    expect(problem).toMatchObject({key: 'queues.wholenode.batch_options.time', line: text.split('\n').indexOf('batch_options = {time = "10"}') + 1})
    expect(formatProblem(problem!)).toMatch(/^\/x\/anvil\.toml:\d+: queues\.wholenode\.batch_options\.time: hpc-annex sets --time itself; use --lifetime$/)
  })
})

describe('--batch-option on an HTCondor pool (PATh)', () => {
  it('writes a submit-description line, its value as an HTCondor value', () => {
    const plan = planFor({target: 'cpu@path-facility', cpus: '1', batchOptions: ['notification=Error', '+WantFlocking=true', 'environment=A=$HOME']})
    const sub = renderFiles(plan, dryRunContext(plan)).find((file) => file.path === 'pilot.sub')!.content
    expect(sub).toContain('notification = Error\n+WantFlocking = true\nenvironment = A=$(DOLLAR)HOME\n\nqueue 1')
  })

  it.each([
    ['request_cpus=4', /--cpus/],
    ['Request_Memory=4', /--mem_mb/],
    ['request_gpus=1', /--gpus/],
    ['accounting_group=x', /--project/],
    ['queue=3', /--nodes/],
    ['executable=/bin/sh', /own pilot/],
    ['requirements=true', /pilot_job\.requirements/],
    ['+SingularityImage="x"', /container_image/],
    ['MY.SingularityImage="x"', /container_image/],
    ['+hpc_annex_request_id="x"', /hpc_annex_/],
    ['batch_name=x', /names the job/],
    ['log=x', /hpc-annex logs/],
    ['notification', /needs a value/],
    ['a b=1', /not a submit-description command/],
    ['notify_user=a\\', /backslash/],
    ['notify_user=a\nqueue', /newline/],
  ])('refuses %j', (text, why) => {
    expect(refusal(() => planFor({target: 'cpu@path-facility', cpus: '1', batchOptions: [text]}))).toMatch(why)
  })
})

describe('--batch-option through the CLI', () => {
  it('shows the options in --dry-run, as text and under --json; refuses a managed one with exit 1', () => {
    const args = ['create', 'demo', 'wholenode@anvil', '--dry-run', '--batch-option', 'reservation=res1', '--batch-option=comment=two words']
    const text = runCli(args)
    expect(text.status).toBe(0)
    expect(text.stdout).toContain('--reservation=res1 --comment="two words"')
    const json = runCli([...args, '--json'])
    expect(json.status).toBe(0)
    const out = JSON.parse(json.stdout) as {batchOptions: unknown; batchRequest: string}
    expect(out.batchOptions).toEqual([
      {key: 'reservation', value: 'res1', from: 'request'},
      {key: 'comment', value: 'two words', from: 'request'},
    ])
    expect(out.batchRequest).toMatch(/--reservation=res1 --comment="two words"$/)
    const refused = runCli(['add', 'demo', 'wholenode@anvil', '--dry-run', '--batch-option', 'partition=debug'])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/--batch-option 'partition=debug' is refused: hpc-annex sets --partition itself; give the queue as QUEUE@SYSTEM/)
  })
})
