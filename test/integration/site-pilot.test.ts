/**
 * The generated pilot path runs on the loopback site with the harness's test
 * HTCondor tarball: the real batch.slurm and pilot.sh (from create --dry-run
 * --emit) under real SLURM, and the condor_master test double advertising each
 * node into the fake condor tools' collector; condor_off ends the batch job.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {describeOnSite, runCommand, shareCollectorWithSite, site, type RunResult, type SiteInfo} from '../site/helpers.js'

const ROOT = join(import.meta.dirname, '..', '..')
const POOL = 'vm:9618?sock=ap_collector'

function ssh(s: SiteInfo, command: string, input?: string): Promise<RunResult> {
  return runCommand('ssh', ['-F', s.sshConfig, 'hpc', command], process.env, input)
}

/** `cat > NAME` of `text`, as a here-document that keeps every byte. */
function heredoc(name: string, text: string): string {
  const end = `HPC_ANNEX_TEST_EOF_${Math.random().toString(36).slice(2)}`
  return `cat > ${name} <<'${end}'\n${text}${text.endsWith('\n') ? '' : '\n'}${end}\n`
}

async function until<T>(what: string, get: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = await get()
    if (value !== undefined) return value
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 250))
  }
}

describeOnSite('pilots on the loopback site', () => {
  let s: SiteInfo
  let fake: FakeCondor
  let tmp: string
  let unshare: () => void = () => {}

  beforeAll(() => {
    s = site()
    fake = createFakeCondor()
    unshare = shareCollectorWithSite(fake.dir, s)
    tmp = mkdtempSync(join(tmpdir(), 'site-pilot-'))
  })
  afterAll(() => {
    unshare()
    fake?.cleanup()
    rmSync(tmp, {recursive: true, force: true})
  })

  it('three nodes join the annex collector, and condor_off ends the batch job', async () => {
    const emit = join(tmp, 'emit')
    const created = spawnSync(process.execPath, [join(ROOT, 'bin', 'run.js'), 'create', 'sitepilot', 'compute@sandbox', '--nodes', '3',
      '--dry-run', '--emit', emit, '--condor-tarball', s.condorTarball], {env: {...process.env, HPC_ANNEX_MACHINES: join(ROOT, 'test', 'site', 'machines')}, encoding: 'utf8'})
    expect(created.status, created.stderr).toBe(0)
    const env = {...process.env, ...fake.env}
    const token = spawnSync('condor_token_fetch', ['-file', join(tmp, 'token')], {env, encoding: 'utf8'})
    expect(token.status, token.stderr).toBe(0)
    const file = (name: string) => readFileSync(join(emit, name), 'utf8')

    // What the back-end does, by hand: the release from the tarball, secrets, pilot.sh prepare, sbatch.
    const setup = [
      'set -euo pipefail',
      `dir=$(mktemp -d ${s.scratch}/pilot-test.XXXXXX)`,
      'cd "$dir"',
      `tar -xzf ${s.condorTarball}`,
      'mv condor-test-*/ condor',
      heredoc('pilot.sh', file('pilot.sh')),
      heredoc('pilot.conf', file('pilot.conf')),
      heredoc('batch.slurm', file('batch.slurm')),
      'chmod 755 pilot.sh',
      'mkdir -m 0700 secrets',
      heredoc('secrets/token', readFileSync(join(tmp, 'token'), 'utf8')),
      'echo pool-password > secrets/password',
      'chmod 0600 secrets/*',
      './pilot.sh prepare "$dir"',
      'echo "$dir $(sbatch --parsable batch.slurm)"',
    ].join('\n')
    const submitted = await ssh(s, 'bash -s', setup)
    expect(submitted.stderr).toBe('')
    const [dir, jobId] = submitted.stdout.trim().split(' ')
    expect(jobId).toMatch(/^\d+$/)

    const slots = await until('three slot ads', () => {
      const r = spawnSync('condor_status', ['-json', '-pool', POOL, '-constraint', 'AnnexName == "sitepilot"'], {env, encoding: 'utf8'})
      const ads = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>[]) : []
      return ads.length === 3 ? ads : undefined
    })
    expect(slots.map(ad => ad.Machine).sort()).toEqual(['node1', 'node2', 'node3'])
    expect(slots[0]).toMatchObject({AnnexName: 'sitepilot', hpc_annex_request_id: 'dry-run#0.0#0', PartitionableSlot: true, Cpus: 2, AuthenticatedIdentity: `${fake.user}@vm`})

    const password = join(tmp, 'password')
    spawnSync('sh', ['-c', `echo x > ${password}`])
    const off = spawnSync('condor_off', ['-fast', '-annex-name', 'sitepilot', '-pool', POOL], {
      env: {...env, _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS: 'PASSWORD', _CONDOR_SEC_PASSWORD_FILE: password}, encoding: 'utf8'})
    expect(off.stdout.trim().split('\n')).toHaveLength(3)

    const state = await until('the batch job to end', async () => {
      const r = await ssh(s, `scontrol show job -o ${jobId}`)
      const m = /JobState=(\S+).*ExitCode=(\S+)/.exec(r.stdout)
      return m && !['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING'].includes(m[1]!) ? `${m[1]} ${m[2]}` : undefined
    })
    expect(state).toBe('COMPLETED 0:0')
    // batch.slurm kept each node's HTCondor log beside the pilot directory, then removed it
    const logs = await ssh(s, `cat ${dir}.logs/node*/MasterLog; test ! -e ${dir} && echo removed; rm -rf ${dir}.logs`)
    expect(logs.stdout.match(/advertised .* of annex "sitepilot"/g)).toHaveLength(3)
    expect(logs.stdout).toMatch(/removed\n$/)
  })
})
