/**
 * Running the built CLI as an Access Point's user would: on this run's real
 * HTCondor Access Point (test/site/htcondor.ts, run as its unprivileged user),
 * against the loopback site, whose SLURM runs real pilots from the same
 * HTCondor release.
 */
import {spawn} from 'node:child_process'
import {chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {StatusOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'
import {annexCollectorOf, apToolEnv, apUserDir, asApUser, type AccessPoint} from '../site/htcondor.js'
import {realAccessPoint, runCommand, site, type RunResult, type SiteInfo} from '../site/helpers.js'
import {ROOT, siteSide, type Leftovers} from './annex-site.js'

export {until} from '../site/helpers.js'

export interface RealAnnexSite {
  s: SiteInfo
  ap: AccessPoint
  /** The release tarball the pilots run (--condor-tarball). */
  tarball: string
  /** The Access Point user's HOME for this test file. */
  home: string
  env: NodeJS.ProcessEnv
  collector: string
  /** hpc-annex as the Access Point's user. */
  cli(args: string[], extra?: NodeJS.ProcessEnv): Promise<RunResult>
  /** hpc-annex as a child process, for signals and prompts. */
  start(args: string[], extra?: NodeJS.ProcessEnv): ReturnType<typeof spawn>
  /** `hpc-annex status [NAME] --json`: the annexes it reports. */
  status(name?: string): Promise<StatusOutput['annexes']>
  /** A real HTCondor tool as the Access Point's user. */
  condor(tool: string, args: string[], input?: string): RunResult
  /** `hpc-annex submit` of a job that prints its host name and sleeps `seconds`, for the annex `name`; its cluster id. */
  submitJob(name: string, seconds?: number): Promise<string>
  /** The annex collector's slot ads (or master ads) of the annex `name`. */
  ads(name: string, kind?: 'slot' | 'master'): Record<string, unknown>[]
  /** The Access Point user's jobs (state jobs and the jobs for annexes). */
  jobs(constraint?: string): Record<string, unknown>[]
  onSite(command: string): RunResult
  leftovers(): Leftovers
  close(): void
}

/** The site's ssh_config, key and known_hosts, copied where the Access Point's user can read them. */
function sshConfigFor(ap: AccessPoint, s: SiteInfo): string {
  const dir = apUserDir(join(ap.dir, 'ssh'), ap)
  const config = join(dir, 'ssh_config')
  if (!existsSync(config)) {
    copyFileSync(s.keyFile, join(dir, 'id_ed25519'))
    copyFileSync(s.knownHosts, join(dir, 'known_hosts'))
    writeFileSync(config, readFileSync(s.sshConfig, 'utf8').replaceAll(s.keyFile, join(dir, 'id_ed25519')).replaceAll(s.knownHosts, join(dir, 'known_hosts')))
    for (const f of ['id_ed25519', 'known_hosts', 'ssh_config']) chownSync(join(dir, f), ap.uid, ap.gid)
  }
  return config
}

/** hpc-annex on `ap`: by default this run's Access Point (with `use feature:HPC_ANNEX`), or one a test started itself. */
export function realAnnexSite(ap: AccessPoint | undefined = realAccessPoint()): RealAnnexSite {
  if (!ap) throw new Error('the real-HTCondor tier is not running (see the global setup warning)')
  const s = site()
  const home = apUserDir(mkdtempSync(join(ap.dir, 'home-')), ap)
  const env: NodeJS.ProcessEnv = {
    ...apToolEnv(ap),
    HOME: home,
    USER: ap.user,
    LOGNAME: ap.user,
    HPC_ANNEX_MACHINES: join(ROOT, 'test', 'site', 'machines'),
    HPC_ANNEX_SSH_CONFIG: sshConfigFor(ap, s),
  }
  delete env.SSH_AUTH_SOCK
  const as = {uid: ap.uid, gid: ap.gid, cwd: home}
  const {onSite, leftovers, cancelAnnexJobs} = siteSide(s)
  const collector = annexCollectorOf(ap)
  const condor = (tool: string, args: string[], input?: string) => asApUser(ap, tool, args, {env, cwd: home, ...(input === undefined ? {} : {input})})
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCommand(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {...env, ...extra}, undefined, as)
  const json = (r: RunResult, what: string): Record<string, unknown>[] => {
    if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}`)
    return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as Record<string, unknown>[])
  }
  let jobNumber = 0
  return {
    s,
    ap,
    tarball: ap.release.tarball,
    home,
    env,
    collector,
    cli,
    start: (args, extra = {}) =>
      spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {env: {...env, ...extra}, ...as, stdio: ['pipe', 'pipe', 'pipe']}),
    condor,
    async status(name) {
      const r = await cli(['status', ...(name === undefined ? [] : [name]), '--json'])
      if (r.code !== 0) throw new Error(`hpc-annex status failed (${r.code}): ${r.stderr}`)
      return (expectContract('status', r.stdout) as StatusOutput).annexes
    },
    async submitJob(name, seconds = 0) {
      jobNumber += 1
      const file = join(home, `job-${name}-${jobNumber}.sub`)
      writeFileSync(
        file,
        [
          'executable = /bin/sh',
          `arguments = "-c 'hostname; sleep ${seconds}'"`,
          `output = ${join(home, `job-${name}-${jobNumber}.out`)}`,
          `error = ${join(home, `job-${name}-${jobNumber}.err`)}`,
          `log = ${join(home, `job-${name}-${jobNumber}.log`)}`,
          'request_cpus = 1',
          'request_memory = 64',
          'request_disk = 1024',
          'should_transfer_files = YES',
          'queue',
          '',
        ].join('\n'),
      )
      chownSync(file, ap.uid, ap.gid)
      const r = await cli(['submit', file, '--annex-name', name, '--json'])
      if (r.code !== 0) throw new Error(`hpc-annex submit failed (${r.code}): ${r.stderr}`)
      return String((JSON.parse(r.stdout) as {clusterId: number | string}).clusterId)
    },
    ads: (name, kind = 'slot') => json(condor('condor_status', [...(kind === 'master' ? ['-master'] : []), '-pool', collector, '-constraint', `AnnexName == "${name}"`, '-json']), 'condor_status'),
    jobs: (constraint = 'true') => json(condor('condor_q', ['-constraint', constraint, '-json']), 'condor_q'),
    onSite,
    leftovers,
    close() {
      condor('condor_rm', ['-all'])
      cancelAnnexJobs()
      rmSync(home, {recursive: true, force: true})
    },
  }
}
