/**
 * Real HTCondor for the tests: the release tarball named by
 * HPC_ANNEX_TEST_HTCONDOR (a directory holding one, with its SHA256SUMS, or
 * the tarball itself), unpacked once under $SITE_DIR/htcondor/, and personal
 * pools run from it as Access Points by an unprivileged user.
 *
 * On the loopback site the "nodes" share this machine's kernel, so an Access
 * Point here differs from a real one in three ways, each said where it is set:
 * its annex collector is named by address (the site's nodes cannot resolve
 * this machine's name, like a real site's), its file-system authentication
 * directory is its own (else a pilot would get in as the site's user by
 * file system instead of by its token), and its ports are chosen free (test
 * runs of other checkouts may run their own).
 *
 * The benchmarks (bench/create.bench.js) run one too, with two options the
 * tests do not use: another account (`user`), and a network namespace
 * (`netns`, the workstation side of bench/net.sh's emulated link) that its
 * daemons and asApUser's tools enter.
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chownSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {basename, dirname, join, resolve} from 'node:path'

import {processGone, until} from './poll.js'
import {SITE_DIR} from './site-info.js'

/** The environment variable that names the HTCondor release the real tier runs. */
export const HTCONDOR_VAR = 'HPC_ANNEX_TEST_HTCONDOR'

/** The unprivileged account that runs the test Access Points and hpc-annex on them. */
export const AP_USER = 'annexap'

export interface HTCondorRelease {
  tarball: string
  sha256: string
  /** The unpacked tree (bin, sbin, lib, libexec, ...). */
  releaseDir: string
  /** From condor_version, e.g. "25.13.2". */
  version: string
}

/** The tarball HPC_ANNEX_TEST_HTCONDOR names, or why there is none. */
export function htcondorTarball(env: NodeJS.ProcessEnv = process.env): {tarball: string} | {reason: string} {
  const named = env[HTCONDOR_VAR]
  const howTo = `set ${HTCONDOR_VAR} to the directory of an HTCondor release tarball (e.g. ${HTCONDOR_VAR}=../shared/reference/htcondor npm test)`
  if (!named) return {reason: `${HTCONDOR_VAR} is not set: ${howTo}`}
  const path = resolve(named)
  if (!existsSync(path)) return {reason: `${HTCONDOR_VAR}=${named}: no such file or directory`}
  if (statSync(path).isFile()) return {tarball: path}
  const tarballs = readdirSync(path).filter((f) => /^condor-.*\.tar\.gz$/.test(f))
  if (tarballs.length !== 1) return {reason: `${HTCONDOR_VAR}=${named}: expected one condor-*.tar.gz there, found ${tarballs.length}`}
  return {tarball: join(path, tarballs[0]!)}
}

function sha256Of(path: string): Promise<string> {
  return new Promise((done, fail) => {
    const hash = createHash('sha256')
    createReadStream(path).on('error', fail).on('data', (chunk) => hash.update(chunk)).on('end', () => done(hash.digest('hex')))
  })
}

/**
 * Unpacks the tarball once (checked against a SHA256SUMS beside it, when there
 * is one) into $SITE_DIR/htcondor/<sha256 prefix>/, readable by everyone.
 */
export async function unpackRelease(tarball: string): Promise<HTCondorRelease> {
  const sha256 = await sha256Of(tarball)
  const sums = join(dirname(tarball), 'SHA256SUMS')
  if (existsSync(sums)) {
    const line = readFileSync(sums, 'utf8').split('\n').find((l) => l.trim().endsWith(` ${basename(tarball)}`))
    if (line && line.split(/\s+/)[0] !== sha256) throw new Error(`${tarball}: sha256 ${sha256} does not match ${sums}`)
  }
  const top = join(SITE_DIR, 'htcondor')
  const target = join(top, sha256.slice(0, 16))
  if (!existsSync(join(target, 'bin', 'condor_version'))) {
    const work = `${target}.unpacking.${process.pid}`
    rmSync(work, {recursive: true, force: true})
    mkdirSync(work, {recursive: true, mode: 0o755})
    execFileSync('tar', ['-xzf', tarball, '-C', work, '--strip-components=1', '--no-same-owner'])
    rmSync(target, {recursive: true, force: true})
    renameSync(work, target)
  }
  const printed = execFileSync(join(target, 'bin', 'condor_version'), {encoding: 'utf8', env: {...process.env, CONDOR_CONFIG: '/dev/null'}})
  const version = /\$CondorVersion: (\S+)/.exec(printed)?.[1]
  if (!version) throw new Error(`condor_version of ${target} printed no version: ${printed}`)
  return {tarball, sha256, releaseDir: target, version}
}

