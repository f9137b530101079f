// The benchmarks' Access Point: a personal pool from the real HTCondor
// release (test/site/htcondor.ts, as the integration tests run one), with
// `use feature:HPC_ANNEX`, run by an unprivileged account of its own inside
// the workstation namespace of bench/net.sh. So the Access Point and the tools
// that talk to it are on the measured side of the emulated link, as a user's
// workstation is, and the pilots on the site's nodes reach its annex
// collector across that link (at the namespace's address).
//
// Also here: what the benchmark watches on it without disturbing the
// measured command: the schedd's job queue log (the moment the batch job id
// lands in a state job) and the annex collector (all pilots advertised).
import {spawn} from 'node:child_process'
import {chownSync, closeSync, copyFileSync, mkdirSync, openSync, readFileSync, readSync, statSync, watch, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'

import {tsImport} from 'tsx/esm/api'

import {sleep} from './lib.js'

const here = dirname(fileURLToPath(import.meta.url))
const ROOT = join(here, '..')

/** The account that runs the benchmarks' Access Point (and both annex tools): not the tests' annexap. */
export const BENCH_USER = process.env.BENCH_AP_USER ?? 'annexbench'

/** test/site/htcondor.ts, loaded through tsx (the benchmarks are plain JavaScript). */
export function harness() {
  return tsImport(join(ROOT, 'test', 'site', 'htcondor.ts'), import.meta.url)
}

/** The release tarball: HPC_ANNEX_TEST_HTCONDOR as for the tests, else ../shared/reference/htcondor. */
export async function findRelease(log) {
  const h = await harness()
  const found = h.htcondorTarball({[h.HTCONDOR_VAR]: process.env[h.HTCONDOR_VAR] ?? join(ROOT, '..', 'shared', 'reference', 'htcondor')})
  if ('reason' in found) throw new Error(`the create benchmark runs real HTCondor: ${found.reason}`)
  const release = await h.unpackRelease(found.tarball)
  log(`HTCondor ${release.version} from ${found.tarball} (${statSync(found.tarball).size} bytes)`)
  return release
}

/**
 * Starts the Access Point in network namespace `netns`, where this machine is
 * `wsIp`. Its daemons advertise that address (the site's nodes reach it over
 * the link); ANNEX_COLLECTOR names it; no job is required before a create
 * (neither tool then needs one queued). Returns it with its user's home.
 */
export async function startBenchAccessPoint({release, netns, wsIp, log}) {
  const h = await harness()
  const account = h.ensureApUser(BENCH_USER)
  const ap = await h.startAccessPoint({
    release,
    name: 'bench',
    user: BENCH_USER,
    netns,
    extraConfig: [
      `# bench/access-point.js: on the workstation side of bench/net.sh's link, at ${wsIp}`,
      `NETWORK_INTERFACE = ${wsIp}`,
      `CONDOR_HOST = ${wsIp}`,
      'COLLECTOR_HOST = $(CONDOR_HOST):$(COLLECTOR_PORT)',
      'ANNEX_COLLECTOR = $(CONDOR_HOST):$(SHARED_PORT_PORT)?sock=ap_collector',
      'HPC_ANNEX_REQUIRE_JOB = False',
    ].join('\n'),
  })
  const collector = h.annexCollectorOf(ap)
  log(`Access Point (HTCondor ${release.version}) up as ${BENCH_USER} in ${netns}: ${ap.dir}, annex collector ${collector}`)
  return {ap, home: account.home, collector, stop: () => h.stopAccessPoint(ap)}
}

/** The environment of the Access Point's tools (and of the annex tools run on it). */
export function apEnv(ap, extra = {}) {
  const bin = `${join(ap.release.releaseDir, 'bin')}:${join(ap.release.releaseDir, 'sbin')}`
  return {
    PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
    LANG: 'C.UTF-8',
    CONDOR_CONFIG: ap.configFile,
    USER: ap.user,
    LOGNAME: ap.user,
    ...extra,
  }
}

/** [command, args] that run `program` as the Access Point's user in its namespace (as root: nsenter, then the user's ids). */
export function asUser(ap, program, args) {
  return ['nsenter', [`--net=/run/netns/${ap.netns}`, '-S', String(ap.uid), '-G', String(ap.gid), program, ...args]]
}

/** Runs a tool as the Access Point's user, without blocking the event loop; {code, stdout, stderr}. */
export function apTool(ap, program, args, {env, cwd} = {}) {
  return new Promise((resolve, reject) => {
    const [command, argv] = asUser(ap, program, args)
    const child = spawn(command, argv, {env: env ?? apEnv(ap), cwd: cwd ?? ap.dir, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

/** A file or directory owned by the Access Point's user. */
export function giveToUser(ap, path) {
  chownSync(path, ap.uid, ap.gid)
  return path
}

/**
 * The site's ssh client configuration for the Access Point's user: key and
 * known_hosts copied where it can read them, the host as seen from the
 * namespace (`sshConfig` and `knownHosts` are the harness's netns versions).
 * Written to `dir` (its ~/.ssh: HTCondor's tool reads ~/.ssh/config, found
 * through the passwd entry, and hpc-annex is given the same file).
 */
export function userSshConfig(ap, dir, {sshConfig, knownHosts, keyFile}) {
  mkdirSync(dir, {recursive: true, mode: 0o700})
  giveToUser(ap, dir)
  const key = join(dir, 'bench_id_ed25519')
  const hosts = join(dir, 'bench_known_hosts')
  copyFileSync(keyFile, key)
  copyFileSync(knownHosts, hosts)
  const config = join(dir, 'config')
  writeFileSync(
    config,
    `# Written by hpc-annex's bench/create.bench.js: the loopback site over bench/net.sh's link.\n${readFileSync(sshConfig, 'utf8')
      .replace(/^(\s*IdentityFile\s+).*$/gm, `$1${key}`)
      .replace(/^(\s*UserKnownHostsFile\s+).*$/gm, `$1${hosts}`)}`,
    {mode: 0o600},
  )
  for (const f of [key, hosts, config]) giveToUser(ap, f)
  return config
}

/**
 * Watches the schedd's job queue log (SPOOL/job_queue.log) for the
 * transactions that set a state job's hpc_annex_* attributes, and notes when
 * each arrived (performance.now(), through inotify): the moment the batch job
 * id is in the state job, whichever tool put it there (condor_qedit or the
 * Python bindings both end in this log).
 */
export function watchJobQueue(ap) {
  const file = join(ap.dir, 'local', 'spool', 'job_queue.log')
  const events = []
  let inode = statSync(file).ino
  let offset = statSync(file).size
  let rest = ''
  const read = () => {
    const info = statSync(file, {throwIfNoEntry: false})
    if (!info) return
    if (info.ino !== inode || info.size < offset) {
      // Rewritten (the schedd compacts its log): what was set before is in the new file again; skip it.
      inode = info.ino
      offset = info.size
      rest = ''
      return
    }
    if (info.size === offset) return
    const at = performance.now()
    const buffer = Buffer.alloc(info.size - offset)
    const fd = openSync(file, 'r')
    try {
      readSync(fd, buffer, 0, buffer.length, offset)
    } finally {
      closeSync(fd)
    }
    offset = info.size
    const lines = (rest + buffer.toString('utf8')).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      const m = /^103 (\d+)\.(-?\d+) (hpc_annex_[A-Za-z_]+) (.*)$/.exec(line)
      if (m) events.push({at, cluster: m[1], attribute: m[3], value: m[4].replace(/^"(.*)"$/, '$1')})
    }
  }
  const watcher = watch(dirname(file), read)
  return {
    /** The first time `attribute` was set after `since` (performance.now()), with its job; undefined if not (yet). */
    first(attribute, since) {
      read()
      return events.find((e) => e.attribute === attribute && e.at >= since)
    },
    /** The values set on one cluster's state job. */
    values(cluster) {
      return Object.fromEntries(events.filter((e) => e.cluster === cluster).map((e) => [e.attribute, e.value]))
    },
    close: () => watcher.close(),
  }
}

/**
 * Polls the annex collector (every `everyMs`) until `nodes` machines of the
 * annex `name` have advertised a slot; returns the start of the poll that saw
 * them (performance.now()), or undefined after `timeoutMs`.
 */
export async function untilPilotsAdvertised(ap, collector, name, nodes, {everyMs = 100, timeoutMs = 180_000} = {}) {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    const at = performance.now()
    const r = await apTool(ap, 'condor_status', ['-pool', collector, '-constraint', `AnnexName == "${name}"`, '-af', 'Machine'])
    if (r.code === 0 && new Set(r.stdout.split('\n').filter((l) => l.trim() !== '')).size >= nodes) return at
    await sleep(Math.max(0, everyMs - (performance.now() - at)))
  }
  return undefined
}
