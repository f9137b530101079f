import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {chargeSoFar, checkMaxCharge, describeCharge, maxCharge, parseMaxCharge, type Charge, type KnownCharge} from '../../src/catalog/charge.js'
import {loadCatalog, validateRequest, type Plan, type RequestInput} from '../../src/catalog/index.js'
import {parseMachineFile} from '../../src/catalog/load.js'
import {projectPath} from '../../src/paths.js'
import {refusal} from './helpers/refusal.js'

const catalog = loadCatalog([projectPath('backends')])

type Extra = Partial<Omit<RequestInput, 'name' | 'target'>>

function plan(target: string, extra: Extra = {}): Plan {
  const system = catalog.systems.get(target.split('@')[1]!)
  const project = system?.project_required ? {project: 'abc123'} : {}
  return validateRequest(catalog, {name: 'example', target, ...project, ...extra}, {defaultOwner: 'alice'})
}

function known(charge: Charge): KnownCharge {
  if (!charge.known) throw new Error(`expected a known charge, got: ${charge.reason}`)
  return charge
}

describe('the charge of every built-in queue', () => {
  // [QUEUE@SYSTEM, request, the most it can charge (or 'unknown'), unit]
  const cases: [string, Extra, number | 'unknown'][] = [
    // Anvil: whole nodes are charged all 128 cores; shared by cores or memory, whichever is larger; GPU nodes per GPU.
    ['wholenode@anvil', {nodes: '2', lifetime: '7200'}, 512],
    ['wholenode@anvil', {nodes: '1', lifetime: '1800'}, 64],
    ['wide@anvil', {nodes: '3', lifetime: '3600'}, 384],
    ['shared@anvil', {cpus: '8', lifetime: '7200'}, 16],
    ['shared@anvil', {cpus: '8', memMb: '64000', lifetime: '3600'}, 32],
    ['shared@anvil', {memMb: '1000', lifetime: '3600'}, 0.5],
    ['gpu@anvil', {cpus: '32', gpus: '2', nodes: '2', lifetime: '3600'}, 4],
    ['gpu-debug@anvil', {cpus: '8', gpus: '1', lifetime: '1800'}, 0.5],
    // Delta: CPU by cores or 2 GB (1e9 B) shares; A100 by GPUs, 16-core or 62.5/250 GB shares.
    ['cpu@delta', {cpus: '16', lifetime: '3600'}, 16],
    ['cpu@delta', {cpus: '1', memMb: '19074', lifetime: '3600'}, 10.01],
    ['cpu-interactive@delta', {cpus: '4', lifetime: '1800'}, 2],
    ['gpuA100x4@delta', {cpus: '16', gpus: '1', lifetime: '3600'}, 1],
    ['gpuA100x4@delta', {cpus: '64', gpus: '1', lifetime: '3600'}, 4],
    ['gpuA100x4@delta', {cpus: '1', gpus: '1', memMb: '119209', lifetime: '7200'}, 4],
    ['gpuA100x8@delta', {cpus: '16', gpus: '8', nodes: '2', lifetime: '3600'}, 16],
    ['gpuA100x4-preempt@delta', {cpus: '16', gpus: '1'}, 'unknown'],
    ['gpuA40x4@delta', {cpus: '16', gpus: '1'}, 'unknown'],
    ['gpuA40x4-preempt@delta', {cpus: '16', gpus: '1'}, 'unknown'],
    ['gpuMI100x8@delta', {cpus: '16', gpus: '1'}, 'unknown'],
    // Not recorded: the sites' pages at hand give no rates (or factors) for these.
    ['regular@perlmutter', {project: 'm1234', nodes: '2'}, 'unknown'],
    ['regular@perlmutter', {project: 'm1234', gpus: '4'}, 'unknown'],
    ['debug@perlmutter', {project: 'm1234', lifetime: '1800'}, 'unknown'],
    ['shared@perlmutter', {project: 'm1234', cpus: '4'}, 'unknown'],
    ['RM@bridges2', {}, 'unknown'],
    ['RM-512@bridges2', {}, 'unknown'],
    ['RM-shared@bridges2', {cpus: '4'}, 'unknown'],
    ['EM@bridges2', {cpus: '24'}, 'unknown'],
    ['GPU@bridges2', {gpuType: 'v100-32'}, 'unknown'],
    ['GPU-shared@bridges2', {gpus: 'v100-16:1'}, 'unknown'],
    ['compute@expanse', {}, 'unknown'],
    ['gpu@expanse', {}, 'unknown'],
    ['shared@expanse', {cpus: '4'}, 'unknown'],
    ['gpu-shared@expanse', {cpus: '10', gpus: '1'}, 'unknown'],
    ['shared@spark', {cpus: '4'}, 'unknown'],
    ['int@spark', {cpus: '4', lifetime: '600'}, 'unknown'],
    ['pre@spark', {cpus: '4'}, 'unknown'],
    ['cpu@path-facility', {cpus: '1'}, 'unknown'],
  ]

  it.each(cases)('%s %j', (target, extra, expected) => {
    const charge = plan(target, extra).charge
    if (expected === 'unknown') {
      expect(charge.known).toBe(false)
      expect(describeCharge(charge)).toMatch(/^The most this request can charge is unknown: the machine file does not say how this queue charges: .+\.$/)
    } else {
      expect(known(charge).amount).toBe(expected)
    }
  })

  it('covers every queue of every built-in system', () => {
    const covered = new Set(cases.map(([target]) => target))
    const all = [...catalog.systems.values()].flatMap((m) => Object.keys(m.queues).map((q) => `${q}@${m.key}`))
    expect(all.filter((target) => !covered.has(target))).toEqual([])
  })

  it('says it the way the issue asks, with the account', () => {
    const charge = plan('wholenode@anvil', {nodes: '2', lifetime: '7200', project: 'abc123'}).charge
    expect(describeCharge(charge)).toBe(
      'This request charges at most 512 SUs (2 nodes × 128 cores × 2 h) to account abc123 (rates: https://www.rcac.purdue.edu/knowledge/anvil/run/accounting).',
    )
    expect(describeCharge(plan('shared@anvil', {memMb: '64000'}).charge)).toContain('32 SUs (1 node × 32 cores by memory × 1 h) to your default account')
  })

  it('names the policy of each known queue with a comment in its file', () => {
    for (const machine of catalog.systems.values()) {
      for (const [name, q] of Object.entries(machine.queues)) {
        expect(q.charge, `${name}@${machine.key}`).toBeDefined()
      }
    }
  })
})

