import {describe, expect, it} from 'vitest'

import {loadCatalog, validateRequest, type Plan, type RequestInput} from '../../src/catalog/index.js'
import type {Machine} from '../../src/catalog/load.js'
import {AnnexError} from '../../src/errors.js'
import {projectPath} from '../../src/paths.js'

const catalog = loadCatalog([projectPath('backends')])

type Extra = Partial<Omit<RequestInput, 'name' | 'target'>>

function plan(target: string, extra: Extra = {}): Plan {
  return validateRequest(catalog, {name: 'example', target, ...extra}, {defaultOwner: 'alice'})
}

function rejection(target: string, extra: Extra = {}): AnnexError {
  try {
    plan(target, extra)
  } catch (error) {
    expect(error).toBeInstanceOf(AnnexError)
    const err = error as AnnexError
    expect(err.exitCode).toBe(1)
    expect(err.message).not.toContain('\n')
    return err
  }
  throw new Error(`expected ${target} ${JSON.stringify(extra)} to be rejected`)
}

/** The smallest valid request for a queue: what each rule's cases start from. */
function minimal(machine: Machine, queueName: string): Extra {
  const q = machine.queues[queueName]!
  // The default lifetime (3600 s) is too long for the 30-minute queues.
  const extra: Extra = q.max_duration < 3600 ? {lifetime: String(q.max_duration)} : {}
  if (machine.project_required) extra.project = 'abc123'
  if (q.gpu_types) extra.gpuType = q.gpu_types[0]
  if (q.allocation === 'cores_or_ram') extra.cpus = String(q.cpus_multiple_of ?? 1)
  const shapeGpus = q.shapes?.find((s) => s.when_gpu_type === extra.gpuType && s.when_gpus === undefined)?.gpus_per_node
  if (q.allocation !== 'node' && (q.gpus_per_node ?? shapeGpus) !== undefined) extra.gpus = '1'
  return extra
}

function gpusPerNode(machine: Machine, queueName: string, extra: Extra): number | undefined {
  return plan(`${queueName}@${machine.key}`, extra).queue.gpusPerNode
}

