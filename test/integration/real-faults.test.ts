/**
 * Faults and signals during a create, on real HTCondor and the loopback
 * site, with the back-end on the login node held where a test needs it: a
 * machine file whose shell_fragment (before the pilot directory exists) or
 * pilot_dir_fragment (the pilot directory and its secrets exist) waits while
 * a flag file is there. After each: no state job, no batch job, no pilot
 * directory, no remote temporary directory and no local token are left, and
 * the same request then succeeds.
 *
 * - the terminal closed under hpc-annex (a pty that goes away, then SIGHUP as
 *   a login shell passes it on), and SIGTERM: each unwinds like Ctrl-C and
 *   ends with 128 + the signal's number;
 * - a failure after sbatch (the state job's record of the batch job fails):
 *   the batch job is cancelled and its pilot directory, with the token and
 *   password, removed;
 * - a back-end killed outright (SIGKILL of its whole session): the next
 *   create removes the temporary directory, token and all, it left;
 * - a step that prints nothing for longer than --stall-timeout: the
 *   back-end's heartbeat keeps the create going; a back-end that is stopped
 *   outright does stall, and the error names only what was undone;
 * - two creates of one name at once: the later withdraws, removing only its
 *   own state job; a condor_submit cut short removes only its own run's;
 * - hpc-annex itself killed outright (SIGKILL) at three points (its state job
 *   just submitted; the back-end working; the back-end not yet in its pilot
 *   directory): the back-end withdraws on the login node by itself, and the
 *   next status, shutdown or create removes the state job left and says so.
 */
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {afterAll, afterEach, beforeAll, expect, it} from 'vitest'

import {apUserDir} from '../site/htcondor.js'
import {describeOnRealHTCondor, processGone} from '../site/helpers.js'
import {ROOT} from './annex-site.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

/** A word for `sh -c` that stands for exactly `text`. */
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

interface Created {
  batchJobId: string
  stateJobId: string
  pilotDir: string
  notices: string[]
}

