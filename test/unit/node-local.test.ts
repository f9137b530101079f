import {spawn, spawnSync} from 'node:child_process'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {aggregateStatus} from '../../src/annex/status.js'
import {renderFiles} from '../../src/backend/index.js'
import {loadCatalog, type Plan} from '../../src/catalog/index.js'
import {nodeLocalOf} from '../../src/catalog/node-local.js'
import type {PlanNodeLocal} from '../../src/catalog/plan.js'
import {statusJson} from '../../src/cli/json/project.js'
import {projectPath} from '../../src/paths.js'
import type {ApContext} from '../../src/render/context.js'
import {expectContract} from '../fixtures/json-contract.js'
import {makeStubs, planFor, tempDir} from './render-helpers.js'
import {until} from '../site/poll.js'

const ap: ApContext = {requestId: 'ap.example.org#123.0#1700000000', collector: 'ap.example.org:9618?sock=ap_collector', scheddName: 'ap.example.org'}

/** Each built-in system's node-local directory, as its machine file documents it (undefined: shared scratch). */
const EXPECTED: Record<string, string | undefined> = {
  anvil: undefined,
  bridges2: '$LOCAL',
  delta: '/tmp',
  expanse: '/scratch/$USER/job_$SLURM_JOB_ID',
  perlmutter: undefined,
  spark: undefined,
  'path-facility': undefined,
}

/** What the rendered node_local_base prints on a node with this environment. */
function evaluate(script: string, env: NodeJS.ProcessEnv): {base: string; configured: string; minFree: string} {
  const dir = tempDir('node-local-eval')
  writeFileSync(join(dir, 'node-local.sh'), script)
  const show = `. "$1"; node_local_base; printf '\\n%s %s' "$NODE_LOCAL_CONFIGURED" "$NODE_LOCAL_MIN_FREE_MB"`
  const r = spawnSync('bash', ['-c', show, 'node', join(dir, 'node-local.sh')], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: {PATH: '/usr/bin:/bin', HOME: dir, ...env}})
  rmSync(dir, {recursive: true, force: true})
  expect(r.stderr).toBe('')
  const [base, rest] = r.stdout.split('\n')
  const [configured, minFree] = rest!.split(' ')
  return {base: base!, configured: configured!, minFree: minFree!}
}

