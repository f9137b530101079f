/**
 * Vitest global setup of the `integration` project: brings the loopback site
 * up (test/site/up.sh) before the tests and down (down.sh) after them, unless
 * SITE_KEEP=1. Needs root and the Debian packages of test/site/install.sh.
 * Without them: under CI=true the run fails; otherwise a warning is printed
 * and the tests written with `describeOnSite` are skipped. SITE_DISABLE=1 acts
 * as if the site could not be made (a quick run without it).
 *
 * Several runs may share the one site of a machine: each registers its pid in
 * $SITE_DIR/users/ (test/site/users.sh), and the last one to finish takes
 * the site down.
 */
import {spawnSync} from 'node:child_process'
import {closeSync, existsSync, openSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {TestProject} from 'vitest/node'
import {AP_USER, ensureApUser, htcondorTarball, startAccessPoint, stopAccessPoint, unpackRelease, type AccessPoint} from './htcondor.js'
import {SITE_DIR, siteUsers} from './site-info.js'

const HERE = dirname(fileURLToPath(import.meta.url))

/** What up.sh needs on the machine (test/site/install.sh installs it). */
export const REQUIRED_FILES = [
  '/usr/sbin/sshd',
  '/usr/bin/ssh',
  '/usr/bin/ssh-keygen',
  '/usr/bin/oathtool',
  '/lib/x86_64-linux-gnu/security/pam_google_authenticator.so',
  '/usr/sbin/munged',
  '/usr/sbin/slurmctld',
  '/usr/sbin/slurmd',
  '/usr/bin/sbatch',
]

export function siteUnavailableReason(): string | undefined {
  if (process.env.SITE_DISABLE === '1') return 'SITE_DISABLE=1 turns the loopback site off'
  if (process.platform !== 'linux') return `the loopback site needs Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'the loopback site needs root (run the tests as root)'
  const missing = REQUIRED_FILES.filter(f => !existsSync(f))
  if (missing.length > 0) return `missing ${missing.join(', ')}: run test/site/install.sh as root`
  return undefined
}

function runScript(script: string, args: string[] = []): void {
  const logFile = join(tmpdir(), `hpc-annex-site-${script.replace(/\.sh$/, '')}.log`)
  const fd = openSync(logFile, 'w')
  // The daemons inherit up.sh's stdout/stderr: a file, never a pipe vitest would wait on.
  const r = spawnSync('bash', [join(HERE, script), ...args], {stdio: ['ignore', fd, fd], env: process.env})
  closeSync(fd)
  if (r.status !== 0) {
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n')
    throw new Error(`test/site/${script} failed (exit ${r.status ?? r.signal}); log ${logFile}:\n${tail}`)
  }
}

/**
 * The real-HTCondor tier: the release HPC_ANNEX_TEST_HTCONDOR names, unpacked
 * once, and an Access Point (a personal pool with `use feature:HPC_ANNEX`)
 * run from it for this run. Without the variable the tier is skipped with a
 * plain warning; under CI=true that fails the run.
 */
async function startRealTier(project: TestProject): Promise<AccessPoint | undefined> {
  const found = htcondorTarball()
  if ('reason' in found) {
    if (process.env.CI === 'true') throw new Error(`the real-HTCondor integration tests must run under CI, but ${found.reason}`)
    console.warn(`\n[htcondor] WARNING: the real-HTCondor tests did NOT run: ${found.reason}.\n`)
    project.provide('HTCONDOR_AP', '')
    project.provide('HTCONDOR_UNAVAILABLE_REASON', found.reason)
    return undefined
  }
  const t0 = Date.now()
  // hpc-annex runs as the Access Point's unprivileged user: it must be able to read this checkout.
  const {uid, gid} = ensureApUser()
  const cli = join(HERE, '..', '..', 'bin', 'run.js')
  if (spawnSync('test', ['-r', cli], {uid, gid}).status !== 0) {
    throw new Error(`the real-HTCondor tests run hpc-annex as the user ${AP_USER}, who cannot read ${cli}: put the checkout where other users can read it`)
  }
  const release = await unpackRelease(found.tarball)
  const ap = await startAccessPoint({release})
  console.log(`[htcondor] HTCondor ${release.version} (${found.tarball}): Access Point up in ${Date.now() - t0} ms (${ap.dir}, port ${ap.port})`)
  project.provide('HTCONDOR_AP', JSON.stringify(ap))
  project.provide('HTCONDOR_UNAVAILABLE_REASON', '')
  return ap
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const reason = siteUnavailableReason()
  if (reason !== undefined) {
    if (process.env.CI === 'true') throw new Error(`integration tests need the loopback site, but ${reason}`)
    console.warn(`\n[site] WARNING: ${reason}; the integration tests are SKIPPED.\n`)
    project.provide('SITE_AVAILABLE', false)
    project.provide('SITE_UNAVAILABLE_REASON', reason)
    project.provide('SITE_RUN_PID', process.pid)
    project.provide('HTCONDOR_AP', '')
    project.provide('HTCONDOR_UNAVAILABLE_REASON', reason)
    return undefined
  }
  const t0 = Date.now()
  runScript('up.sh')
  siteUsers('add', String(process.pid), 'vitest')
  console.log(`[site] up in ${Date.now() - t0} ms (${SITE_DIR})`)
  project.provide('SITE_AVAILABLE', true)
  project.provide('SITE_UNAVAILABLE_REASON', '')
  project.provide('SITE_RUN_PID', process.pid)
  let ap: AccessPoint | undefined
  try {
    ap = await startRealTier(project)
  } catch (error) {
    siteUsers('remove', String(process.pid))
    throw error
  }
  return async () => {
    if (ap) await stopAccessPoint(ap)
    siteUsers('remove', String(process.pid))
    if (process.env.SITE_KEEP === '1') return
    const others = siteUsers('live')
    if (others.length > 0) {
      console.log(`[site] left up for other test runs (pids ${others.join(', ')})`)
      return
    }
    runScript('down.sh')
  }
}
