import {describe, expect, it} from 'vitest'

import {loadCatalog} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'

// The published facts, transcribed from the systems reference independently of
// the machine files: [queue, type, max nodes, max seconds, cores, RAM MB, GPUs/node, max jobs]
type Row = [string, string, number, number, number | null, number | null, number | null, number | null]
const facts: Record<string, {name: string; host: string; batch: string; defaultQueue: string; project: boolean; queues: Row[]}> = {
  perlmutter: {name: 'Perlmutter', host: 'perlmutter-p1.nersc.gov', batch: 'slurm', defaultQueue: 'regular', project: true, queues: [
    ['regular', 'node', 3072, 43200, null, null, null, 5000],
    ['debug', 'node', 8, 1800, null, null, null, 5],
    ['shared', 'cores_or_ram', 1, 21600, 64, 262144, null, 5000],
  ]},
  delta: {name: 'Delta', host: 'login.delta.ncsa.illinois.edu', batch: 'slurm', defaultQueue: 'cpu', project: true, queues: [
    ['cpu', 'cores_or_ram', 4, 172800, 128, 262144, null, null],
    ['cpu-interactive', 'cores_or_ram', 4, 1800, 128, 262144, null, null],
    ['gpuA100x4', 'cores_or_ram', 4, 172800, 64, 262144, 4, null],
    ['gpuA100x4-preempt', 'cores_or_ram', 4, 172800, 64, 262144, 4, null],
    ['gpuA100x8', 'cores_or_ram', 4, 172800, 128, 2097152, 8, null],
    ['gpuA40x4', 'cores_or_ram', 4, 172800, 64, 308224, 4, null],
    ['gpuA40x4-preempt', 'cores_or_ram', 4, 172800, 64, 308224, 4, null],
    ['gpuMI100x8', 'cores_or_ram', 4, 172800, 128, 2097152, 8, null],
  ]},
  spark: {name: 'Spark', host: 'spark-login.chtc.wisc.edu', batch: 'slurm', defaultQueue: 'shared', project: false, queues: [
    ['shared', 'cores_or_ram', 2, 604800, 64, 524288, null, null],
    ['int', 'cores_or_ram', 1, 14400, 16, 524288, null, null],
    ['pre', 'cores_or_ram', 2, 86400, 64, 524288, null, null],
  ]},
  expanse: {name: 'Expanse', host: 'login.expanse.sdsc.edu', batch: 'slurm', defaultQueue: 'compute', project: true, queues: [
    ['compute', 'node', 32, 172800, 128, 262144, null, 64],
    ['gpu', 'node', 4, 172800, 40, 375808, 4, 8],
    ['shared', 'cores_or_ram', 1, 172800, 128, 262144, null, 4096],
    ['gpu-shared', 'cores_or_ram', 1, 172800, 40, 375808, 3, 24],
  ]},
  anvil: {name: 'Anvil', host: 'anvil.rcac.purdue.edu', batch: 'slurm', defaultQueue: 'wholenode', project: false, queues: [
    ['wholenode', 'node', 16, 345600, 128, 256000, null, 128],
    ['wide', 'node', 56, 43200, 128, 256000, null, 10],
    ['shared', 'cores_or_ram', 1, 345600, 128, 256000, null, null],
    ['gpu', 'cores_or_ram', 3, 172800, 128, 512000, 4, null],
    ['gpu-debug', 'cores_or_ram', 1, 1800, 128, 512000, 2, 1],
  ]},
  bridges2: {name: 'Bridges-2', host: 'bridges2.psc.edu', batch: 'slurm', defaultQueue: 'RM', project: false, queues: [
    ['RM', 'node', 50, 172800, 128, 253000, null, 50],
    ['RM-512', 'node', 2, 172800, 128, 515000, null, 50],
    ['RM-shared', 'cores_or_ram', 1, 172800, 64, 126500, null, 50],
    ['EM', 'cores_or_ram', 1, 432000, 96, 4123680, null, 50],
    ['GPU', 'node', 4, 172800, null, null, null, null],
    ['GPU-shared', 'gpu-shared', 1, 172800, null, null, null, null],
  ]},
  'path-facility': {name: 'PATh Facility', host: 'ap1.facility.path-cc.io', batch: 'htcondor', defaultQueue: 'cpu', project: false, queues: [
    ['cpu', 'cores_or_ram', 1, 259200, 64, 249856, null, 1000],
  ]},
}

describe('the built-in machine files hold the published facts', () => {
  const catalog = loadCatalog([projectPath('backends')])

  it('load without a problem, one per system', () => {
    expect(catalog.problems).toEqual([])
    expect([...catalog.systems.keys()].sort()).toEqual(Object.keys(facts).sort())
  })

  for (const [key, system] of Object.entries(facts)) {
    it(`${key}: system facts and every queue's limits`, () => {
      const machine = catalog.systems.get(key)!
      expect([machine.name, machine.host, machine.batch, machine.default_queue, machine.project_required])
        .toEqual([system.name, system.host, system.batch, system.defaultQueue, system.project])
      expect(Object.keys(machine.queues)).toEqual(system.queues.map((row) => row[0]))
      for (const [queue, type, maxNodes, maxDuration, cores, ram, gpus, maxJobs] of system.queues) {
        const q = machine.queues[queue]!
        expect([queue, q.allocation, q.max_nodes, q.max_duration, q.cores_per_node ?? null, q.ram_per_node ?? null, q.gpus_per_node ?? null, q.max_jobs_in_queue ?? null])
          .toEqual([queue, type, maxNodes, maxDuration, cores, ram, gpus, maxJobs])
      }
    })
  }

  it('encodes the shapes of Perlmutter and Bridges-2', () => {
    const shapes = (key: string, queue: string) => catalog.systems.get(key)!.queues[queue]!.shapes!.map((s) =>
      [s.when_gpus_asked ?? null, s.when_gpu_type ?? null, s.when_gpus ?? null, s.max_nodes ?? null, s.cores_per_node ?? null, s.ram_per_node ?? null, s.gpus_per_node ?? null])
    expect(shapes('perlmutter', 'regular')).toEqual([[true, null, null, 1536, 64, 262144, 4], [false, null, null, 3072, 128, 523776, null]])
    expect(shapes('perlmutter', 'debug')).toEqual([[true, null, null, null, 64, 262144, 4], [false, null, null, null, 128, 524288, null]])
    expect(shapes('bridges2', 'GPU')).toEqual([
      [null, 'v100-32', 16, 1, 48, 1572864, 16],
      [null, 'v100-32', null, 4, 40, 524288, 8],
      [null, 'v100-16', null, 4, 40, 196608, 8],
    ])
    expect(shapes('bridges2', 'GPU-shared').map((s) => [s[1], s[6]])).toEqual([['v100-32', 4], ['v100-16', 4]])
  })
})