describe('charges a user machine file can state', () => {
  const dir = mkdtempSync(join(tmpdir(), 'charge-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))
  const text = `
name = "Example"
host = "login.example.org"
batch = "slurm"
scratch = "$HOME"
default_queue = "regular"
[htcondor]
version = "25.0.4"
url = "https://example.org/condor-{version}-{os}.tar.gz"
os = ["AlmaLinux9"]
[queues.regular]
allocation = "node"
max_nodes = 10
max_duration = 86400
cores_per_node = 64
gpus_per_node = 4
gpu_types = ["a100", "h100"]
[[queues.regular.shapes]]
label = "A100"
when_gpu_type = "a100"
[[queues.regular.shapes]]
label = "H100"
when_gpu_type = "h100"
charge_factor = 2
[queues.regular.charge]
unit = "node-hour"
per = "node"
policy = "https://example.org/charging"
[queues.premium]
allocation = "node"
max_nodes = 10
max_duration = 86400
cores_per_node = 64
[queues.premium.charge]
unit = "node-hour"
per = "node"
factor = 2
policy = "https://example.org/charging"
[queues.gpus]
allocation = "cores_or_ram"
max_nodes = 2
max_duration = 86400
cores_per_node = 64
ram_per_node = 256000
gpus_per_node = 4
[queues.gpus.charge]
unit = "GPU-hour"
per = "gpu"
whole_node = true
policy = "https://example.org/charging"
`
  writeFileSync(join(dir, 'example.toml'), text)
  const own = loadCatalog([dir])
  const ownPlan = (target: string, extra: Extra = {}) => validateRequest(own, {name: 'x', target, ...extra}, {defaultOwner: 'alice'})

  it('loads without problems', () => {
    expect(own.problems).toEqual([])
  })

  it('multiplies by a QOS factor', () => {
    const charge = known(ownPlan('premium@example', {nodes: '3', lifetime: '7200'}).charge)
    expect(charge.amount).toBe(12)
    expect(describeCharge(charge)).toContain('12 node-hours (3 nodes × 2 h × factor 2)')
  })

  it('multiplies by a GPU type\'s factor', () => {
    expect(known(ownPlan('regular@example', {nodes: '2', gpuType: 'a100'}).charge).amount).toBe(2)
    expect(known(ownPlan('regular@example', {nodes: '2', gpuType: 'h100'}).charge).amount).toBe(4)
  })

  it('charges every GPU of the node on a whole-node GPU queue, whatever was asked', () => {
    const charge = known(ownPlan('gpus@example', {cpus: '4', gpus: '1', lifetime: '1800'}).charge)
    expect(charge.unitsPerNode).toBe(4)
    expect(charge.amount).toBe(2)
  })

  it('refuses a factor that is not positive, with the file and line', () => {
    const {problems} = parseMachineFile(join(dir, 'bad.toml'), text.replace('factor = 2\npolicy', 'factor = 0\npolicy'))
    expect(problems.length).toBeGreaterThan(0)
    expect(problems[0]!.key).toContain('charge')
  })
})

describe('--max-charge', () => {
  it('refuses a request whose worst case is over the limit, with the figure', () => {
    const charge = plan('wholenode@anvil', {nodes: '2', lifetime: '7200'}).charge
    expect(refusal(() => checkMaxCharge(charge, 500))).toBe(
      'This request can charge up to 512 SUs (2 nodes × 128 cores × 2 h), more than --max-charge 500; lower --nodes or --lifetime, or raise --max-charge.',
    )
  })

  it('lets a request at or under the limit through', () => {
    const charge = plan('wholenode@anvil', {nodes: '2', lifetime: '7200'}).charge
    expect(() => checkMaxCharge(charge, 512)).not.toThrow()
    expect(() => checkMaxCharge(charge, undefined)).not.toThrow()
  })

  it('refuses when the charge is unknown: the limit cannot be checked', () => {
    const charge = plan('compute@expanse').charge
    expect(refusal(() => checkMaxCharge(charge, 1000))).toMatch(/^--max-charge 1000 cannot be checked: the machine file does not say how this queue charges: .*; drop --max-charge/)
  })

  it('takes a positive number only', () => {
    expect(parseMaxCharge('250.5')).toBe(250.5)
    expect(parseMaxCharge(undefined)).toBeUndefined()
    for (const bad of ['0', '-3', 'ten', '1e3', '']) expect(refusal(() => parseMaxCharge(bad))).toContain('change --max-charge')
  })
})

describe('the charge so far', () => {
  const charge = known(maxCharge({unit: 'SU', per: 'core', whole_node: true, factor: 1, policy: 'https://example.org/'}, {nodes: 2, lifetime: 7200, coresPerNode: 128}))

  it('is nothing before the pilots start, all of it still to come', () => {
    expect(chargeSoFar(charge, undefined, 7200, 1000)).toEqual({charged: 0, remaining: 512})
  })

  it('grows with the time since the start and stops at the lifetime', () => {
    expect(chargeSoFar(charge, 1000, 7200, 1000 + 1800)).toEqual({charged: 128, remaining: 384})
    expect(chargeSoFar(charge, 1000, 7200, 1000 + 99999)).toEqual({charged: 512, remaining: 0})
  })
})