for (const machine of catalog.systems.values()) {
  describe(`${machine.name}`, () => {
    for (const [queueName, q] of Object.entries(machine.queues)) {
      const target = `${queueName}@${machine.key}`
      const base = minimal(machine, queueName)

      describe(queueName, () => {
        it('1. the queue must exist (names the queues and the default)', () => {
          expect(plan(target, base).queue.name).toBe(queueName)
          const err = rejection(`no-such-queue@${machine.key}`, base)
          expect(err.message).toContain(`default: ${machine.default_queue}`)
          expect(err.message).toContain(queueName)
        })

        if (q.allocation === 'cores_or_ram') {
          it('2. a shared-node queue needs --cpus or --mem_mb', () => {
            const {cpus: _cpus, ...without} = base
            expect(rejection(target, without).message).toMatch(/--cpus.*--mem_mb/)
            if (q.mem_mb !== 'forbidden') expect(plan(target, {...without, memMb: '1024'}).memMb).toBe(1024)
          })

          it('4. CPUs and memory fit one node; nodes within the limit', () => {
            const step = q.cpus_multiple_of ?? 1
            expect(plan(target, {...base, cpus: String(q.cores_per_node)}).cpus).toBe(q.cores_per_node)
            expect(rejection(target, {...base, cpus: String(q.cores_per_node! + step)}).message).toContain('--cpus')
            if (q.mem_mb !== 'forbidden') {
              expect(plan(target, {...base, memMb: String(q.ram_per_node)}).memMb).toBe(q.ram_per_node)
              expect(rejection(target, {...base, memMb: String(q.ram_per_node! + 1)}).message).toContain('--mem_mb')
            }
            expect(plan(target, {...base, nodes: String(q.max_nodes)}).nodes).toBe(q.max_nodes)
            expect(rejection(target, {...base, nodes: String(q.max_nodes + 1)}).message).toContain('--nodes')
          })
        }

        if (q.allocation === 'node') {
          it('3. a whole-node queue refuses --cpus/--mem_mb; nodes within the limit', () => {
            expect(rejection(target, {...base, cpus: '1'}).message).toMatch(/--cpus and --mem_mb/)
            expect(rejection(target, {...base, memMb: '1024'}).message).toMatch(/--cpus and --mem_mb/)
            const max = plan(target, base).queue.maxNodes
            expect(plan(target, {...base, nodes: String(max)}).nodes).toBe(max)
            expect(rejection(target, {...base, nodes: String(max + 1)}).message).toContain('--nodes')
          })
        }

        if (q.allocation === 'gpu-shared') {
          it('5. a gpu-shared queue refuses --cpus/--mem_mb; nodes within the limit', () => {
            expect(rejection(target, {...base, cpus: '4'}).message).toMatch(/--cpus and --mem_mb/)
            expect(rejection(target, {...base, memMb: '4096'}).message).toMatch(/--cpus and --mem_mb/)
            expect(plan(target, {...base, nodes: String(q.max_nodes)}).nodes).toBe(q.max_nodes)
            expect(rejection(target, {...base, nodes: String(q.max_nodes + 1)}).message).toContain('--nodes')
          })
        }

        it('6. the lifetime fits the queue\'s wall-time limit', () => {
          expect(plan(target, {...base, lifetime: String(q.max_duration)}).lifetime).toBe(q.max_duration)
          expect(rejection(target, {...base, lifetime: String(q.max_duration + 1)}).message).toContain('--lifetime')
        })

        it('7. the idle time is no longer than the lifetime', () => {
          expect(plan(target, {...base, lifetime: '1000', idleTime: '1000'}).idleTime).toBe(1000)
          expect(rejection(target, {...base, lifetime: '1000', idleTime: '1001'}).message).toContain('--idle-time')
        })

        it(`8. a project is ${machine.project_required ? 'required' : 'optional'}`, () => {
          const {project: _project, ...without} = base
          if (machine.project_required) {
            expect(rejection(target, without).message).toContain('--project')
            expect(plan(target, base).project).toBe('abc123')
          } else {
            expect(plan(target, without).project).toBeUndefined()
            expect(plan(target, {...without, project: 'p1'}).project).toBe('p1')
          }
        })

        const perNode = gpusPerNode(machine, queueName, base)
        if (perNode !== undefined) {
          it('9. GPUs: given (or all of a whole node), at most per node, all on a whole-node queue', () => {
            if (q.allocation === 'node') {
              expect(plan(target, {...base, gpus: undefined}).gpus?.perNode).toBe(perNode)
              if (perNode > 1) expect(rejection(target, {...base, gpus: String(perNode - 1)}).message).toContain('--gpus')
            } else {
              const {gpus: _gpus, ...without} = base
              expect(rejection(target, without).message).toContain('--gpus')
              expect(plan(target, {...base, gpus: String(perNode)}).gpus?.perNode).toBe(perNode)
            }
            expect(rejection(target, {...base, gpus: String(perNode + 1)}).message).toContain('--gpus')
          })
        } else {
          it('10. a queue without GPUs refuses --gpus', () => {
            expect(plan(target, base).gpus).toBeUndefined()
            expect(rejection(target, {...base, gpus: '1'}).message).toContain('--gpus')
          })
        }

        it('11. --gpu-type only where the queue offers a choice, and one of the choices', () => {
          if (q.gpu_types) {
            expect(rejection(target, {...base, gpuType: 'no-such-gpu'}).message).toMatch(/--gpu-type/)
            expect(plan(target, base).gpus?.type).toBe(q.gpu_types[0])
          } else {
            expect(rejection(target, {...base, gpuType: 'a100'}).message).toContain('--gpu-type')
          }
        })

        it('12. the queue goes to the batch system as a QoS on Perlmutter, a partition elsewhere', () => {
          const sent = plan(target, base).queueArgument
          if (machine.batch === 'htcondor') expect(sent).toEqual([])
          else expect(sent).toEqual([machine.key === 'perlmutter' ? '-q' : '-p', queueName])
        })
      })
    }
  })
}

