import {spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {loadCatalog, type RequestInput} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'
import {dryRunContext, renderFiles} from '../../src/backend/index.js'
import {planFor, tempDir} from './render-helpers.js'

/** For every system × queue a request the catalog accepts, plus a GPU variant where the queue has GPUs. */
function requests(): [string, Omit<RequestInput, 'name'>][] {
  const catalog = loadCatalog([projectPath('backends')])
  const cases: [string, Omit<RequestInput, 'name'>][] = []
  for (const [key, machine] of catalog.systems) {
    for (const [queue, def] of Object.entries(machine.queues)) {
      const base: Omit<RequestInput, 'name'> = {target: `${queue}@${key}`, project: 'abc123', lifetime: String(Math.min(7200, def.max_duration))}
      if (def.allocation === 'cores_or_ram') {
        base.cpus = String(def.cpus_multiple_of ?? Math.min(8, def.cores_per_node ?? 8))
        if (def.mem_mb !== 'forbidden') base.memMb = '8192'
      }
      if (def.allocation === 'node') base.nodes = String(Math.min(2, def.max_nodes))
      const gpuShapes = (def.shapes ?? []).filter((s) => s.gpus_per_node !== undefined)
      if (def.gpu_types) {
        for (const shape of gpuShapes) {
          const gpus = String(shape.when_gpus ?? shape.gpus_per_node)
          const nodes = String(Math.min(shape.max_nodes ?? def.max_nodes, 2))
          cases.push([`${key} ${queue} ${shape.when_gpu_type}:${gpus}`, {...base, nodes, gpus: `${shape.when_gpu_type}:${gpus}`}])
        }
        continue
      }
      if (def.gpus_per_node !== undefined) {
        cases.push([`${key} ${queue} with GPUs`, {...base, gpus: def.allocation === 'node' ? String(def.gpus_per_node) : '1'}])
        if (def.allocation !== 'node') continue
      } else if (gpuShapes.length > 0) {
        cases.push([`${key} ${queue} with GPUs`, {...base, gpus: String(gpuShapes[0]!.gpus_per_node)}])
      }
      cases.push([`${key} ${queue}`, base])
    }
  }
  return cases
}

const root = tempDir('matrix')
afterAll(() => rmSync(root, {recursive: true, force: true}))

const cases = requests()

describe('every system × queue', () => {
  it('covers every queue of the catalog', () => {
    const catalog = loadCatalog([projectPath('backends')])
    const queues = [...catalog.systems.values()].flatMap((m) => Object.keys(m.queues).map((q) => `${m.key} ${q}`))
    for (const queue of queues) expect(cases.some(([label]) => label.startsWith(queue))).toBe(true)
    expect(cases.length).toBeGreaterThan(queues.length)
  })

  it.each(cases)('%s: back-end, batch script and pilots pass bash -n and shellcheck', (label, input) => {
    const plan = planFor(input)
    const dir = join(root, label.replace(/[^A-Za-z0-9.-]/g, '_'))
    mkdirSync(dir, {recursive: true})
    const files = renderFiles(plan, dryRunContext(plan), {setup: true})
    const scripts = files.filter((f) => f.path.endsWith('.sh') || f.path.endsWith('.slurm'))
    expect(scripts.map((f) => f.path)).toEqual(expect.arrayContaining(['backend.sh', 'pilot.sh', 'setup.sh']))
    if (plan.system.batch === 'slurm') expect(scripts.map((f) => f.path)).toEqual(expect.arrayContaining(['batch.slurm', 'launcher.sh']))
    for (const file of scripts) writeFileSync(join(dir, file.path), file.content)
    for (const file of scripts) {
      const syntax = spawnSync('bash', ['-n', join(dir, file.path)], {encoding: 'utf8'})
      expect(syntax.stderr, `${label} ${file.path}`).toBe('')
      expect(syntax.status).toBe(0)
    }
    const check = spawnSync('shellcheck', ['--shell=bash', '--severity=style', ...scripts.map((f) => join(dir, f.path))], {encoding: 'utf8'})
    expect(check.stdout, label).toBe('')
    expect(check.status).toBe(0)
  })
})
