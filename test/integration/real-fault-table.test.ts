/**
 * The fault table of a create, a row each, on real HTCondor and the loopback
 * site, sharing one Access Point and one set of machine files. Each row
 * injects one fault, then checks both sides: no state job, no batch job, no
 * pilot directory, no temporary directory on the login node, no token or
 * password file there, the local token deleted; one `Error:` line naming the
 * step and what was undone; the documented exit status; and the same request
 * succeeding right after.
 *
 * Faults are injected as the other tests do: a wrapper in front of one
 * HTCondor tool (FAULT_TOOL, and FAULT_MATCH among its arguments) that fails
 * or holds; a machine file whose shell_fragment or pilot_dir_fragment breaks
 * one back-end step (exit codes 10-21); the user's ssh configuration; a pty
 * for the 2FA question; signals at three points.
 *
 * Rows tested elsewhere, not repeated here: the upload dropped or
 * interrupted (create-failures); a stalled upload, SIGHUP (a closed terminal)
 * and SIGTERM while the back-end works, the batch job's id not recorded on
 * the state job, two creates of one name, and SIGKILL at three points
 * followed by the next run's sweep (real-faults); a value the files cannot
 * carry, refused when they are rendered, and the create undone (unit:
 * render-backend and create-flow; no user input reaches it past the
 * request's validation).
 */
import {execFileSync, spawn} from 'node:child_process'
import {chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, expect, it} from 'vitest'

import {BACKEND_FAILURES} from '../../src/backend/protocol.js'
import {apUserDir} from '../site/htcondor.js'
import {describeOnRealHTCondor} from '../site/helpers.js'
import {ROOT} from './annex-site.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

/** A word for `sh -c` that stands for exactly `text`. */
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

interface Created {
  batchJobId: string
  stateJobId: string
  pilotDir: string
}

interface Outcome {
  code: number | null
  stderr: string
}

/** One row: how the fault is made, and what the user is told. */
interface Row {
  row: string
  /** The machine (a key of the machine files below); default ft. */
  system?: string
  /** Default compute. */
  queue?: string
  /** Arguments after `create NAME compute@SYSTEM`; default: one node, 30 minutes, the release tarball. */
  args?: () => string[]
  env?: () => NodeJS.ProcessEnv
  /** Made before the run; undone before the same request runs again. */
  setup?: (name: string) => Promise<void> | void
  undo?: (name: string) => void
  /** How the run goes (default: to its end, without a terminal). */
  drive?: (name: string, args: string[], env: NodeJS.ProcessEnv) => Promise<Outcome>
  exit: number
  /** The one Error: line. */
  error: (name: string) => RegExp
  /** What the line must say was undone (in its `(undone: ...)`), and must not. */
  undone?: string[]
  notUndone?: string[]
  /** What hpc-annex could not undo, the back-end on the login node withdrew by itself. */
  withdrawnOnLoginNode?: boolean
}

const STATE = 'removed the state job'
const TOKEN = 'deleted the local token'