describeOnRealHTCondor('faults and signals during a create', () => {
  let a: RealAnnexSite
  /** This file's corner of the site's scratch: the held machines' pilot directories, markers and hold flag. */
  let area: string
  let hold: string
  let machines: string
  let wrappers: string
  let tokenDir: string
  let run = 0

  beforeAll(() => {
    a = realAnnexSite()
    const siteUid = Number(execFileSync('id', ['-u', a.s.user], {encoding: 'utf8'}).trim())
    area = join(a.s.scratch, `faults-${process.pid}`)
    for (const dir of [area, join(area, 'pilots'), join(area, 'marks')]) {
      mkdirSync(dir, {recursive: true})
      chownSync(dir, siteUid, siteUid)
    }
    hold = join(area, 'hold')
    // The sandbox machine, held: while the flag is there, its back-end waits (saying nothing), noting its pid first.
    machines = mkdtempSync(join(a.home, 'machines-'))
    chmodSync(machines, 0o755)
    const sandbox = readFileSync(join(ROOT, 'test', 'site', 'machines', 'sandbox.toml'), 'utf8')
    const wait = `n=0; while [ -e '${hold}' ] && [ "$n" -lt 2400 ]; do sleep 0.25; n=$((n + 1)); done`
    const machine = (key: string, fragment: string) =>
      writeFileSync(join(machines, `${key}.toml`), sandbox.replace('Loopback sandbox', `Sandbox ${key}`).replace(/^scratch = .*$/m, () => `scratch = '${join(area, 'pilots')}'\n${fragment}`))
    machine('held', [`pilot_dir_fragment = '''`, 'echo "$$" > "$PILOT_DIR/.held"', wait, `'''`].join('\n'))
    machine('early', [`shell_fragment = '''`, `echo "$$" > "${join(area, 'marks')}/early.$$"`, wait, `'''`].join('\n'))
    machine('silent', [`pilot_dir_fragment = '''`, 'sleep 12', `'''`].join('\n'))
    // condor_qedit that fails to record a batch job's id on the state job.
    wrappers = mkdtempSync(join(a.home, 'wrappers-'))
    chmodSync(wrappers, 0o755)
    const real = join(a.ap.release.releaseDir, 'bin')
    writeFileSync(
      join(wrappers, 'condor_qedit'),
      ['#!/bin/bash', `case " $* " in *' hpc_annex_JOB_ID '*) echo 'ERROR: Failed to connect to the schedd' >&2; exit 1 ;; esac`, `exec '${real}/condor_qedit' "$@"`, ''].join('\n'),
      {mode: 0o755},
    )
    // condor_submit that, for a state job (its description on stdin), can wait for another run's
    // (FAULT_MODE=race: both runs have passed their name check, the second submits after the first),
    // report a failure after submitting (FAULT_MODE=cut, FAULT_RUN=second), or hang after submitting
    // until told (FAULT_MODE=hang). FAULT_SYNC is the directory they meet in.
    const waitFor = (what: string) => `for _ in $(seq 1200); do [ -e "$FAULT_SYNC/${what}" ] && break; sleep 0.05; done`
    mkdirSync(join(wrappers, 'submit'), {mode: 0o755})
    writeFileSync(
      join(wrappers, 'submit', 'condor_submit'),
      [
        '#!/bin/bash',
        `[ "\${!#}" = - ] && [ -n "$FAULT_MODE" ] || exec '${real}/condor_submit' "$@"`,
        ': > "$FAULT_SYNC/$FAULT_RUN.ready"',
        `if [ "$FAULT_MODE" != hang ]; then ${waitFor('first.ready')}; ${waitFor('second.ready')}; fi`,
        `if [ "$FAULT_RUN" = second ]; then ${waitFor('first.submitted')}; fi`,
        `out=$('${real}/condor_submit' "$@"); status=$?`,
        ': > "$FAULT_SYNC/$FAULT_RUN.submitted"',
        'if [ "$FAULT_MODE" = cut ] && [ "$FAULT_RUN" = second ]; then echo "ERROR: lost the connection to the schedd" >&2; exit 1; fi',
        `if [ "$FAULT_MODE" = cut ] && [ "$FAULT_RUN" = first ]; then ${waitFor('second.done')}; fi`,
        `if [ "$FAULT_MODE" = hang ]; then ${waitFor('release')}; fi`,
        'printf "%s\\n" "$out"; exit $status',
        '',
      ].join('\n'),
      {mode: 0o755},
    )
    tokenDir = a.condor('condor_config_val', ['SEC_TOKEN_DIRECTORY']).stdout.trim()
  })
  afterAll(() => {
    rmSync(hold, {force: true})
    a?.close()
    a?.onSite(`rm -rf '${area}'`)
  })
  afterEach(() => {
    rmSync(hold, {force: true})
  })

  const machinesEnv = () => ({HPC_ANNEX_MACHINES: `${machines}:${join(ROOT, 'test', 'site', 'machines')}`})
  const createArgs = (name: string, system = 'held') => ['create', name, `compute@${system}`, '--nodes', '1', '--lifetime', '1800', '--condor-tarball', a.tarball]
  /** A fresh annex name with a job queued for it. */
  const annexName = async (what: string) => {
    run += 1
    const name = `${what}-${process.pid}-${run}`
    await a.submitJob(name)
    return name
  }
  const pilotDirs = () => new Set(readdirSync(join(area, 'pilots')))
  /** The back-end held in the pilot directory fragment: its pilot directory and pid (not one of `before`). */
  const held = (before: Set<string>, ended: () => string | undefined) =>
    until('the back-end to wait in the pilot directory fragment', () => {
      const why = ended()
      if (why !== undefined) throw new Error(`hpc-annex ended before its back-end was held: ${why}`)
      const dir = readdirSync(join(area, 'pilots')).find((d) => !before.has(d) && existsSync(join(area, 'pilots', d, '.held')))
      // The file is there before the pid is in it.
      const pid = dir === undefined ? '' : readFileSync(join(area, 'pilots', dir, '.held'), 'utf8').trim()
      return /^\d+$/.test(pid) ? {dir: join(area, 'pilots', dir!), pid: Number(pid)} : undefined
    }, 90_000)
  /** The process group of a back-end on the login node: the whole session sshd started for it. */
  const groupOf = (pid: number) => Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)], {encoding: 'utf8'}).trim())

  /** What a request of `name` may have left anywhere. */
  const leftOf = (name: string) => ({
    // (A state job removed while it ran at its cron minute stays a moment as Removed: it is on its way out.)
    stateJobs: a.jobs(`hpc_annex_name == "${name}" && JobStatus =!= 3`).map((j) => `${String(j.ClusterId)}.${String(j.ProcId)}`),
    batchJobs: a.onSite(`squeue --noheader --user="$(id -un)" --format=%j | grep -F 'hpc-annex.${name}.' || true`).stdout.split('\n').filter(Boolean),
    pilotDirs: readdirSync(join(area, 'pilots')),
    staging: a.onSite(`grep -l 'ANNEX_NAME=.*${name}' ~/.hpc-annex/tmp/*/backend.sh 2>/dev/null || true`).stdout.split('\n').filter(Boolean),
    tokens: readdirSync(tokenDir),
  })
  const nothing = {stateJobs: [], batchJobs: [], pilotDirs: [], staging: [], tokens: []}
  const expectNothingLeft = async (name: string) => {
    const clean = () => JSON.stringify(leftOf(name)) === JSON.stringify(nothing)
    await until(`nothing of ${name} to be left`, () => clean() || undefined, 60_000).catch(() => expect(leftOf(name)).toEqual(nothing))
  }
  /** Why the schedd removed the request's state job. */
  const removeReason = (name: string) => a.condor('condor_history', ['-constraint', `hpc_annex_name == "${name}"`, '-af', 'RemoveReason']).stdout.trim()
  /**
   * Removes what a create that succeeded made: its batch job, then its pilot
   * directory (a job cancelled before it ran leaves it, as shutdown
   * --cancel-pending knows) and the logs a job that ran keeps beside it, and its state job.
   */
  const dispose = async (created: Created) => {
    a.onSite(`scancel ${created.batchJobId}`)
    await until(`batch job ${created.batchJobId} to leave the queue`, () => !a.onSite(`squeue --noheader --jobs=${created.batchJobId} --format=%i 2>/dev/null`).stdout.includes(created.batchJobId) || undefined, 60_000)
    a.onSite(`rm -rf '${created.pilotDir}' '${created.pilotDir}.logs'`)
    a.condor('condor_rm', [created.stateJobId])
  }
  /** The same request, now not held, succeeds; what it made is then removed again. */
  const expectSameRequestSucceeds = async (name: string, system = 'held'): Promise<{created: Created; stderr: string}> => {
    rmSync(hold, {force: true})
    const again = await a.cli([...createArgs(name, system), '--json'], machinesEnv())
    expect(again.code, again.stderr).toBe(0)
    const created = JSON.parse(again.stdout) as Created
    await dispose(created)
    return {created, stderr: again.stderr}
  }

  it('the terminal closes mid-create, then SIGHUP: the undo runs to its end, exit 129, nothing is left', async () => {
    const name = await annexName('hup')
    writeFileSync(hold, '')
    const before = pilotDirs()
    // hpc-annex on a pty of `script`, under a shell that outlives the hangup and notes how it ended.
    const dir = apUserDir(mkdtempSync(join(a.home, 'pty-')), a.ap)
    const command = [process.execPath, join(ROOT, 'bin', 'run.js'), ...createArgs(name)].map(quote).join(' ')
    const pty = spawn('script', ['-qfec', `trap '' HUP; echo $$ > ${dir}/shell.pid; ${command}; echo $? > ${dir}/status`, '/dev/null'], {
      env: {...a.env, ...machinesEnv(), SHELL: '/bin/sh', TERM: 'xterm'},
      uid: a.ap.uid,
      gid: a.ap.gid,
      cwd: a.home,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let screen = ''
    pty.stdout!.on('data', (d: Buffer) => (screen += d.toString()))
    const readIn = (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8').trim() || undefined : undefined)
    const shell = await until('the shell on the pty', () => readIn('shell.pid'), 30_000)
    const cli = await until('hpc-annex under it', () => spawnSync('pgrep', ['-P', shell], {encoding: 'utf8'}).stdout.trim().split('\n')[0] || undefined, 30_000)
    await held(before, () => (pty.exitCode === null ? undefined : screen))
    // The terminal goes away (writes to it now fail with EIO), then the hangup reaches hpc-annex.
    pty.kill('SIGKILL')
    await until('the pty to close', () => pty.exitCode !== null || pty.signalCode !== null || undefined, 30_000)
    process.kill(Number(cli), 'SIGHUP')
    const status = await until('hpc-annex to end', () => readIn('status'), 90_000)
    expect(processGone(cli)).toBe(true)
    expect(status).toBe('129')
    await expectNothingLeft(name)
    expect(removeReason(name)).toMatch(/^hpc-annex create failed at: Staging and submitting the SLURM job on hpc\b/)
    await expectSameRequestSucceeds(name)
  })

  it('SIGTERM mid-create: the one-line error says what was undone, exit 143, nothing is left', async () => {
    const name = await annexName('term')
    writeFileSync(hold, '')
    const before = pilotDirs()
    const child = a.start(createArgs(name), machinesEnv())
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    await held(before, () => (child.exitCode === null ? undefined : stderr))
    child.kill('SIGTERM')
    expect(await exited).toBe(143)
    const errors = stderr.split('\n').filter((l) => l.startsWith('Error:'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: terminated \(SIGTERM\) \(undone: [^()]*\)$/)
    for (const undone of ['removed the state job', 'deleted the local token']) expect(errors[0]).toContain(undone)
    expect(errors[0]).not.toContain('batch job')
    await expectNothingLeft(name)
    await expectSameRequestSucceeds(name)
  })

  it('a failure after sbatch (the batch job id cannot be recorded): the job is cancelled, its pilot directory and the secrets in it removed', async () => {
    const name = await annexName('qedit')
    const r = await a.cli(createArgs(name, 'sandbox'), {PATH: `${wrappers}:${a.env.PATH}`, ...machinesEnv()})
    expect(r.code, r.stderr).toBe(2)
    const line = r.stderr.split('\n').find((l) => l.startsWith('Error:'))!
    expect(line).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: condor_qedit .*Failed to connect to the schedd/)
    // Never told that the id was recorded, the back-end cancels its job and removes the pilot
    // directory itself (waiting for the job to leave first); nothing of it is left to undo.
    const cancelled = /so the back-end cancelled batch job (\d+) and removed its pilot directory on hpc/.exec(line)
    expect(cancelled, line).not.toBeNull()
    expect(line).not.toContain('NOT undone')
    for (const undone of ['removed the state job', 'deleted the local token']) expect(line).toContain(undone)
    const [, jobId] = cancelled!
    await until('the batch job to leave the queue', () => !a.onSite(`squeue --noheader --jobs=${jobId} --format=%i 2>/dev/null`).stdout.includes(jobId!) || undefined, 60_000)
    await expectNothingLeft(name)
  })

  it('a back-end killed outright leaves its temporary directory, token and all; the next create removes it', async () => {
    const name = await annexName('killed')
    writeFileSync(hold, '')
    const marks = new Set(readdirSync(join(area, 'marks')))
    const child = a.start(createArgs(name, 'early'), machinesEnv())
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    const pid = await until('the back-end to wait in the shell fragment', () => {
      const mark = readdirSync(join(area, 'marks')).find((m) => !marks.has(m))
      const text = mark === undefined ? '' : readFileSync(join(area, 'marks', mark), 'utf8').trim()
      return /^\d+$/.test(text) ? Number(text) : undefined
    }, 90_000)
    // `bash <staging>/backend.sh`
    const staging = dirname(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1]!)
    expect(staging).toMatch(/\/\.hpc-annex\/tmp\/bundle\.[^/]+$/)
    expect(readdirSync(staging)).toContain('token')
    // The whole session on the login node (the bootstrap, the back-end and its heartbeat) is killed outright.
    process.kill(-groupOf(pid), 'SIGKILL')
    expect(await exited).toBe(2)
    expect(stderr).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: .*\(undone: [^)]*removed the state job/m)
    await until('the session to be gone', () => processGone(pid) || undefined, 30_000)
    // Everything else went with the undo; the temporary directory, with the token, stays.
    const left = leftOf(name)
    expect({...left, staging: []}).toEqual(nothing)
    expect(existsSync(join(staging, 'token'))).toBe(true)
    await expectSameRequestSucceeds(name, 'held')
    // Swept by a back-end: this run's, or that of another run on the login node that came first.
    expect(existsSync(staging)).toBe(false)
  })

  it('a step that prints nothing for longer than --stall-timeout: the heartbeat keeps the create going', async () => {
    const name = await annexName('silent')
    const r = await a.cli([...createArgs(name, 'silent'), '--stall-timeout', '6', '--json'], machinesEnv())
    expect(r.code, r.stderr).toBe(0)
    await dispose(JSON.parse(r.stdout) as Created)
  })

  it('a back-end stopped outright stalls: the error names the stall and only what was undone; nothing is left', async () => {
    const name = await annexName('stalled')
    writeFileSync(hold, '')
    const before = pilotDirs()
    const child = a.start([...createArgs(name), '--stall-timeout', '5'], machinesEnv())
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    const {pid, dir} = await held(before, () => (child.exitCode === null ? undefined : stderr))
    const group = groupOf(pid)
    process.kill(-group, 'SIGSTOP')
    try {
      expect(await exited).toBe(2)
    } finally {
      process.kill(-group, 'SIGCONT')
    }
    const line = stderr.split('\n').find((l) => l.startsWith('Error:'))!
    expect(line).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: Staging on hpc made no progress for 5 seconds; giving up\. \(undone: [^()]*\)$/)
    expect(line).toContain(`removed the pilot directory ${dir} on hpc`)
    for (const undone of ['removed the state job', 'deleted the local token']) expect(line).toContain(undone)
    expect(line).not.toContain('batch job')
    // Let go, the back-end finds its connection gone and withdraws the rest.
    await until('the back-end to end', () => processGone(pid) || undefined, 30_000)
    await expectNothingLeft(name)
  })

  /** A directory the condor_submit wrappers of two runs meet in. */
  const syncDir = () => apUserDir(mkdtempSync(join(a.home, 'sync-')), a.ap)
  const wrapped = (mode: string, sync: string, runName: string) => ({PATH: `${join(wrappers, 'submit')}:${a.env.PATH}`, FAULT_MODE: mode, FAULT_SYNC: sync, FAULT_RUN: runName, ...machinesEnv()})

  it('two creates of one name at once, both past the name check: the later withdraws with a one-line error; the first goes on', async () => {
    const name = await annexName('race')
    const sync = syncDir()
    const [first, second] = await Promise.all([
      a.cli([...createArgs(name), '--json'], wrapped('race', sync, 'first')),
      a.cli(createArgs(name), wrapped('race', sync, 'second')),
    ])
    expect(first.code, first.stderr).toBe(0)
    const created = JSON.parse(first.stdout) as Created
    expect(second.code, second.stderr).toBe(1)
    const errors = second.stderr.split('\n').filter((l) => l.startsWith('Error:'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(
      new RegExp(`^Error: Submitting the state job for ${name} failed: Another create of annex '${name}' ran at the same time and submitted its state job \\(${created.stateJobId.replace('.', '\\.')}\\) first; this one withdrew\\. \\(undone: [^)]*removed the state job`),
    )
    expect(second.stderr).toContain(`Try: hpc-annex add ${name} compute@held`)
    // Only the first's state job is left, with its batch job.
    expect(a.jobs(`hpc_annex_name == "${name}"`).map((j) => `${String(j.ClusterId)}.${String(j.ProcId)}`)).toEqual([created.stateJobId])
    expect(a.jobs(`hpc_annex_name == "${name}"`)[0]).toMatchObject({hpc_annex_JOB_ID: created.batchJobId})
    await dispose(created)
    await expectNothingLeft(name)
  })

  it("a condor_submit cut short after submitting: the clean-up removes that run's state job, never another run's of the same name", async () => {
    const name = await annexName('cut')
    const sync = syncDir()
    const first = a.cli([...createArgs(name), '--json'], wrapped('cut', sync, 'first'))
    const second = await a.cli(createArgs(name), wrapped('cut', sync, 'second'))
    expect(second.code, second.stderr).toBe(2)
    expect(second.stderr).toMatch(/^Error: Submitting the state job for .* failed: .*lost the connection to the schedd.*\(undone: [^)]*removed the state job/m)
    // The first run's state job (submitted, its run still waiting on condor_submit) is still queued.
    const firstJob = a.jobs(`hpc_annex_name == "${name}" && JobStatus =!= 3`)
    expect(firstJob).toHaveLength(1)
    writeFileSync(join(sync, 'second.done'), '')
    const done = await first
    expect(done.code, done.stderr).toBe(0)
    const created = JSON.parse(done.stdout) as Created
    expect(created.stateJobId).toBe(`${String(firstJob[0]!.ClusterId)}.${String(firstJob[0]!.ProcId)}`)
    await dispose(created)
    await expectNothingLeft(name)
  })

  /** hpc-annex killed outright: what it made on the Access Point stays (no undo runs), but not on the login node. */
  const killCli = async (child: ReturnType<RealAnnexSite['start']>) => {
    const exited = new Promise<unknown>((resolve) => child.on('close', resolve))
    child.kill('SIGKILL')
    await exited
  }
  const sweptLine = (name: string) => new RegExp(`^note: removed the state job that hpc-annex runs killed on this machine left: \\d+\\.0 \\(annex '${name}', pid \\d+\\)$`, 'm')

  it('killed outright while its state job is submitted: the next status removes that state job and says so', async () => {
    const name = await annexName('kill-submit')
    const sync = syncDir()
    const child = a.start(createArgs(name), wrapped('hang', sync, 'first'))
    await until('the state job to be submitted', () => existsSync(join(sync, 'first.submitted')) || undefined, 60_000)
    await killCli(child)
    writeFileSync(join(sync, 'release'), '')
    expect(a.jobs(`hpc_annex_name == "${name}"`)).toHaveLength(1)
    expect(readdirSync(tokenDir)).toHaveLength(1)
    const status = await a.cli(['status', name])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(sweptLine(name))
    // Its job is still queued for the annex; no request is.
    expect(status.stdout).toContain(`Found no established or requested annexes named '${name}'.`)
    await expectNothingLeft(name)
    await expectSameRequestSucceeds(name)
  })

  it('killed outright while the back-end works: the back-end withdraws on the login node; the next shutdown removes the state job and says so', async () => {
    const name = await annexName('kill-backend')
    writeFileSync(hold, '')
    const before = pilotDirs()
    const child = a.start(createArgs(name), machinesEnv())
    const {pid} = await held(before, () => (child.exitCode === null ? undefined : 'ended'))
    await killCli(child)
    // The back-end finds its connection gone (its heartbeat cannot be written) and removes what it made.
    await until('the back-end to end', () => processGone(pid) || undefined, 30_000)
    expect({...leftOf(name), stateJobs: [], tokens: []}).toEqual(nothing)
    expect(a.jobs(`hpc_annex_name == "${name}"`)).toHaveLength(1)
    const off = await a.cli(['shutdown', name])
    expect(off.code, off.stderr).toBe(0)
    expect(off.stdout).toMatch(sweptLine(name))
    await expectNothingLeft(name)
    await expectSameRequestSucceeds(name)
  })

  it('killed outright before its pilot directory exists: the same create, run again, removes the state job, says so, and goes on', async () => {
    const name = await annexName('kill-early')
    writeFileSync(hold, '')
    const marks = new Set(readdirSync(join(area, 'marks')))
    const child = a.start(createArgs(name, 'early'), machinesEnv())
    const pid = await until('the back-end to wait in the shell fragment', () => {
      const mark = readdirSync(join(area, 'marks')).find((m) => !marks.has(m))
      const text = mark === undefined ? '' : readFileSync(join(area, 'marks', mark), 'utf8').trim()
      return /^\d+$/.test(text) ? Number(text) : undefined
    }, 90_000)
    await killCli(child)
    await until('the back-end to end', () => processGone(pid) || undefined, 30_000)
    const {created} = await expectSameRequestSucceeds(name, 'early')
    expect(created.notices.join('\n')).toMatch(new RegExp(sweptLine(name).source.replace('^note: ', '^'), 'm'))
    await expectNothingLeft(name)
  })
})
