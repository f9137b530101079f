/** The loopback site's machine file (test/site/machines/sandbox.toml) passes the catalog as any machine does. */
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {runCli} from './helpers/cli.js'

const env = {HPC_ANNEX_MACHINES: join(import.meta.dirname, '..', 'site', 'machines')}

describe('the sandbox machine', () => {
  it('is found through HPC_ANNEX_MACHINES and plans a whole-node request on hpc', () => {
    const r = runCli(['create', 'x', 'compute@sandbox', '--nodes', '3', '--dry-run'], env)
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/3 nodes .* from the queue 'compute' on the system 'Loopback sandbox'/)
    expect(r.stdout).toMatch(/It would log in to hpc and submit: sbatch -p compute --nodes=3 --time=60\./)
  })

  it('has the site partitions\' limits', () => {
    expect(runCli(['create', 'x', 'compute@sandbox', '--nodes', '4', '--dry-run'], env).stderr).toMatch(/limited to 3 nodes/)
    expect(runCli(['create', 'x', 'debug@sandbox', '--lifetime', '3600', '--dry-run'], env).stderr).toMatch(/at most 1800 seconds/)
    const shared = runCli(['create', 'x', 'shared@sandbox', '--cpus', '1', '--dry-run'], env)
    expect(shared.stdout).toMatch(/sbatch -p shared --nodes=1 --cpus-per-task=1 --time=60\./)
  })
})