describeOnRealHTCondor('the fault table of a create: every row leaves nothing and the same request then succeeds', () => {
  let a: RealAnnexSite
  let area: string
  let machines: string
  let wrappers: string
  let ssh: string
  let tokenDir: string
  let hold: string
  let run = 0
  const cacheObjects: string[] = []
  // A download server on loopback with tarballs but no checksum files (404).
  let emptyTree: Server | undefined

  beforeAll(async () => {
    emptyTree = createServer((request, response) => (request.url?.endsWith('.tar.gz') ? response.writeHead(200).end('not a tarball') : response.writeHead(404).end()))
    await new Promise<void>((resolve) => emptyTree!.listen(0, '127.0.0.1', resolve))
    const emptyTreeUrl = `http://127.0.0.1:${(emptyTree.address() as AddressInfo).port}/tarball/`
    a = realAnnexSite()
    const siteUid = Number(execFileSync('id', ['-u', a.s.user], {encoding: 'utf8'}).trim())
    area = join(a.s.scratch, `fault-table-${process.pid}`)
    for (const dir of [area, join(area, 'pilots')]) {
      mkdirSync(dir, {recursive: true})
      chownSync(dir, siteUid, siteUid)
    }
    hold = join(a.home, 'hold')

    // The machine files: the sandbox, its pilot directories in this file's corner of the scratch,
    // each with the fault of a back-end step.
    machines = mkdtempSync(join(a.home, 'machines-'))
    chmodSync(machines, 0o755)
    const sandbox = readFileSync(join(ROOT, 'test', 'site', 'machines', 'sandbox.toml'), 'utf8')
    const machine = (key: string, edit: (text: string) => string = (t) => t, fragments: {shell?: string; pilotDir?: string} = {}) => {
      const lines = [`scratch = '${join(area, 'pilots')}'`]
      if (fragments.shell) lines.push(`shell_fragment = '''`, fragments.shell, `'''`)
      if (fragments.pilotDir) lines.push(`pilot_dir_fragment = '''`, fragments.pilotDir, `'''`)
      const text = sandbox.replace('Loopback sandbox', `Fault table ${key}`).replace(/^scratch = .*$/m, () => lines.join('\n'))
      writeFileSync(join(machines, `${key}.toml`), edit(text))
    }
    const zeros = '0'.repeat(64)
    machine('ft')
    machine('ft-bundle', undefined, {shell: 'rm -f -- "$BUNDLE_DIR/launcher.sh"'})
    machine('ft-squeue', undefined, {shell: "squeue() { echo 'squeue: error: Unable to contact slurm controller (connect failure)' >&2; return 1; }"})
    machine('ft-scratch', (t) => t.replace(/^scratch = .*$/m, "scratch = '/proc/hpc-annex-no-scratch'"))
    machine('ft-os', (t) => t.replace(/^os = .*$/m, 'os = ["AlmaLinux9"]'))
    // A pinned version and sha256 from a server that does not answer.
    machine('ft-download', (t) => t.replace(/^os = .*$/m, (m) => `${m}\nversion = "25.0.4"\nurl = "https://127.0.0.1:9/condor-{version}-{os}.tar.gz"\nsha256 = {Debian12 = "${zeros}"}`))
    // No pin, and a download tree that publishes the tarball but no checksum.
    machine('ft-unpublished', (t) => t.replace(/^os = .*$/m, (m) => `${m}\nurl_base = "${emptyTreeUrl}"`))
    // What arrives is recorded as hashing to zeros, as if damaged on the way (it arrives after the scripts).
    machine('ft-checksum', undefined, {
      shell: [
        'eval "$(declare -f receive_objects | sed 1s/receive_objects/ft_receive_objects/)"',
        `receive_objects() { ft_receive_objects; for f in "$BUNDLE_DIR"/condor/*.sha256; do printf '%s  -\\n' ${zeros} > "$f"; done; }`,
      ].join('\n'),
    })
    machine('ft-populate', undefined, {shell: 'mkdir() { case " $* " in *"/secrets "*) return 1 ;; esac; command mkdir "$@"; }'})
    machine('ft-setup', undefined, {pilotDir: 'false'})
    machine('ft-refused', (t) => t.replace(/(\[queues\.debug\][^[]*max_duration = )1800/, '$17200'))
    // sbatch submits, but prints no job id.
    machine('ft-noid', undefined, {shell: "sbatch() { command sbatch \"$@\" >/dev/null || return; echo 'Submitted, somewhere'; }"})
    // sbatch submits; then the connection to the login node is lost (its sshd session killed outright).
    machine('ft-lost', undefined, {
      shell: [
        'sbatch() {',
        '    local out p',
        '    out=$(command sbatch "$@") || return',
        '    p=$$',
        '    while [ "$p" -gt 1 ]; do',
        '        case $(tr "\\0" " " < "/proc/$p/cmdline") in sshd*@notty*) kill -9 "$p"; break ;; esac',
        "        p=$(awk '{print $4}' \"/proc/$p/stat\")",
        '    done',
        // Until it has ended (a zombie's descriptors are closed): the connection is gone before the job id is reported.
        '    n=0; while [ "$n" -lt 200 ] && [ -e "/proc/$p" ] && [ "$(awk \'{print $3}\' "/proc/$p/stat" 2>/dev/null)" != Z ]; do sleep 0.05; n=$((n + 1)); done',
        '    printf "%s\\n" "$out"',
        '}',
      ].join('\n'),
    })
    // The release unpacks only once SLURM holds the request's batch job (unpacking runs beside the submission).
    machine('ft-late-unpack', undefined, {
      shell: [
        'tar() {',
        '    if [ "$1" = -xzf ] && [ "$2" != - ]; then',
        '        n=0; until [ -n "$(squeue --noheader --user="$(id -un)" --name="$JOB_NAME" --format=%i)" ] || [ "$n" -ge 1200 ]; do sleep 0.05; n=$((n + 1)); done',
        '    fi',
        '    command tar "$@"',
        '}',
      ].join('\n'),
    })
    // The back-end waits in its pilot directory while the hold file is there.
    machine('ft-held', undefined, {pilotDir: `echo "$$" > "$PILOT_DIR/.held"\nn=0; while [ -e '${join(area, 'hold')}' ] && [ "$n" -lt 2400 ]; do sleep 0.25; n=$((n + 1)); done`})

    // One wrapper for every HTCondor tool hpc-annex runs: FAULT_TOOL fails (or, with FAULT_HOLD,
    // waits while that file is there) when FAULT_MATCH is among its arguments.
    wrappers = apUserDir(mkdtempSync(join(a.home, 'wrappers-')), a.ap)
    chmodSync(wrappers, 0o755)
    const real = join(a.ap.release.releaseDir, 'bin')
    for (const tool of ['condor_config_val', 'condor_q', 'condor_status', 'condor_submit', 'condor_qedit', 'condor_token_fetch', 'condor_rm']) {
      writeFileSync(
        join(wrappers, tool),
        [
          '#!/bin/bash',
          `if [ "$FAULT_TOOL" = ${tool} ] && [[ " $* " == *"$FAULT_MATCH"* ]]; then`,
          '    if [ -z "$FAULT_HOLD" ]; then echo "ERROR: injected failure of $FAULT_TOOL" >&2; exit 1; fi',
          '    : > "$FAULT_HOLD.reached"',
          '    n=0; while [ -e "$FAULT_HOLD" ] && [ "$n" -lt 2400 ]; do sleep 0.05; n=$((n + 1)); done',
          'fi',
          `exec '${real}/${tool}' "$@"`,
          '',
        ].join('\n'),
        {mode: 0o755},
      )
    }

    // ssh configurations: a key the login node does not know; a host key that changed.
    ssh = apUserDir(mkdtempSync(join(a.home, 'ssh-')), a.ap)
    chmodSync(ssh, 0o755)
    const config = readFileSync(a.env.HPC_ANNEX_SSH_CONFIG!, 'utf8')
    const identity = /IdentityFile (\S+)/.exec(config)![1]!
    const knownHosts = /UserKnownHostsFile (\S+)/.exec(config)![1]!
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ssh, 'stranger')])
    const otherKey = readFileSync(join(ssh, 'stranger.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    writeFileSync(join(ssh, 'known_hosts'), readFileSync(knownHosts, 'utf8').replace(/ ssh-\S+ \S+/g, ` ${otherKey}`))
    writeFileSync(join(ssh, 'refused_config'), config.replaceAll(identity, join(ssh, 'stranger')))
    writeFileSync(join(ssh, 'changed_config'), config.replaceAll(knownHosts, join(ssh, 'known_hosts')))
    for (const f of ['stranger', 'stranger.pub', 'known_hosts', 'refused_config', 'changed_config']) chownSync(join(ssh, f), a.ap.uid, a.ap.gid)

    tokenDir = a.condor('condor_config_val', ['SEC_TOKEN_DIRECTORY']).stdout.trim()
  })
  afterAll(async () => {
    await new Promise((resolve) => (emptyTree ? emptyTree.close(resolve) : resolve(undefined)))
    rmSync(hold, {force: true})
    a?.onSite(`rm -rf '${area}'`)
    if (cacheObjects.length > 0) a?.onSite(`cd ~/.hpc-annex/cache && rm -rf -- ${cacheObjects.flatMap((sha) => [sha, `${sha}.release`, `.uses/${sha}`]).join(' ')}`)
    a?.close()
  })
  afterEach(() => {
    rmSync(hold, {force: true})
    a.onSite(`rm -f '${join(area, 'hold')}'`)
  })

  const machinesEnv = () => ({HPC_ANNEX_MACHINES: `${machines}:${join(ROOT, 'test', 'site', 'machines')}`})
  const wrapped = (tool: string, match: string, holdFile?: string): NodeJS.ProcessEnv => ({
    PATH: `${wrappers}:${a.env.PATH}`,
    FAULT_TOOL: tool,
    FAULT_MATCH: match,
    ...(holdFile === undefined ? {} : {FAULT_HOLD: holdFile}),
  })
  const baseArgs = () => ['--nodes', '1', '--lifetime', '1800', '--condor-tarball', a.tarball]

  /**
   * What a request of `name` may have left anywhere: pilot directories are those not in
   * `before` (PILOT_DIR.logs, the output a batch job that ran before it was cancelled writes
   * as it stops, is not counted: the undo removes it, and no secret is in it).
   */
  const leftOf = (name: string, before: Set<string>) => {
    const [batchJobs = '', staging = '', secrets = ''] = a
      .onSite(
        [
          `squeue --noheader --user="$(id -un)" --format=%j | grep -F 'hpc-annex.${name}.'`,
          'echo @@',
          `grep -l 'ANNEX_NAME=.*${name}' ~/.hpc-annex/tmp/*/backend.sh 2>/dev/null`,
          'echo @@',
          // A token or password file anywhere in this file's corner of the scratch.
          `find '${area}' \\( -name token -o -name password \\) -print`,
        ].join('\n'),
      )
      .stdout.split('@@\n')
    const lines = (text: string) => text.split('\n').filter(Boolean)
    return {
      stateJobs: a.jobs(`hpc_annex_name == "${name}" && JobStatus =!= 3`).map((j) => `${String(j.ClusterId)}.${String(j.ProcId)}`),
      batchJobs: lines(batchJobs),
      pilotDirs: readdirSync(join(area, 'pilots')).filter((d) => !before.has(d) && !d.endsWith('.logs')),
      staging: lines(staging),
      secrets: lines(secrets),
      tokens: readdirSync(tokenDir),
    }
  }
  const nothing = {stateJobs: [], batchJobs: [], pilotDirs: [], staging: [], secrets: [], tokens: []}
  const expectNothingLeft = async (name: string, before: Set<string>) => {
    const clean = () => JSON.stringify(leftOf(name, before)) === JSON.stringify(nothing)
    await until(`nothing of ${name} to be left`, () => clean() || undefined, 60_000).catch(() => {
      // What is there, for the failure's message.
      const listing = a.onSite(`ls -laR --time-style=full-iso '${area}/pilots'; squeue --user="$(id -un)"; date`).stdout
      expect(leftOf(name, before), listing).toEqual(nothing)
    })
  }

  /** The same request, without the fault, succeeds; what it made is then removed. */
  const expectSameRequestSucceeds = async (name: string) => {
    const again = await a.cli(['create', name, 'compute@ft', ...baseArgs(), '--json'], machinesEnv())
    expect(again.code, again.stderr).toBe(0)
    const created = JSON.parse(again.stdout) as Created
    a.onSite(`scancel ${created.batchJobId}`)
    await until(`batch job ${created.batchJobId} to leave the queue`, () => !a.onSite(`squeue --noheader --jobs=${created.batchJobId} --format=%i 2>/dev/null`).stdout.includes(created.batchJobId) || undefined, 60_000)
    a.onSite(`rm -rf '${created.pilotDir}' '${created.pilotDir}.logs'`)
    a.condor('condor_rm', [created.stateJobId])
  }

  /** A fresh annex name with a job queued for it (by condor_submit itself: quicker than `hpc-annex submit`). */
  const annexName = (row: string) => {
    run += 1
    const name = `ft-${row}-${process.pid}-${run}`
    const file = join(a.home, `job-${name}.sub`)
    writeFileSync(file, ['executable = /bin/true', 'request_cpus = 1', 'request_memory = 64', `MY.TargetAnnexName = "${name}"`, 'queue', ''].join('\n'))
    chownSync(file, a.ap.uid, a.ap.gid)
    const submitted = a.condor('condor_submit', [file])
    expect(submitted.code, submitted.stderr).toBe(0)
    return name
  }

  /** hpc-annex on a pty, as a person runs it; `onScreen` sees what it printed so far and may type. */
  const onPty = (args: string[], env: NodeJS.ProcessEnv, onScreen: (screen: string, type: (text: string) => void) => void): Promise<Outcome> => {
    const command = [process.execPath, join(ROOT, 'bin', 'run.js'), ...args].map(quote).join(' ')
    const child = spawn('script', ['-qfec', command, '/dev/null'], {env: {...a.env, ...env}, uid: a.ap.uid, gid: a.ap.gid, cwd: a.home, stdio: ['pipe', 'pipe', 'pipe']})
    let screen = ''
    child.stdout!.on('data', (d: Buffer) => {
      screen += d.toString()
      onScreen(screen, (text) => child.stdin!.write(text))
    })
    // On a pty, stderr is the screen too.
    return new Promise((resolve) => child.on('close', (code) => resolve({code, stderr: screen})))
  }
  /** Answers each 2FA question with `answer` (after the prompt turned echo off, as a person would). */
  const answering = (answer: string) => {
    let answered = 0
    return (screen: string, type: (text: string) => void) => {
      const asked = (screen.match(/Verification code/g) ?? []).length
      if (asked > answered) {
        answered = asked
        setTimeout(() => type(answer), 500)
      }
    }
  }

  /** Starts hpc-annex and waits until `reached` says the run is where the test wants it; `outcome` then awaits its end. */
  const runUntil = async (args: string[], env: NodeJS.ProcessEnv, what: string, reached: () => boolean) => {
    const child = a.start(args, env)
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    await until(what, () => {
      if (child.exitCode !== null) throw new Error(`hpc-annex ended first: ${stderr}`)
      return reached() || undefined
    }, 120_000)
    return {child, outcome: async (): Promise<Outcome> => ({code: await exited, stderr})}
  }
  /** Runs hpc-annex, and once `reached` says the run is where the test wants it, sends it `signal` and lets the hold go. */
  const signalAt = (signal: NodeJS.Signals, reached: () => boolean, release: () => void) => async (_name: string, args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> => {
    const run = await runUntil(args, env, 'the run to reach the point of the signal', reached)
    run.child.kill(signal)
    release()
    return run.outcome()
  }
  const holdFile = () => join(a.home, 'hold')
  const heldTool = (tool: string, match: string) => ({
    env: () => {
      writeFileSync(hold, '')
      chownSync(hold, a.ap.uid, a.ap.gid)
      return wrapped(tool, match, holdFile())
    },
    reached: () => existsSync(`${holdFile()}.reached`),
    release: () => {
      rmSync(hold, {force: true})
      rmSync(`${holdFile()}.reached`, {force: true})
    },
  })
  /** Holds the record of the job id on the state job; meanwhile kills the login node's sshd session of the run's back-end outright. */
  const lostBeforeAck = (() => {
    const recorded = heldTool('condor_qedit', 'hpc_annex_JOB_ID')
    const killSession = (name: string) =>
      a.onSite(
        [
          'for d in ~/.hpc-annex/tmp/bundle.*/; do',
          `    grep -q 'ANNEX_NAME=.*${name}' "$d/backend.sh" 2>/dev/null || continue`,
          '    read -r _ p < "$d/.owner"',
          '    while [ "$p" -gt 1 ]; do',
          '        case $(tr "\\0" " " < "/proc/$p/cmdline") in sshd*@notty*) kill -9 "$p"; exit 0 ;; esac',
          "        p=$(awk '{print $4}' \"/proc/$p/stat\")",
          '    done',
          'done',
          'exit 1',
        ].join('\n'),
      ).code
    return {
      env: recorded.env,
      drive: async (name: string, args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> => {
        const run = await runUntil(args, env, 'the job id to be reported', recorded.reached)
        expect(killSession(name), 'the back-end still awaits the confirmation while the job id is being recorded').toBe(0)
        recorded.release()
        return run.outcome()
      },
    }
  })()
  const heldBackend = () => {
    const siteHold = () => join(area, 'hold')
    return {
      setup: () => void a.onSite(`: > '${siteHold()}'`),
      reached: () => readdirSync(join(area, 'pilots')).some((d) => existsSync(join(area, 'pilots', d, '.held'))),
      release: () => void a.onSite(`rm -f '${siteHold()}'`),
    }
  }

  const stage = 'Staging and submitting the SLURM job on hpc failed: '
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  /** The back-end's exit code, by its meaning, then its own words. */
  const backendStep = (code: number, why: string) => () => new RegExp(`^Error: ${stage}${escape(BACKEND_FAILURES[code]!)}.*${why}.*\\(undone: [^()]*\\)$`)

  /** A tarball (not HTCondor) no earlier run staged: its sha256 is new to the login node's cache. */
  const strangeTarball = (withRelease: boolean) => {
    const dir = mkdtempSync(join(a.home, 'tarball-'))
    mkdirSync(join(dir, 'top', withRelease ? 'sbin' : 'etc'), {recursive: true})
    writeFileSync(join(dir, 'top', withRelease ? 'sbin/condor_master' : 'etc/nothing'), `${dir}\n`, {mode: 0o755})
    const file = join(dir, 'strange.tar.gz')
    execFileSync('tar', ['-czf', file, '-C', dir, 'top'])
    chownSync(dir, a.ap.uid, a.ap.gid)
    chownSync(file, a.ap.uid, a.ap.gid)
    cacheObjects.push(execFileSync('sha256sum', [file], {encoding: 'utf8'}).split(' ')[0]!)
    return file
  }

  const sif = join('/tmp', `hpc-annex-fault-table-${process.pid}.sif`)
  const rows: Row[] = [
    // The Access Point's checks.
    {
      row: 'config',
      env: () => wrapped('condor_config_val', ''),
      exit: 2,
      error: () => /^Error: Checking the Access Point failed: condor_config_val failed \(exit status 1\): ERROR: injected failure of condor_config_val$/,
    },
    {
      row: 'condor-q',
      env: () => wrapped('condor_q', '|| TargetAnnexName'),
      exit: 2,
      error: () => /^Error: Checking the Access Point failed: condor_q failed \(exit status 1\): ERROR: injected failure of condor_q$/,
    },
    {
      row: 'condor-status',
      env: () => wrapped('condor_status', ''),
      exit: 2,
      error: () => /^Error: Checking the Access Point failed: condor_status failed \(exit status 1\): ERROR: injected failure of condor_status$/,
    },
    {
      row: 'missing-sif',
      setup: (name) => {
        const file = join(a.home, `sif-${name}.sub`)
        writeFileSync(file, ['universe = container', `container_image = ${sif}`, 'executable = /bin/true', `MY.TargetAnnexName = "${name}"`, 'queue', ''].join('\n'))
        chownSync(file, a.ap.uid, a.ap.gid)
        expect(a.condor('condor_submit', [file]).code).toBe(0)
      },
      undo: (name) => void a.condor('condor_rm', ['-constraint', `TargetAnnexName == "${name}" && ContainerImage =!= undefined`]),
      exit: 1,
      error: () => new RegExp(`^Error: .*${sif.replaceAll('.', '\\.')}`),
    },
    {
      row: 'password-file',
      args: () => [...baseArgs(), '--password_file', join(a.home, 'open-password')],
      setup: () => {
        writeFileSync(join(a.home, 'open-password'), 'not a secret any more\n', {mode: 0o644})
        chownSync(join(a.home, 'open-password'), a.ap.uid, a.ap.gid)
        chmodSync(join(a.home, 'open-password'), 0o644)
      },
      exit: 1,
      error: () => /^Error: .*open-password.*chmod 600/,
    },
    {
      row: 'digest',
      args: () => [...baseArgs().slice(0, -1), join(a.home, 'unreadable.tar.gz')],
      setup: () => {
        writeFileSync(join(a.home, 'unreadable.tar.gz'), 'x', {mode: 0o000})
        chmodSync(join(a.home, 'unreadable.tar.gz'), 0o000)
      },
      exit: 1,
      error: () => /^Error: .*unreadable\.tar\.gz/,
    },
    {
      // Found by the checks, then failing as it is hashed (beside the token and the state job):
      // a job's .sif that is a directory opens, and its first read fails.
      row: 'image-digest',
      setup: (name) => {
        const image = join(a.home, `dir-${name}.sif`)
        mkdirSync(image)
        chownSync(image, a.ap.uid, a.ap.gid)
        const file = join(a.home, `dir-${name}.sub`)
        writeFileSync(file, ['universe = container', `container_image = ${image}`, 'transfer_container = true', 'executable = /bin/true', `MY.TargetAnnexName = "${name}"`, 'queue', ''].join('\n'))
        chownSync(file, a.ap.uid, a.ap.gid)
        expect(a.condor('condor_submit', [file]).code).toBe(0)
      },
      undo: (name) => void a.condor('condor_rm', ['-constraint', `TargetAnnexName == "${name}" && ContainerImage =!= undefined`]),
      exit: 1,
      error: (name) => new RegExp(`^Error: Checksumming 1 container image\\(s\\) and the HTCondor tarball failed: Cannot read the container image '${escape(join(a.home, `dir-${name}.sif`))}' of job \\d+\\.0 \\(EISDIR: illegal operation on a directory, read\\)\\. \\(undone: [^()]*\\)$`),
      // The token and the state job are made beside the hashing, and finished before the undo.
      undone: [STATE, TOKEN],
    },
    {
      row: 'state-submit',
      env: () => wrapped('condor_submit', '-terse -'),
      exit: 2,
      // Nothing was submitted: no state job is said to be removed.
      error: (name) => new RegExp(`^Error: Submitting the state job for ${name} failed: condor_submit failed \\(exit status 1\\): ERROR: injected failure of condor_submit \\(undone: [^()]*\\)$`),
      notUndone: [STATE],
    },
    {
      row: 'token',
      env: () => wrapped('condor_token_fetch', ''),
      exit: 2,
      error: () => /^Error: Minting the annex token failed: condor_token_fetch failed \(exit status 1\): ERROR: injected failure of condor_token_fetch \(undone: [^()]*\)$/,
      undone: [STATE],
    },
    {
      row: 'read-back',
      env: () => wrapped('condor_q', 'GlobalJobID,QDate'),
      exit: 2,
      error: (name) => new RegExp(`^Error: Submitting the state job for ${name} failed: condor_q failed \\(exit status 1\\): ERROR: injected failure of condor_q \\(undone: [^()]*\\)$`),
      undone: [STATE, TOKEN],
    },
    // The login.
    {
      row: 'refused-key',
      env: () => ({HPC_ANNEX_SSH_CONFIG: join(ssh, 'refused_config')}),
      // Credentials the login node refuses are the user's to change: exit 1, as for bad input.
      exit: 1,
      error: () => /^Error: Logging in to hpc failed: Could not log in to hpcuser@127\.0\.0\.1:24201: the server refused every method tried \(it accepts: publickey\); check the user name, keys and ~\/\.ssh\/config\. \(undone: [^()]*\)$/,
      undone: [STATE, TOKEN],
    },
    {
      row: 'host-key',
      env: () => ({HPC_ANNEX_SSH_CONFIG: join(ssh, 'changed_config')}),
      exit: 2,
      error: () => /^Error: Logging in to hpc failed: .*host key.*\(undone: [^()]*\)$/i,
      undone: [STATE, TOKEN],
    },
    {
      row: 'wrong-2fa',
      args: () => [...baseArgs(), '--login-host', 'hpc-2fa'],
      drive: (_name, args, env) => onPty(args, env, answering('000000\r')),
      exit: 1,
      error: () => /^Error: Logging in to hpc-2fa failed: Could not log in to hpcuser@127\.0\.0\.1:24202: the server refused every method tried \(it accepts: keyboard-interactive\); .*\(undone: [^()]*\)$/,
      undone: [STATE, TOKEN],
    },
    {
      row: 'ctrl-c-2fa',
      args: () => [...baseArgs(), '--login-host', 'hpc-2fa'],
      drive: (_name, args, env) => {
        // Once: a second Ctrl-C ends the command at once, undoing nothing more.
        let typed = false
        return onPty(args, env, (screen, type) => {
          if (!typed && screen.includes('Verification code')) {
            typed = true
            type('\x03')
          }
        })
      },
      exit: 130,
      // Typed at the hidden prompt (a raw terminal), it ends the command as the signal does.
      error: () => /^Error: Logging in to hpc-2fa failed: interrupted \(undone: [^()]*\)$/,
      undone: [STATE, TOKEN],
    },
    // Each back-end step: its exit code, and the failure its words name.
    {row: 'exit-10', system: 'ft-bundle', exit: 2, error: backendStep(10, 'the bundle has no launcher\\.sh'), undone: [STATE, TOKEN]},
    {row: 'exit-11', system: 'ft-squeue', exit: 2, error: backendStep(11, 'squeue failed: squeue: error: Unable to contact slurm controller'), undone: [STATE, TOKEN]},
    {row: 'exit-12', system: 'ft-scratch', exit: 2, error: backendStep(12, 'cannot make the scratch directory /proc/hpc-annex-no-scratch'), undone: [STATE, TOKEN]},
    {row: 'exit-13', system: 'ft-os', args: () => baseArgs().slice(0, -2), exit: 2, error: backendStep(13, 'no HTCondor [0-9.]+ build for this login node\'s OS \\(Debian12\\)'), undone: [STATE, TOKEN]},
    {row: 'exit-14', system: 'ft-unpublished', args: () => baseArgs().slice(0, -2), exit: 2, error: backendStep(14, 'sha256sum\\.txt: HTTP 404'), undone: [STATE, TOKEN]},
    {row: 'exit-15', system: 'ft-download', args: () => baseArgs().slice(0, -2), exit: 2, error: backendStep(15, 'cannot download HTCondor 25\\.0\\.4 for Debian12 from https://127\\.0\\.0\\.1:9/'), undone: [STATE, TOKEN]},
    {row: 'exit-16', system: 'ft-checksum', args: () => [...baseArgs().slice(0, -1), strangeTarball(true)], exit: 2, error: backendStep(16, 'has sha256 0{64}, expected'), undone: [STATE, TOKEN]},
    {row: 'exit-17', args: () => [...baseArgs().slice(0, -1), strangeTarball(false)], exit: 2, error: backendStep(17, 'does not hold one release directory with sbin/condor_master'), undone: [STATE, TOKEN]},
    // Found once the batch job is submitted (and its id recorded): the back-end cancels the job
    // itself and says so, and hpc-annex leaves it at that.
    {
      row: 'exit-17-after-sbatch',
      system: 'ft-late-unpack',
      args: () => [...baseArgs().slice(0, -1), strangeTarball(false)],
      exit: 2,
      error: backendStep(17, 'does not hold one release directory with sbin/condor_master; the back-end cancelled batch job \\d+'),
      undone: [STATE, TOKEN],
      notUndone: ['cancelled the batch job'],
    },
    {row: 'exit-18', system: 'ft-populate', exit: 2, error: backendStep(18, 'cannot make the secrets directory'), undone: [STATE, TOKEN]},
    {row: 'exit-19', system: 'ft-setup', exit: 2, error: backendStep(19, 'the machine-specific set-up failed'), undone: [STATE, TOKEN]},
    {
      row: 'exit-20',
      system: 'ft-refused',
      queue: 'debug',
      args: () => ['--lifetime', '3600', '--condor-tarball', a.tarball],
      exit: 2,
      error: backendStep(20, 'sbatch: error: .*time limit'),
      undone: [STATE, TOKEN],
      notUndone: ['batch job'],
    },
    {row: 'exit-21', system: 'ft-noid', exit: 2, error: backendStep(21, 'sbatch printed no job id: Submitted, somewhere'), undone: [STATE, TOKEN]},
    // After sbatch.
    // hpc-annex cannot cancel the batch job over the lost connection (and says so); the
    // back-end on the login node finds the connection gone and cancels it by itself.
    {
      row: 'lost-after-sbatch',
      system: 'ft-lost',
      exit: 2,
      error: () => new RegExp(`^Error: ${stage}The connection to 127\\.0\\.0\\.1 was lost \\(the server ended it\\).*\\(undone: [^()]*; NOT undone: cancelled the batch job \\(The connection .* was lost .*\\)\\)$`),
      undone: [STATE, TOKEN],
      withdrawnOnLoginNode: true,
    },
    // The job id reported, its record on the state job held: the connection is lost before
    // hpc-annex can confirm it. The back-end, unconfirmed, cancels the job and removes the pilot
    // directory itself (hpc-annex, cut off, says it could not).
    // Over either transport (the answer is written on the session's stdin, after the bundle).
    ...(['ssh2', 'openssh'] as const).map((transport): Row => ({
      row: transport === 'ssh2' ? 'lost-before-ack' : 'lost-before-ack-openssh',
      args: () => [...baseArgs(), '--ssh', transport],
      env: () => lostBeforeAck.env(),
      drive: (name, args, env) => lostBeforeAck.drive(name, args, env),
      exit: 2,
      error: () => new RegExp(`^Error: ${stage}The connection to 127\\.0\\.0\\.1 was lost.*\\(undone: [^()]*; NOT undone: cancelled the batch job \\(.*\\)\\)$`),
      undone: [STATE, TOKEN],
      withdrawnOnLoginNode: true,
    })),
    {
      row: 'image-edit',
      setup: (name) => {
        const image = join(a.home, `image-${name}.sif`)
        writeFileSync(image, `${name}\n`)
        chownSync(image, a.ap.uid, a.ap.gid)
        cacheObjects.push(execFileSync('sha256sum', [image], {encoding: 'utf8'}).split(' ')[0]!)
        const file = join(a.home, `image-${name}.sub`)
        writeFileSync(file, ['universe = container', `container_image = ${image}`, 'executable = /bin/true', `MY.TargetAnnexName = "${name}"`, 'queue', ''].join('\n'))
        chownSync(file, a.ap.uid, a.ap.gid)
        expect(a.condor('condor_submit', [file]).code).toBe(0)
      },
      env: () => wrapped('condor_qedit', 'hpc_annex_image_source'),
      exit: 2,
      error: () => /^Error: .* failed: condor_qedit failed \(exit status 1\): ERROR: injected failure of condor_qedit \(undone: [^()]*\)$/,
      undone: [STATE, TOKEN],
      notUndone: ['batch job'],
    },
    {
      row: 'bundle-write',
      args: () => [...baseArgs(), '--bundle', join(a.home, 'bundle.tar')],
      env: () => wrapped('condor_qedit', 'hpc_annex_creator'),
      exit: 2,
      error: () => new RegExp(`^Error: Writing the self-service bundle ${join(a.home, 'bundle.tar').replaceAll('.', '\\.')} failed: condor_qedit failed .*\\(undone: [^()]*removed ${join(a.home, 'bundle.tar').replaceAll('.', '\\.')}[^()]*\\)$`),
      undone: [STATE, TOKEN],
      undo: () => expect(existsSync(join(a.home, 'bundle.tar'))).toBe(false),
    },
  ]

  // Signals at three points: the state job just submitted (its read-back held); the back-end
  // working in the pilot directory; the batch job submitted (its id's record on the state job held).
  const signals: [NodeJS.Signals, number, string][] = [
    ['SIGINT', 130, 'interrupted'],
    ['SIGTERM', 143, 'terminated \\(SIGTERM\\)'],
    ['SIGHUP', 129, 'hung up \\(SIGHUP\\)[^(]*'],
  ]
  for (const [signal, exit, said] of signals) {
    const readBack = heldTool('condor_q', 'GlobalJobID,QDate')
    rows.push({
      row: `${signal.toLowerCase()}-state-job`,
      env: readBack.env,
      drive: signalAt(signal, readBack.reached, readBack.release),
      exit,
      // The login runs beside the state job's submission: the step is the one still under way.
      error: (name) => new RegExp(`^Error: (Logging in to hpc|Submitting the state job for ${name}) failed: ${said} \\(undone: [^()]*\\)$`),
      undone: [STATE, TOKEN],
    })
    const recorded = heldTool('condor_qedit', 'hpc_annex_JOB_ID')
    rows.push({
      row: `${signal.toLowerCase()}-after-sbatch`,
      env: recorded.env,
      drive: signalAt(signal, recorded.reached, recorded.release),
      exit,
            // (The pilot directory goes with the undo, or, once the job runs, with the job's TERM trap.)
      error: () => new RegExp(`^Error: ${stage}${said} \\(undone: [^()]*cancelled the batch job \\d+[,( ][^()]*\\)$`),
      undone: [STATE, TOKEN],
    })
    // SIGHUP and SIGTERM there are in real-faults.
    if (signal === 'SIGINT') {
      const backend = heldBackend()
      rows.push({
        row: 'sigint-backend',
        system: 'ft-held',
        setup: backend.setup,
        drive: signalAt(signal, backend.reached, backend.release),
        exit,
        error: () => new RegExp(`^Error: ${stage}${said} \\(undone: [^()]*removed the pilot directory [^()]*\\)$`),
        undone: [STATE, TOKEN],
        notUndone: ['batch job'],
      })
    }
  }

  // eslint-disable-next-line no-control-regex
  const plain = (line: string) => line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/^.*\r(?=.)/, '').trimEnd()

  it.each(rows.map((r) => [r.row, r] as const))('%s', async (_row, r) => {
    const name = annexName(r.row)
    const before = new Set(readdirSync(join(area, 'pilots')))
    await r.setup?.(name)
    const args = ['create', name, `${r.queue ?? 'compute'}@${r.system ?? 'ft'}`, ...(r.args?.() ?? baseArgs())]
    const env = {...machinesEnv(), ...r.env?.()}
    const outcome = r.drive ? await r.drive(name, args, env) : await a.cli(args, env)
    const errors = outcome.stderr.split('\n').map(plain).filter((l) => l.startsWith('Error:'))
    expect(errors, outcome.stderr).toHaveLength(1)
    expect(errors[0]).toMatch(r.error(name))
    for (const undone of r.undone ?? []) expect(errors[0]).toContain(undone)
    for (const not of r.notUndone ?? []) expect(errors[0]).not.toContain(not)
    if (!r.withdrawnOnLoginNode) expect(errors[0]).not.toContain('NOT undone')
    expect(outcome.code, outcome.stderr).toBe(r.exit)
    await expectNothingLeft(name, before)
    r.undo?.(name)
    await expectSameRequestSucceeds(name)
  }, 300_000)
})