describe('machine-specific rules', () => {
  it('Bridges-2 RM-shared and EM: memory follows CPUs; EM takes CPUs in multiples of 24', () => {
    expect(rejection('RM-shared@bridges2', {cpus: '4', memMb: '1000'}).message).toContain('--mem_mb')
    expect(plan('RM-shared@bridges2', {cpus: '4'}).cpus).toBe(4)
    expect(rejection('EM@bridges2', {cpus: '25'}).message).toMatch(/multiples of 24.*--cpus/)
    expect(plan('EM@bridges2', {cpus: '48'}).cpus).toBe(48)
    expect(rejection('EM@bridges2', {cpus: '24', memMb: '1000'}).message).toContain('--mem_mb')
  })

  it('Bridges-2 GPU: the type picks the shape; all 16 v100-32 GPUs means one 48-core node', () => {
    const sixteen = plan('GPU@bridges2', {gpus: 'v100-32:16'})
    expect([sixteen.queue.coresPerNode, sixteen.queue.ramPerNode, sixteen.queue.maxNodes]).toEqual([48, 1572864, 1])
    expect(sixteen.gpus).toMatchObject({perNode: 16, count: 16, flag: '--gpus', value: 'v100-32:16'})
    expect(rejection('GPU@bridges2', {gpus: 'v100-32:16', nodes: '2'}).message).toContain('--nodes')
    const eight = plan('GPU@bridges2', {gpuType: 'v100-32', nodes: '2'})
    expect([eight.queue.coresPerNode, eight.queue.ramPerNode, eight.gpus?.value]).toEqual([40, 524288, 'v100-32:16'])
    expect(plan('GPU@bridges2', {gpuType: 'v100-16'}).queue.ramPerNode).toBe(196608)
    const noType = rejection('GPU@bridges2', {})
    expect(noType.message).toMatch(/v100-32, v100-16.*--gpu-type/)
    expect(rejection('GPU@bridges2', {gpus: 'a100:8'}).message).toBe("Bridges-2 has no GPU type 'a100' on the 'GPU' queue (--gpus a100:8); its types: v100-32, v100-16. Change --gpus.")
    expect(rejection('GPU@bridges2', {gpus: 'v100-32:8', gpuType: 'v100-16'}).message).toContain('--gpu-type')
  })

  it('Bridges-2 GPU-shared: at most 4 GPUs, typed, no CPUs or memory', () => {
    expect(plan('GPU-shared@bridges2', {gpus: 'v100-16:4'}).gpus?.value).toBe('v100-16:4')
    expect(rejection('GPU-shared@bridges2', {gpus: 'v100-32:16'}).message).toMatch(/4 GPUs per node.*--gpus/)
    expect(rejection('GPU-shared@bridges2', {gpuType: 'v100-32'}).message).toContain('--gpus')
  })

  it('Perlmutter: the node shape follows --gpus; GPUs go per task with a gpu constraint', () => {
    const cpu = plan('regular@perlmutter', {project: 'm1234', nodes: '3072'})
    expect([cpu.queue.coresPerNode, cpu.queue.ramPerNode, cpu.constraint, cpu.gpus]).toEqual([128, 523776, 'cpu', undefined])
    const gpu = plan('regular@perlmutter', {project: 'm1234', gpus: '4', nodes: '2'})
    expect([gpu.queue.coresPerNode, gpu.queue.ramPerNode, gpu.queue.maxNodes, gpu.constraint]).toEqual([64, 262144, 1536, 'gpu'])
    expect(gpu.gpus).toMatchObject({flag: '--gpus-per-task', value: '4', count: 4})
    expect(rejection('regular@perlmutter', {project: 'm1234', gpus: '4', nodes: '1537'}).message).toContain('--nodes')
    expect(rejection('regular@perlmutter', {project: 'm1234', gpus: '2'}).message).toMatch(/all 4 GPUs.*--gpus/)
    expect(rejection('shared@perlmutter', {project: 'm1234', cpus: '2', gpus: '1'}).message).toMatch(/does not offer GPUs.*--gpus/)
    expect(plan('debug@perlmutter', {project: 'm1234', lifetime: '1800'}).queue.ramPerNode).toBe(524288)
  })

  it('Expanse: GPU counts per job; the gpu queue sends memory, defaulting to RAM/node', () => {
    const gpu = plan('gpu@expanse', {project: 'abc123', nodes: '2'})
    expect(gpu.gpus).toMatchObject({perNode: 4, count: 8, countPer: 'job', flag: '--gpus', value: '8'})
    expect(gpu.memMb).toBe(375808)
    const shared = plan('gpu-shared@expanse', {project: 'abc123', cpus: '10', gpus: '2'})
    expect([shared.gpus?.count, shared.memMb]).toEqual([2, undefined])
    expect(plan('compute@expanse', {project: 'abc123'}).memMb).toBeUndefined()
  })

  it('Anvil and Delta: GPUs per node', () => {
    expect(plan('gpu@anvil', {cpus: '32', gpus: '2', nodes: '3'}).gpus).toMatchObject({flag: '--gpus-per-node', value: '2', count: 2})
    expect(plan('gpuA100x4@delta', {project: 'bbka', memMb: '1024', gpus: '4'}).constraint).toBe('scratch')
  })
})

