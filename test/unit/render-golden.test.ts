import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join, relative} from 'node:path'

import {describe, expect, it} from 'vitest'

import type {RequestInput} from '../../src/catalog/index.js'
import type {ApContext} from '../../src/render/context.js'
import {renderFiles} from '../../src/backend/index.js'
import {planFor} from './render-helpers.js'

// Rendered files compared with test/fixtures/golden/; HPC_ANNEX_UPDATE_GOLDEN=1 rewrites them.
const golden = join(import.meta.dirname, '..', 'fixtures', 'golden')
const ap: ApContext = {
  requestId: 'ap.example.org#123.0#1700000000',
  collector: 'ap.example.org:9618?sock=ap_collector',
  scheddName: 'ap.example.org',
}

const cases: [string, string, Omit<RequestInput, 'name'>][] = [
  ['anvil-wholenode-2-nodes.slurm', 'batch.slurm', {target: 'wholenode@anvil', nodes: '2', lifetime: '7200'}],
  ['expanse-gpu.slurm', 'batch.slurm', {target: 'gpu@expanse', project: 'abc123', nodes: '2'}],
  ['perlmutter-regular-gpus.slurm', 'batch.slurm', {target: 'regular@perlmutter', project: 'm1234', gpus: '4', nodes: '3', lifetime: '1000'}],
  ['bridges2-gpu-v100-32-16.slurm', 'batch.slurm', {target: 'GPU@bridges2', gpus: 'v100-32:16'}],
  ['path-facility-cpu.sub', 'pilot.sub', {target: 'cpu@path-facility', cpus: '4', memMb: '8192', owners: 'alice,bob'}],
  ['expanse-gpu.pilot.conf', 'pilot.conf', {target: 'gpu@expanse', project: 'abc123', nodes: '2', owners: 'alice,bob'}],
  ['expanse-gpu.node-local.sh', 'node-local.sh', {target: 'gpu@expanse', project: 'abc123', nodes: '2'}],
]