export interface AccessPoint {
  name: string
  /** LOCAL_DIR and the configuration live here; owned by the pool's user. */
  dir: string
  configFile: string
  /** Drop-in configuration read last (LOCAL_CONFIG_DIR). */
  configDir: string
  release: HTCondorRelease
  user: string
  uid: number
  gid: number
  /** The collector's (and shared port's) port on 127.0.0.1. */
  port: number
  /** Whether the configuration has `use feature:HPC_ANNEX`. */
  feature: boolean
  masterPid: number
  /** The network namespace (`ip netns`) it runs in, when not this machine's own. */
  netns?: string
}

/** The account for test Access Points: made once, unprivileged, not named condor. */
export function ensureApUser(user = AP_USER): {uid: number; gid: number; home: string} {
  if (spawnSync('id', ['-u', user]).status !== 0) execFileSync('useradd', ['-m', '-s', '/bin/bash', user])
  const [, , uid, gid, , home] = execFileSync('getent', ['passwd', user], {encoding: 'utf8'}).trim().split(':')
  return {uid: Number(uid), gid: Number(gid), home: home!}
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.on('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => done(port))
    })
  })
}

/** The environment that makes the HTCondor tools talk to this Access Point. */
export function apToolEnv(ap: AccessPoint, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const bin = `${join(ap.release.releaseDir, 'bin')}:${join(ap.release.releaseDir, 'sbin')}`
  return {...base, CONDOR_CONFIG: ap.configFile, PATH: `${bin}:${base.PATH ?? '/usr/bin:/bin'}`}
}

/**
 * A program run as the Access Point's user: with `uid`/`gid`, or, in a
 * network namespace, through `nsenter` (which must start as root), which
 * enters it and then takes the user's ids (and no supplementary groups).
 */
export function apUserCommand(ap: Pick<AccessPoint, 'uid' | 'gid' | 'netns'>, program: string, args: string[]): {command: string; args: string[]; ids: {uid?: number; gid?: number}} {
  if (ap.netns === undefined) return {command: program, args, ids: {uid: ap.uid, gid: ap.gid}}
  return {command: 'nsenter', args: [`--net=/run/netns/${ap.netns}`, '-S', String(ap.uid), '-G', String(ap.gid), program, ...args], ids: {}}
}

/** Runs an HTCondor tool (or any program) as the Access Point's user, to its end. */
export function asApUser(ap: AccessPoint, program: string, args: string[], options: {env?: NodeJS.ProcessEnv; input?: string; cwd?: string} = {}) {
  const run = apUserCommand(ap, program, args)
  const r = spawnSync(run.command, run.args, {
    env: options.env ?? apToolEnv(ap),
    ...run.ids,
    cwd: options.cwd ?? ap.dir,
    encoding: 'utf8',
    input: options.input ?? '',
    timeout: 60_000,
  })
  return {code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? ''}
}

function chownTree(path: string, uid: number, gid: number): void {
  execFileSync('chown', ['-R', `${uid}:${gid}`, path])
}

export interface AccessPointOptions {
  release: HTCondorRelease
  /** Names the directory: $SITE_DIR/ap/<pid>-<name>. */
  name?: string
  /** `use feature:HPC_ANNEX` (HTCondor's own annex configuration). */
  feature?: boolean
  /** Appended to the main configuration file. */
  extraConfig?: string
  /** The unprivileged account that runs it (made when missing); AP_USER unless said. */
  user?: string
  /** A network namespace (`ip netns`) to run it in; asApUser's tools enter it too. */
  netns?: string
}

/**
 * Starts a personal pool (collector, negotiator, schedd; with the feature, the
 * AP collector too) as its user (AP_USER unless said) and waits, boundedly,
 * until its schedd answers (and is in the annex collector).
 */