describe('the form of every field', () => {
  const ok = {cpus: '1'}
  it.each([
    ['--nodes', {nodes: '0'}],
    ['--nodes', {nodes: '-1'}],
    ['--nodes', {nodes: '1.5'}],
    ['--nodes', {nodes: 'two'}],
    ['--lifetime', {lifetime: '1h'}],
    ['--cpus', {cpus: '0'}],
    ['--mem_mb', {memMb: '1e3'}],
    ['--idle-time', {idleTime: ''}],
    ['--gpus', {gpus: '0'}],
    ['--gpus', {gpus: ':4'}],
    ['--project', {project: 'a b'}],
    ['--project', {project: 'x;rm -rf ~'}],
    ['--login-name', {loginName: '$(id)'}],
    ['--login-host', {loginHost: 'host;reboot'}],
    ['--login-host', {loginHost: '-oProxyCommand=sh'}],
    ['--owners', {owners: 'alice,bob carol'}],
    ['--owners', {owners: ','}],
    ['--pool', {pool: 'cm.example.org; true'}],
    ['--gpu-type', {gpuType: 'a100 x'}],
  ])('%s refuses %j', (flag, extra) => {
    expect(rejection('shared@anvil', {...ok, ...extra}).message).toContain(flag)
  })

  it('refuses annex names outside ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', () => {
    for (const name of ['-x', '.x', 'a b', 'a/b', "a'b", 'x'.repeat(65), '']) {
      expect(() => validateRequest(catalog, {name, target: 'wholenode@anvil'}, {defaultOwner: 'a'})).toThrow(/annex name/)
    }
    expect(validateRequest(catalog, {name: 'A.b_c-9', target: 'wholenode@anvil'}, {defaultOwner: 'a'}).annexName).toBe('A.b_c-9')
  })

  it('matches the system in any case, and by its name', () => {
    expect(plan('wholenode@ANVIL').system.key).toBe('anvil')
    expect(plan('RM@Bridges-2').system.key).toBe('bridges2')
    expect(plan('rm@bridges2').queue.name).toBe('RM')
  })

  it('explains a missing @: the queues of a system, or the list of systems', () => {
    expect(rejection('anvil').message).toMatch(/QUEUE@SYSTEM.*wholenode@anvil.*wholenode, wide, shared, gpu, gpu-debug \(default: wholenode\)/)
    expect(rejection('wholenode').message).toMatch(/QUEUE@SYSTEM.*systems: anvil, bridges2, delta, expanse, path-facility, perlmutter, spark/)
    expect(rejection('wholenode@nowhere').message).toMatch(/Unknown system 'nowhere'.*anvil/)
  })

  it('takes --gpus TYPE:N, and --gpu-type with --gpus N', () => {
    expect(plan('GPU@bridges2', {gpus: 'v100-16:8'}).gpus).toMatchObject({type: 'v100-16', perNode: 8})
    expect(plan('GPU@bridges2', {gpus: '8', gpuType: 'v100-16'}).gpus).toMatchObject({type: 'v100-16', perNode: 8})
  })

  it('fills the defaults: 1 node, 3600 s, 300 s idle, the user as owner, the system login host', () => {
    const p = plan('wholenode@anvil')
    expect([p.nodes, p.lifetime, p.idleTime, p.owners, p.login]).toEqual([1, 3600, 300, ['alice'], {host: 'anvil.rcac.purdue.edu', hostFromFlag: false}])
    const q = plan('wholenode@anvil', {owners: 'alice, bob', loginName: 'x-alice', loginHost: 'login03.anvil.rcac.purdue.edu'})
    expect([q.owners, q.login]).toEqual([['alice', 'bob'], {host: 'login03.anvil.rcac.purdue.edu', hostFromFlag: true, user: 'x-alice'}])
  })
})
