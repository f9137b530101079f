/**
 * Running the built CLI against the loopback site: the fake condor tools as
 * the Access Point (their collector shared with the site's pilot double), the
 * sandbox machine file, and the site's ssh_config as the user's.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createFakeCondor, type FakeCondor, type FakeCondorOptions} from '../fixtures/fake-condor/index.mjs'
import {runCommand, shareCollectorWithSite, site, type RunResult, type SiteInfo} from '../site/helpers.js'

export {until} from '../site/helpers.js'

export const ROOT = join(import.meta.dirname, '..', '..')

export interface AnnexSite {
  s: SiteInfo
  fake: FakeCondor
  /** the Access Point user's HOME */
  home: string
  env: NodeJS.ProcessEnv
  cli(args: string[], extra?: NodeJS.ProcessEnv): Promise<RunResult>
  /** The CLI as a child process, for signals. */
  start(args: string[], extra?: NodeJS.ProcessEnv): ReturnType<typeof spawn>
  /** A command on the login node as hpcuser (the test's own ssh, not the tool's). */
  onSite(command: string): RunResult
  /** What a create may leave behind on the site: staging dirs, pilot dirs, hpcuser's batch jobs (by name). */
  leftovers(): Leftovers
  close(): void
}

export function annexSite(options: FakeCondorOptions = {}): AnnexSite {
  const s = site()
  const fake = createFakeCondor(options)
  fake.advertise({MyType: 'Scheduler', Name: 'ap.example.org', MyAddress: '<127.0.0.1:9618>'})
  const unshare = shareCollectorWithSite(fake.dir, s)
  const home = mkdtempSync(join(tmpdir(), 'annex-ap-'))
  mkdirSync(join(home, '.ssh'), {mode: 0o700})
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...fake.env,
    HOME: home,
    HPC_ANNEX_MACHINES: join(ROOT, 'test', 'site', 'machines'),
    HPC_ANNEX_SSH_CONFIG: s.sshConfig,
    SSH_AUTH_SOCK: '',
  }
  delete env.SSH_AUTH_SOCK
  const {onSite, leftovers, cancelAnnexJobs} = siteSide(s)
  return {
    s,
    fake,
    home,
    env,
    start: (args, extra = {}) => spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {env: {...env, ...extra}, stdio: ['pipe', 'pipe', 'pipe']}),
    cli: (args, extra = {}) => runCommand(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {...env, ...extra}),
    onSite,
    leftovers,
    close() {
      unshare()
      cancelAnnexJobs()
      fake.cleanup()
      rmSync(home, {recursive: true, force: true})
    },
  }
}

/** The site as the test (not the tool) sees it: commands as hpcuser over the test's own ssh, and what a create may leave. */
export function siteSide(s: SiteInfo) {
  const onSite = (command: string): RunResult => {
    const r = spawnSync('ssh', ['-F', s.sshConfig, 'hpc', command], {encoding: 'utf8'})
    return {code: r.status, stdout: r.stdout, stderr: r.stderr}
  }
  const list = (cmd: string) => onSite(cmd).stdout.split('\n').filter((l) => l.trim() !== '')
  return {
    onSite,
    leftovers: (): Leftovers => ({
      staging: list('ls -A ~/.hpc-annex/tmp 2>/dev/null'),
      pilots: list(`ls -A ${s.scratch} 2>/dev/null`),
      jobs: list('squeue --noheader --user="$(id -un)" --format=%j'),
    }),
    /** hpc-annex batch jobs only (named hpc-annex.<annex>.<request>), not other tests' jobs. */
    cancelAnnexJobs: () => onSite(`squeue --noheader --user="$(id -un)" --format='%i %j' | awk '$2 ~ /^hpc-annex\\./ {print $1}' | xargs -r scancel`),
  }
}

export interface Leftovers {
  staging: string[]
  pilots: string[]
  jobs: string[]
}

/** What is in `after` and was not in `before`: what a step left behind (other tests may share the site). */
export function added(before: Leftovers, after: Leftovers): Leftovers {
  const fresh = (b: string[], a: string[]) => a.filter((x) => !b.includes(x))
  return {staging: fresh(before.staging, after.staging), pilots: fresh(before.pilots, after.pilots), jobs: fresh(before.jobs, after.jobs)}
}

/**
 * A machine directory (made in `dir`) with `lenient`: the sandbox, but its
 * debug queue allows more time than SLURM's debug partition does, so sbatch
 * refuses such a request after every check of hpc-annex passed. Returns the
 * HPC_ANNEX_MACHINES value that adds it to the sandbox.
 */
export function lenientMachines(dir: string): string {
  const sandbox = readFileSync(join(ROOT, 'test', 'site', 'machines', 'sandbox.toml'), 'utf8')
  writeFileSync(join(dir, 'lenient.toml'), sandbox.replace(/(\[queues\.debug\][^[]*max_duration = )1800/, '$17200').replace('Loopback sandbox', 'Lenient sandbox'))
  return `${dir}:${join(ROOT, 'test', 'site', 'machines')}`
}