describe('golden files', () => {
  it.each(cases)('%s', (fixture, file, input) => {
    const content = renderFiles(planFor(input), ap).find((f) => f.path === file)?.content
    expect(content).toBeDefined()
    const path = join(golden, fixture)
    if (process.env.HPC_ANNEX_UPDATE_GOLDEN === '1' || !existsSync(path)) {
      if (process.env.CI) throw new Error(`golden file ${fixture} is missing`)
      mkdirSync(golden, {recursive: true})
      writeFileSync(path, content!)
    }
    expect(content).toBe(readFileSync(path, 'utf8'))
  })

  it('carry what each system needs', () => {
    const read = (name: string) => readFileSync(join(golden, name), 'utf8')
    expect(read('anvil-wholenode-2-nodes.slurm')).toMatch(/^#SBATCH -p wholenode\n#SBATCH --nodes=2\n#SBATCH --ntasks=2\n/m)
    expect(read('anvil-wholenode-2-nodes.slurm')).toContain('#SBATCH -t 120\n')
    expect(read('anvil-wholenode-2-nodes.slurm')).toContain('srun -K0 -W0 -n 2 ')
    expect(read('expanse-gpu.slurm')).toContain('#SBATCH --mem=375808M\n#SBATCH --gpus=8\n')
    expect(read('expanse-gpu.slurm')).toContain('#SBATCH -A abc123\n')
    expect(read('perlmutter-regular-gpus.slurm')).toContain('#SBATCH -q regular\n')
    expect(read('perlmutter-regular-gpus.slurm')).toContain('#SBATCH --gpus-per-task=4\n')
    expect(read('perlmutter-regular-gpus.slurm')).toContain('#SBATCH -C gpu\n')
    expect(read('perlmutter-regular-gpus.slurm')).toContain('#SBATCH -t 17\n')
    expect(read('bridges2-gpu-v100-32-16.slurm')).toContain('#SBATCH --gpus=v100-32:16\n')
    expect(read('bridges2-gpu-v100-32-16.slurm')).toContain('#SBATCH -J hpc-annex.demo.ap.example.org_123.0_1700000000\n')
    expect(read('path-facility-cpu.sub')).toContain('+hpc_annex_request_id = "ap.example.org#123.0#1700000000"\n')
    expect(read('path-facility-cpu.sub')).toMatch(/request_cpus = 4\nrequest_memory = 8192\n/)
    expect(read('path-facility-cpu.sub')).toContain('requirements = GLIDEIN_Site =!= "FIU-PATH"\n')
    expect(read('expanse-gpu.pilot.conf')).toContain('START = $(START) && stringListMember(TARGET.Owner, "alice,bob")\n')
    expect(read('expanse-gpu.pilot.conf')).toContain('use feature:gpus\n')
    expect(read('expanse-gpu.pilot.conf')).toContain('SINGULARITY = $(PILOT_DIR)/singularity.sh\n')
  })
})

// npm test builds first: the built CLI renders from the templates precompiled at build time.
describe('the build\'s precompiled templates', () => {
  const root = join(import.meta.dirname, '..', '..')
  const dist = (path: string) => join(root, 'dist', path)

  it('hold every template as templates/ and metaknobs/ have it', async () => {
    const {precompiled} = (await import(dist('render/precompiled.js'))) as typeof import('../../src/render/precompiled.js')
    const sources = ['templates', 'metaknobs'].flatMap((folder) =>
      readdirSync(join(root, folder), {recursive: true, withFileTypes: true})
        .filter((entry) => entry.isFile() && !entry.name.endsWith('.sh'))
        .map((entry) => relative(root, join(entry.parentPath, entry.name))),
    )
    expect(sources).toContain('templates/partials/backend-common.hbs')
    expect([...precompiled.keys()].sort()).toEqual(sources.sort())
    for (const path of sources) expect(precompiled.get(path)?.source, path).toBe(readFileSync(join(root, path), 'utf8'))
  })

  it.each(cases)('render %s as the golden file has it', async (fixture, file, input) => {
    const built = (await import(dist('backend/index.js'))) as typeof import('../../src/backend/index.js')
    expect(built.renderFiles(planFor(input), ap).find((f) => f.path === file)?.content).toBe(readFileSync(join(golden, fixture), 'utf8'))
  })
})

describe('the pilot job on an HTCondor-batch system', () => {
  const pilotSub = (plan: ReturnType<typeof planFor>) => renderFiles(plan, ap).find((f) => f.path === 'pilot.sub')!.content

  it('takes its site policy from the machine file: requirements, container, disk per CPU, default size', () => {
    const plan = planFor({target: 'cpu@path-facility', memMb: '1024'})
    const policy = {requirements: 'GLIDEIN_Site =!= "X" && TARGET.HasSingularity', containerImage: 'docker://example.org/pilot:el9', containerOs: 'AlmaLinux9', diskPerCpuMb: 2000, defaultCpus: 2, defaultMemMb: 4096}
    const sub = pilotSub({...plan, pilotJob: policy})
    expect(sub).toContain('requirements = GLIDEIN_Site =!= "X" && TARGET.HasSingularity\n')
    expect(sub).toContain('+SingularityImage = "docker://example.org/pilot:el9"\n')
    expect(sub).toMatch(/request_cpus = 2\nrequest_memory = 1024\n.*\nrequest_disk = \$\(request_cpus\) \* 2000 \* 1024\n/)
    expect(pilotSub({...planFor({target: 'cpu@path-facility', cpus: '3'}), pilotJob: policy})).toContain('request_cpus = 3\nrequest_memory = 4096\n')
    // The release the pilots run is the build for the container's OS, whatever the login node runs.
    const backend = renderFiles({...plan, pilotJob: policy}, ap).find((f) => f.path === 'backend.sh')!.content
    expect(backend).toMatch(/^TARBALL_OS=\( 'AlmaLinux9' \)$/m)
    expect(renderFiles(plan, ap).find((f) => f.path === 'backend.sh')!.content).toMatch(/^TARBALL_OS=\( 'AlmaLinux8' \)$/m)

    // Without a policy: no requirements, no container, no disk request.
    const bare = pilotSub({...plan, pilotJob: {defaultCpus: 1, defaultMemMb: 2048}})
    expect(bare).not.toMatch(/^(requirements|\+SingularityImage|request_disk) /m)
    // A value that would end the submit line or expand a macro cannot.
    expect(() => pilotSub({...plan, pilotJob: {...policy, requirements: 'true\nexecutable = /bin/evil'}})).toThrow(/control character/)
    expect(pilotSub({...plan, pilotJob: {...policy, requirements: 'Memory > $(request_memory)'}})).toContain('requirements = Memory > $(DOLLAR)(request_memory)\n')
  })
})