export async function startAccessPoint(options: AccessPointOptions): Promise<AccessPoint> {
  const {release, name = 'ap', feature = true, extraConfig = '', user = AP_USER, netns} = options
  const {uid, gid} = ensureApUser(user)
  const dir = join(SITE_DIR, 'ap', `${process.pid}-${name}`)
  rmSync(dir, {recursive: true, force: true})
  const local = join(dir, 'local')
  for (const sub of ['log', 'spool', 'execute', 'lock', 'run', 'config.d', 'tokens.d', 'passwords.d', 'fs']) mkdirSync(join(local, sub), {recursive: true})
  const port = await freePort()
  const configFile = join(dir, 'condor_config')
  writeFileSync(
    configFile,
    [
      `RELEASE_DIR = ${release.releaseDir}`,
      `LOCAL_DIR = ${local}`,
      'BIN = $(RELEASE_DIR)/bin',
      'SBIN = $(RELEASE_DIR)/sbin',
      'LIB = $(RELEASE_DIR)/lib',
      'LIBEXEC = $(RELEASE_DIR)/libexec',
      'LOG = $(LOCAL_DIR)/log',
      'SPOOL = $(LOCAL_DIR)/spool',
      'EXECUTE = $(LOCAL_DIR)/execute',
      'LOCK = $(LOCAL_DIR)/lock',
      'RUN = $(LOCAL_DIR)/run',
      'LOCAL_CONFIG_FILE =',
      'LOCAL_CONFIG_DIR = $(LOCAL_DIR)/config.d',
      'SEC_TOKEN_DIRECTORY = $(LOCAL_DIR)/tokens.d',
      'SEC_PASSWORD_DIRECTORY = $(LOCAL_DIR)/passwords.d',
      'use ROLE:Personal',
      `use SECURITY:recommended(${user})`,
      // A port of its own, so that runs of other checkouts can have theirs.
      `COLLECTOR_PORT = ${port}`,
      `SHARED_PORT_PORT = ${port}`,
      'SCHEDD_INTERVAL = 5',
      'NEGOTIATOR_INTERVAL = 2',
      'NEGOTIATOR_CYCLE_DELAY = 5',
      // The site's pilots share this kernel: file-system authentication must
      // not let them in as the site's user (only this pool's user can write here).
      'FS_LOCAL_DIR = $(LOCAL_DIR)/fs',
      ...(feature
        ? [
            'use feature:HPC_ANNEX',
            // The site's nodes cannot resolve this machine's name (a real site would not either): an address.
            'ANNEX_COLLECTOR = 127.0.0.1:$(SHARED_PORT_PORT)?sock=ap_collector',
          ]
        : []),
      extraConfig,
      '',
    ].join('\n'),
  )
  chownTree(dir, uid, gid)
  execFileSync('chmod', ['700', join(local, 'fs'), join(local, 'passwords.d'), join(local, 'tokens.d')])
  const ap: AccessPoint = {name, dir, configFile, configDir: join(local, 'config.d'), release, user, uid, gid, port, feature, masterPid: 0, ...(netns === undefined ? {} : {netns})}
  const run = apUserCommand(ap, join(release.releaseDir, 'sbin', 'condor_master'), ['-f'])
  const master = spawn(run.command, run.args, {
    env: apToolEnv(ap),
    ...run.ids,
    cwd: dir,
    detached: true,
    stdio: 'ignore',
  })
  master.unref()
  ap.masterPid = master.pid!
  writeFileSync(join(dir, 'master.pid'), `${master.pid}\n`)
  await until(`the schedd of the Access Point in ${dir}`, () => {
    if (master.exitCode !== null) throw new Error(`condor_master of ${dir} exited with status ${master.exitCode}; see ${join(local, 'log', 'MasterLog')}`)
    const pools = feature ? [[], ['-pool', annexCollectorOf(ap)]] : [[]]
    return pools.every((pool) => asApUser(ap, 'condor_status', [...pool, '-schedd', '-af', 'Name']).stdout.trim() !== '')
  }, 90_000)
  return ap
}

/** ANNEX_COLLECTOR as the pool's configuration says. */
export function annexCollectorOf(ap: AccessPoint): string {
  return asApUser(ap, 'condor_config_val', ['ANNEX_COLLECTOR']).stdout.trim()
}

/** Stops the pool (its master takes its daemons with it) and waits for the master to be gone. */
export async function stopAccessPoint(ap: AccessPoint, {remove = true} = {}): Promise<void> {
  try {
    process.kill(ap.masterPid, 'SIGQUIT')
  } catch {
    // already gone
  }
  try {
    await until('the Access Point to stop', () => processGone(ap.masterPid), 30_000)
  } catch {
    process.kill(ap.masterPid, 'SIGKILL')
  }
  if (remove) rmSync(ap.dir, {recursive: true, force: true})
}

/** A directory owned by the Access Point's user (a test user's HOME, say). */
export function apUserDir(path: string, ap: Pick<AccessPoint, 'uid' | 'gid'>): string {
  mkdirSync(path, {recursive: true, mode: 0o700})
  chownSync(path, ap.uid, ap.gid)
  return path
}
