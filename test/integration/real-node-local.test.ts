/**
 * Job sandboxes on node-local disk, with real pilots: the sandbox machine
 * file's node_local_dir names one directory per SLURM node
 * ($SITE_DIR/local/$SLURMD_NODENAME, the nodes sharing this machine's /tmp),
 * a job run on the annex finds its $_CONDOR_SCRATCH_DIR there, `status
 * --json` tells where each pilot puts sandboxes, and `shutdown` leaves
 * nothing in them; a directory that is missing or smaller than the queue's
 * node_local_min_free_mb sends the pilot to shared scratch, said in its log.
 */
import {chownSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnRealHTCondor} from '../site/helpers.js'
import {expectContract} from '../fixtures/json-contract.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

interface Created {
  batchJobId: string
  pilotDir: string
}

describeOnRealHTCondor('job sandboxes on node-local disk', () => {
  let a: RealAnnexSite
  let local: string
  const suffix = `${process.pid}`
  beforeAll(() => {
    a = realAnnexSite()
    // What up.sh makes; a site brought up before it did gets them here (owned by the site's user, like scratch).
    local = join(dirname(a.s.scratch), 'local')
    const owner = statSync(a.s.scratch)
    for (const dir of [local, ...a.s.nodes.map((node) => join(local, node))]) {
      mkdirSync(dir, {recursive: true, mode: 0o755})
      chownSync(dir, owner.uid, owner.gid)
    }
  })
  afterAll(() => a?.close())

  async function create(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Created> {
    const r = await a.cli(['create', name, ...args, '--lifetime', '1800', '--condor-tarball', a.tarball, '--json'], env)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    return expectContract('create', r.stdout) as unknown as Created
  }

  const requestOf = async (name: string, nodes: number) =>
    until(`${nodes} pilots of ${name} to join`, async () => {
      const found = (await a.status(name)).find((x) => x.annexName === name)
      const request = found?.requestList[0]
      return request && request.pilots.length === nodes ? request : undefined
    }, 120_000)

  /** Shuts the annex down and waits for its batch job to end. */
  async function shutdown(name: string, batchJobId: string): Promise<void> {
    const off = await a.cli(['shutdown', name])
    expect(off.code, off.stderr).toBe(0)
    await until(`the pilots of ${name} to leave`, () => a.ads(name, 'master').length === 0, 90_000)
    await until(`batch job ${batchJobId} to end`, () => a.onSite(`squeue --noheader --jobs=${batchJobId} --format=%i 2>/dev/null`).stdout.trim() === '', 90_000)
  }

  it('runs each node\'s job sandboxes in that node\'s own local directory, and leaves nothing there after shutdown', async () => {
    const name = `local-${suffix}`
    // A job that tells where its sandbox is, seen from inside.
    const file = join(a.home, 'scratch-dir.sub')
    const out = join(a.home, 'scratch-dir.out')
    writeFileSync(
      file,
      [
        'executable = /bin/sh',
        `arguments = "-c 'echo $_CONDOR_SCRATCH_DIR; pwd -P; hostname; echo data > in-sandbox'"`,
        `output = ${out}`,
        `error = ${join(a.home, 'scratch-dir.err')}`,
        `log = ${join(a.home, 'scratch-dir.log')}`,
        'request_cpus = 1',
        'request_memory = 64',
        'request_disk = 1024',
        'should_transfer_files = YES',
        'queue',
        '',
      ].join('\n'),
    )
    chownSync(file, a.ap.uid, a.ap.gid)
    const submitted = await a.cli(['submit', file, '--annex-name', name, '--json'])
    expect(submitted.code, submitted.stderr).toBe(0)
    const cluster = String((JSON.parse(submitted.stdout) as {clusterId: number}).clusterId)

    const created = await create(name, ['compute@sandbox', '--nodes', '2'])
    const pilotName = created.pilotDir.split('/').pop()!

    // Each pilot advertises node-local sandboxes, each in its own node's directory.
    const request = await requestOf(name, 2)
    const nodes: string[] = []
    for (const pilot of request.pilots) {
      // The startd's name: <pilot directory>.<node>@<host>.
      const node = pilot.name.slice(`${pilotName}.`.length).split('@')[0]!
      expect(pilot.name).toBe(`${pilotName}.${node}@${node}`)
      expect(pilot.executeOn).toBe('node-local')
      expect(pilot.executeDir).toMatch(new RegExp(`^${local}/${node}/hpc-annex\\.${pilotName.replace('.', '\\.')}\\.${node}\\.[A-Za-z0-9]{6}$`))
      nodes.push(node)
    }
    expect(new Set(nodes).size).toBe(2)
    expect(new Set(request.pilots.map((p) => p.executeDir)).size).toBe(2)
    for (const ad of a.ads(name)) expect(ad.hpc_annex_execute_on).toBe('node-local')

    // The job's sandbox, as the job sees it, is under its node's local directory.
    await until('the job to complete', () => a.condor('condor_history', [cluster, '-af', 'JobStatus']).stdout.trim() === '4' || undefined, 120_000)
    const [scratchDir, cwd, host] = readFileSync(out, 'utf8').trim().split('\n')
    const execute = request.pilots.find((p) => p.name === `${pilotName}.${host}@${host}`)?.executeDir
    expect(execute, `no pilot on ${host}`).toBeDefined()
    expect(scratchDir!.startsWith(`${execute}/`), `${scratchDir} is not under ${execute}`).toBe(true)
    expect(cwd).toBe(scratchDir)

    const logs = await a.cli(['logs', name, '--lines', '5'])
    expect(logs.code, logs.stderr).toBe(0)
    for (const node of nodes) expect(logs.stdout).toContain(`==> ${node}: PilotLog <==\n`)
    expect(logs.stdout).toContain(`job sandboxes on node-local disk: ${local}/`)

    await shutdown(name, created.batchJobId)
    // Nothing of this annex is left on any node's local disk.
    for (const node of a.s.nodes) {
      const left = a.onSite(`ls -A ${local}/${node}`).stdout.split('\n').filter((entry) => entry.includes(pilotName))
      expect(left, node).toEqual([])
    }
  })

  it('falls back to shared scratch, and says why, when the local directory is missing or too small', async () => {
    // The sandbox machine, with a queue whose node-local directory does not exist and one that asks for more free space than any disk has.
    const machines = join(a.home, 'machines')
    mkdirSync(machines, {mode: 0o755})
    chownSync(machines, a.ap.uid, a.ap.gid)
    const sandbox = readFileSync(join(import.meta.dirname, '..', 'site', 'machines', 'sandbox.toml'), 'utf8')
    const machine = sandbox
      .replace('[queues.shared]\n', `[queues.shared]\nnode_local_dir = '${local}/missing-$SLURMD_NODENAME'\n`)
      .replace('[queues.debug]\n', '[queues.debug]\nnode_local_min_free_mb = 1000000000\n')
    expect(machine).not.toBe(sandbox)
    writeFileSync(join(machines, 'sandbox.toml'), machine)
    chownSync(join(machines, 'sandbox.toml'), a.ap.uid, a.ap.gid)
    const env = {HPC_ANNEX_MACHINES: machines}

    const missing = `missing-${suffix}`
    const small = `small-${suffix}`
    // create wants a job queued for the annex.
    await a.submitJob(missing)
    await a.submitJob(small)
    const [m, s] = await Promise.all([
      create(missing, ['shared@sandbox', '--cpus', '1', '--mem_mb', '512'], env),
      create(small, ['debug@sandbox', '--nodes', '1'], env),
    ])
    for (const [name, created, why] of [
      [missing, m, /missing-node\d does not exist/],
      [small, s, /has \d+ MB free, less than the 1000000000 MB needed \(node_local_min_free_mb\)/],
    ] as const) {
      const [pilot] = (await requestOf(name, 1)).pilots
      const node = pilot!.name.split('@').pop()!
      expect(pilot).toEqual({name: pilot!.name, executeOn: 'shared', executeDir: `${created.pilotDir}/hosts/${node}/execute`})
      const logs = await a.cli(['logs', name, '--lines', '5'], env)
      expect(logs.code, logs.stderr).toBe(0)
      expect(logs.stdout).toContain(`==> ${node}: PilotLog <==\n`)
      expect(logs.stdout).toMatch(new RegExp(`job sandboxes on shared scratch, ${created.pilotDir}/hosts/${node}/execute, not node-local disk: .*${why.source}`))
    }
    await Promise.all([shutdown(missing, m.batchJobId), shutdown(small, s.batchJobId)])
  })
})