describe('node-local directories in the built-in machine files', () => {
  const catalog = loadCatalog([projectPath('backends')])

  it('covers every built-in system', () => {
    expect([...catalog.systems.keys()].sort()).toEqual(Object.keys(EXPECTED).sort())
  })

  it.each(Object.entries(EXPECTED))('%s: every queue, and the rendered pilot files', (key, expected) => {
    const machine = catalog.systems.get(key)!
    for (const [name, queue] of Object.entries(machine.queues)) {
      expect(nodeLocalOf(machine, queue), `${key} ${name}`).toEqual(expected === undefined ? {minFreeMb: 4096} : {dir: expected, minFreeMb: 4096})
    }
    // Its source is named beside the setting (the comment above the key).
    const text = readFileSync(join(projectPath('backends'), `${key}.toml`), 'utf8')
    if (machine.batch === 'slurm') expect(text).toMatch(/# Job sandboxes: [^\n]*\n(#[^\n]*\n)*node_local_dir = /)

    const queue = machine.default_queue
    const def = machine.queues[queue]!
    const plan = planFor({
      target: `${queue}@${key}`,
      project: 'abc123',
      ...(def.allocation === 'cores_or_ram' ? {cpus: '4', ...(def.mem_mb === 'forbidden' ? {} : {memMb: '4096'})} : {}),
    })
    const files = renderFiles(plan, ap)
    const conf = files.find((f) => f.path === 'pilot.conf')!.content
    expect(conf).toContain('hpc_annex_execute_on = "shared"\n')
    expect(conf).toContain('hpc_annex_execute_dir = "$(EXECUTE)"\n')
    expect(conf).toContain('STARTD_ATTRS = $(STARTD_ATTRS) hpc_annex_execute_on hpc_annex_execute_dir\n')
    const script = files.find((f) => f.path === 'node-local.sh')?.content
    if (machine.batch === 'htcondor') {
      // The pilot is an HTCondor job: its own sandbox is on the execute node's disk.
      expect(script).toBeUndefined()
      return
    }
    expect(script).toBeDefined()
    const node = evaluate(script!, {USER: 'alice', SLURM_JOB_ID: '77', LOCAL: '/local/job77'})
    const want = {bridges2: '/local/job77', delta: '/tmp', expanse: '/scratch/alice/job_77'}[key] ?? ''
    expect(node).toEqual({base: want, configured: expected === undefined ? '0' : '1', minFree: '4096'})
  })

  it('takes a queue\'s own setting over the machine\'s, and an empty one as none', () => {
    const machine = {node_local_dir: '/tmp', node_local_min_free_mb: 4096}
    expect(nodeLocalOf(machine, {})).toEqual({dir: '/tmp', minFreeMb: 4096})
    expect(nodeLocalOf(machine, {node_local_dir: '$TMPDIR', node_local_min_free_mb: 100})).toEqual({dir: '$TMPDIR', minFreeMb: 100})
    expect(nodeLocalOf(machine, {node_local_dir: ''})).toEqual({minFreeMb: 4096})
  })

  it('reads per-queue settings from a machine file, and refuses a directory of two lines or with double quotes', () => {
    const dir = tempDir('node-local-machines')
    try {
      const base = readFileSync(join(import.meta.dirname, '..', 'site', 'machines', 'sandbox.toml'), 'utf8')
      writeFileSync(join(dir, 'site.toml'), base.replace('[queues.debug]\n', '[queues.debug]\nnode_local_dir = "/local/$SLURM_JOB_ID"\nnode_local_min_free_mb = 100\n'))
      const site = loadCatalog([dir]).systems.get('site')!
      expect(nodeLocalOf(site, site.queues.debug!)).toEqual({dir: '/local/$SLURM_JOB_ID', minFreeMb: 100})
      expect(nodeLocalOf(site, site.queues.compute!)).toEqual({dir: '/tmp/hpc-annex-site/local/$SLURMD_NODENAME', minFreeMb: 4096})
      writeFileSync(join(dir, 'site.toml'), base.replace(/^node_local_dir = .*$/m, 'node_local_dir = """\n/a\n/b"""'))
      const refused = loadCatalog([dir])
      expect(refused.systems.has('site')).toBe(false)
      expect(refused.problems.map((p) => `${p.key}: ${p.message}`)).toEqual([expect.stringMatching(/^node_local_dir: .*one line/)])
      writeFileSync(join(dir, 'site.toml'), base.replace(/^node_local_dir = .*$/m, `node_local_dir = '"/tmp"'`))
      expect(loadCatalog([dir]).problems.map((p) => `${p.key}: ${p.message}`)).toEqual([expect.stringMatching(/^node_local_dir: .*without double quotes/)])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('the pilot on a node (pilot.sh run)', {timeout: 60_000}, () => {
  let work: string
  let stubs: string
  let local: string

  beforeEach(() => {
    work = tempDir('node-local')
    stubs = makeStubs()
    local = join(work, 'local')
  })
  afterEach(() => {
    rmSync(work, {recursive: true, force: true})
    rmSync(stubs, {recursive: true, force: true})
  })

  /**
   * A prepared pilot directory whose condor_master records where job
   * sandboxes go, writes a file into one, and (with a file `hang` beside
   * the configuration) runs until TERM.
   */
  function pilotDir(nodeLocal: PlanNodeLocal | undefined): string {
    const dir = join(work, 'scratch', 'pilot.Abc12345')
    mkdirSync(join(dir, 'condor', 'sbin'), {recursive: true})
    mkdirSync(join(dir, 'secrets'))
    writeFileSync(join(dir, 'secrets', 'token'), 't')
    writeFileSync(join(dir, 'secrets', 'password'), 'p')
    writeFileSync(join(dir, 'condor_config'), '# test\n')
    copyFileSync(join(projectPath('pilots'), 'pilot.sh'), join(dir, 'pilot.sh'))
    chmodSync(join(dir, 'pilot.sh'), 0o755)
    const plan: Plan = {...planFor({target: 'wholenode@anvil'})}
    if (nodeLocal === undefined) delete plan.nodeLocal
    else plan.nodeLocal = nodeLocal
    writeFileSync(join(dir, 'node-local.sh'), renderFiles(plan, ap).find((f) => f.path === 'node-local.sh')!.content)
    const master = join(dir, 'condor', 'sbin', 'condor_master')
    writeFileSync(
      master,
      [
        '#!/bin/bash',
        'env | grep -E "^_CONDOR_(EXECUTE|hpc_annex_execute_on|hpc_annex_execute_dir)=" | sort > "$_CONDOR_LOCAL_DIR/log/master-ran"',
        'mkdir -p "$_CONDOR_EXECUTE/dir_1" && echo data > "$_CONDOR_EXECUTE/dir_1/sandbox-file"',
        'if [ -f "${CONDOR_CONFIG%/*}/hang" ]; then',
        '    trap \'echo "$$" > "$_CONDOR_LOCAL_DIR/log/master-termed"; exit 0\' TERM',
        '    touch "$_CONDOR_LOCAL_DIR/log/hanging"',
        '    while :; do sleep 0.1; done',
        'fi',
      ].join('\n'),
    )
    chmodSync(master, 0o755)
    return dir
  }

  const env = (): NodeJS.ProcessEnv => ({PATH: `${stubs}:/usr/bin:/bin`, HOME: work, HPC_ANNEX_FS_WAIT: '4'})

  /** The recorded _CONDOR_ values of `node`'s master. */
  function ran(dir: string, node: string): Record<string, string> {
    const text = readFileSync(join(dir, 'hosts', node, 'log', 'master-ran'), 'utf8')
    return Object.fromEntries(text.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
  }

  const pilotLog = (dir: string, node: string) => readFileSync(join(dir, 'hosts', node, 'log', 'PilotLog'), 'utf8')

  it('puts each node\'s job sandboxes in its own node-local directory, advertises it, and removes it at the end', () => {
    for (const node of ['node1', 'node2']) mkdirSync(join(local, node), {recursive: true})
    const dir = pilotDir({dir: `${local}/$SLURMD_NODENAME`, minFreeMb: 1})
    const r = spawnSync('bash', [join(stubs, 'srun'), '-n', '2', join(dir, 'pilot.sh'), 'run', dir], {encoding: 'utf8', env: env()})
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const executes: string[] = []
    for (const node of ['node1', 'node2']) {
      const values = ran(dir, node)
      const execute = values._CONDOR_EXECUTE!
      expect(execute).toMatch(new RegExp(`^${local}/${node}/hpc-annex\\.pilot\\.Abc12345\\.${node}\\.[A-Za-z0-9]{6}$`))
      expect(values._CONDOR_hpc_annex_execute_on).toBe('"node-local"')
      expect(values._CONDOR_hpc_annex_execute_dir).toBe(`"${execute}"`)
      expect(pilotLog(dir, node)).toContain(`job sandboxes on node-local disk: ${execute}\n`)
      executes.push(execute)
      // Nothing is left in the node-local directory, the job's files included.
      expect(readdirSync(join(local, node))).toEqual([])
    }
    expect(new Set(executes).size).toBe(2)
    // The lock directories went too.
    expect(readdirSync('/tmp').filter((n) => n.startsWith('hpc-annex-lock.') && existsSync(join('/tmp', n, 'pilot.Abc12345')))).toEqual([])
  })

  it.each([
    ['missing', (l: string) => ({dir: `${l}/gone`, minFreeMb: 1}), /\/gone does not exist$/],
    ['too small', (l: string) => ({dir: l, minFreeMb: 1_000_000_000}), /has \d+ MB free, less than the 1000000000 MB needed \(node_local_min_free_mb\)$/],
    ['empty on the node', () => ({dir: '$NO_SUCH_VARIABLE', minFreeMb: 1}), /node_local_dir is empty on this node$/],
  ])('falls back to shared scratch, and says so, when the node-local directory is %s', (_label, nodeLocal, reason) => {
    mkdirSync(local, {recursive: true})
    const dir = pilotDir(nodeLocal(local))
    const r = spawnSync('bash', [join(dir, 'pilot.sh'), 'run', dir, '', 'node1'], {encoding: 'utf8', env: env()})
    expect(r.status).toBe(0)
    const values = ran(dir, 'node1')
    expect(values).toEqual({
      _CONDOR_EXECUTE: `${dir}/hosts/node1/execute`,
      _CONDOR_hpc_annex_execute_on: '"shared"',
      _CONDOR_hpc_annex_execute_dir: `"${dir}/hosts/node1/execute"`,
    })
    expect(r.stderr.trim()).toMatch(new RegExp(`^hpc-annex pilot on node1: job sandboxes on shared scratch, not node-local disk: .*${reason.source}`))
    expect(pilotLog(dir, 'node1')).toMatch(new RegExp(`job sandboxes on shared scratch, ${dir}/hosts/node1/execute, not node-local disk: .*${reason.source.replace(/\$$/, '\n')}`))
    expect(readdirSync(local)).toEqual([])
  })

  it('keeps sandboxes on shared scratch, quietly, where the machine file names no node-local directory', () => {
    const dir = pilotDir(undefined)
    const r = spawnSync('bash', [join(dir, 'pilot.sh'), 'run', dir, '', 'node1'], {encoding: 'utf8', env: env()})
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(ran(dir, 'node1')._CONDOR_hpc_annex_execute_on).toBe('"shared"')
    expect(pilotLog(dir, 'node1')).toContain('the machine file names no node-local directory\n')
  })

  it('passes TERM (scancel, the job\'s end) to HTCondor and removes the node-local directory once it has ended', async () => {
    mkdirSync(join(local, 'node1'), {recursive: true})
    const dir = pilotDir({dir: `${local}/node1`, minFreeMb: 1})
    writeFileSync(join(dir, 'hang'), '')
    const child = spawn('bash', [join(dir, 'pilot.sh'), 'run', dir, '', 'node1'], {env: env(), stdio: 'ignore'})
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    await until('the pilot\'s condor_master to run', () => existsSync(join(dir, 'hosts', 'node1', 'log', 'hanging')), 30_000)
    const execute = ran(dir, 'node1')._CONDOR_EXECUTE!
    expect(existsSync(join(execute, 'dir_1', 'sandbox-file'))).toBe(true)
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(existsSync(join(dir, 'hosts', 'node1', 'log', 'master-termed'))).toBe(true)
    expect(readdirSync(join(local, 'node1'))).toEqual([])
  })
  it('leaves nothing on node-local disk when TERM comes after it made its directory but before HTCondor runs', async () => {
    mkdirSync(join(local, 'node1'), {recursive: true})
    const dir = pilotDir({dir: `${local}/node1`, minFreeMb: 1})
    // mktemp of the sandboxes' directory is followed at once by the TERM scancel would send.
    const pidFile = join(work, 'pilot.pid')
    writeFileSync(
      join(stubs, 'mktemp'),
      [
        '#!/bin/bash',
        '/usr/bin/mktemp "$@" || exit',
        'case $* in *hpc-annex.pilot.*) ;; *) exit 0 ;; esac',
        `for _ in $(seq 100); do [ -s '${pidFile}' ] && break; sleep 0.1; done`,
        `kill -TERM "$(cat '${pidFile}')"`,
      ].join('\n'),
    )
    chmodSync(join(stubs, 'mktemp'), 0o755)
    const child = spawn('bash', [join(dir, 'pilot.sh'), 'run', dir, '', 'node1'], {env: env(), stdio: 'ignore'})
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    writeFileSync(pidFile, String(child.pid))
    expect(await exited).toBe(143)
    expect(existsSync(join(dir, 'hosts', 'node1', 'log', 'master-ran'))).toBe(false)
    expect(readdirSync(join(local, 'node1'))).toEqual([])
  })
})

describe('status shows where each pilot puts job sandboxes', () => {
  it('from the startd ads, per request, in the --json contract', () => {
    const slot = (node: string, extra: Record<string, unknown>) => ({
      Name: `slot1@pilot.Abc12345.${node}`, AnnexName: 'demo', hpc_annex_request_id: 'r1', PartitionableSlot: true, TotalSlotCpus: 2, ChildCpus: [], DaemonStartTime: 100, ...extra,
    })
    const annexes = aggregateStatus({
      requestJobs: [],
      slots: [
        slot('node1', {hpc_annex_execute_on: 'node-local', hpc_annex_execute_dir: '/local/node1/hpc-annex.x'}),
        slot('node2', {hpc_annex_execute_on: 'shared', hpc_annex_execute_dir: '/scratch/pilot.Abc12345/hosts/node2/execute'}),
        // A pilot that does not say (HTCondor's own tool's, or an older one).
        slot('node3', {}),
      ],
      targetJobs: [],
    }, 200)
    expect(annexes[0]!.requestList[0]!.pilots).toEqual([
      {name: 'pilot.Abc12345.node1', executeOn: 'node-local', executeDir: '/local/node1/hpc-annex.x'},
      {name: 'pilot.Abc12345.node2', executeOn: 'shared', executeDir: '/scratch/pilot.Abc12345/hosts/node2/execute'},
      {name: 'pilot.Abc12345.node3'},
    ])
    const json = expectContract('status', JSON.stringify({...statusJson({annexes, time: 200}), warnings: []})) as {annexes: {requestList: {pilots: unknown[]}[]}[]}
    expect(json.annexes[0]!.requestList[0]!.pilots).toHaveLength(3)
  })
})
