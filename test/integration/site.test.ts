/**
 * The loopback site is real: OpenSSH's sshd with host keys, 2FA through PAM and
 * MaxSessions; SLURM with several nodes and partition limits.
 */
import {spawnSync} from 'node:child_process'
import {closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, expect, it} from 'vitest'
import {askpassEnv, describeOnSite, freshOtpCode, logOffsets, otherSiteRuns, processGone, site, runCommand, sshdCounts, until, type SiteInfo} from '../site/helpers.js'

describeOnSite('the loopback site', () => {
  let s: SiteInfo
  let tmp: string
  const ssh = (host: string, command: string, extra: string[] = [], env?: NodeJS.ProcessEnv, input?: string) =>
    runCommand('ssh', ['-F', s.sshConfig, ...extra, host, command], env, input)

  beforeAll(() => {
    s = site()
    tmp = mkdtempSync(join(tmpdir(), 'site-test-'))
  })
  afterAll(() => {
    rmSync(tmp, {recursive: true, force: true})
  })

  it('logs in with the key and a verified host key, on the login node', async () => {
    const before = logOffsets()
    const r = await ssh('hpc', 'hostname; id -un; echo $SSH_CLIENT')
    expect(r.stderr).toBe('')
    const [hostname, user, client] = r.stdout.split('\n')
    expect([hostname, user]).toEqual([s.loginHostname, s.user])
    const port = Number(client!.split(' ')[1])
    // other test runs on this machine may use the site meanwhile: count this connection only
    const c = sshdCounts(before, {clientPorts: [port]})
    expect(c.byLog[s.sshdLog.key]).toMatchObject({connections: 1, logins: 1, sessions: 1})
  })

  it('refuses a changed or unknown host key', async () => {
    const otherKey = join(tmp, 'other')
    await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey])
    const wrong = join(tmp, 'known_hosts.wrong')
    writeFileSync(wrong, `[${s.host}]:${s.ports.key} ${readFileSync(`${otherKey}.pub`, 'utf8')}`)
    const changed = await ssh('hpc', 'true', ['-o', `UserKnownHostsFile=${wrong}`])
    expect(changed.code).toBe(255)
    expect(changed.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
    const empty = join(tmp, 'known_hosts.empty')
    writeFileSync(empty, '')
    const unknown = await ssh('hpc', 'true', ['-o', `UserKnownHostsFile=${empty}`])
    expect(unknown.code).toBe(255)
    expect(unknown.stderr).toMatch(/Host key verification failed/)
  })

  it('asks the 2FA port for one code after the key, and refuses the same code again', async () => {
    const code = freshOtpCode(s)
    const prompts = join(tmp, 'prompts-2fa')
    const before = logOffsets()
    const ok = await ssh('hpc-2fa', 'echo in $SSH_CLIENT', [], askpassEnv(code, prompts))
    expect(ok.stdout).toMatch(/^in \S+ \d+ \d+\n$/)
    expect(readFileSync(prompts, 'utf8')).toBe(`(${s.user}@${s.host}) Verification code: \n`)
    const port = Number(ok.stdout.split(' ')[2])
    expect(sshdCounts(before, {clientPorts: [port]}).byLog[s.sshdLog.otp]).toMatchObject({connections: 1, logins: 1, sessions: 1})

    const again = await ssh('hpc-2fa', 'echo in', ['-o', 'NumberOfPasswordPrompts=1'], askpassEnv(code))
    expect(again.code).toBe(255)
    expect(again.stderr).toMatch(/Permission denied/)
    expect(again.stdout).toBe('')
  })

  it('asks the password port for the password, then a code', async () => {
    const prompts = join(tmp, 'prompts-pw')
    const r = await ssh('hpc-pw', 'echo in', [], askpassEnv(freshOtpCode(s), prompts))
    expect(r.stdout).toBe('in\n')
    expect(readFileSync(prompts, 'utf8').replace(/\(.*?\) /g, '')).toBe('Password: \nVerification code: \n')
  })

  it('refuses a second session on one connection to the MaxSessions 1 port', async () => {
    const control = join(tmp, 'cm-%C')
    const mux = ['-o', `ControlPath=${control}`]
    const master = await ssh('hpc-one', '', ['-o', 'ControlMaster=yes', '-o', 'ControlPersist=60', '-fN', ...mux])
    expect(master.code).toBe(0)
    try {
      expect((await ssh('hpc-one', '', [...mux, '-O', 'check'])).code).toBe(0)
      const before = logOffsets()
      const first = ssh('hpc-one', 'echo $SSH_CLIENT; sleep 2', [...mux, '-o', 'BatchMode=yes'])
      // wait until the first session runs on the master's connection
      for (let i = 0; i < 100 && sshdCounts(before).sessions === 0; i++) await new Promise(r => setTimeout(r, 50))
      const second = await ssh('hpc-one', 'echo $SSH_CLIENT', [...mux, '-o', 'BatchMode=yes'])
      expect(second.stderr).toMatch(/Session open refused by peer/)
      const masterPort = Number((await first).stdout.split(' ')[1])
      const fallbackPort = Number(second.stdout.split(' ')[1])
      // the ssh client fell back to a new connection (a full new login): what the tool must avoid
      expect(fallbackPort).not.toBe(masterPort)
      const counts = (port: number) => sshdCounts(before, {clientPorts: [port]}).byLog[s.sshdLog.one]
      expect(counts(fallbackPort)).toMatchObject({connections: 1, logins: 1, sessions: 1})
      expect(counts(masterPort)).toMatchObject({connections: 0, logins: 0, sessions: 1})
    } finally {
      await ssh('hpc-one', '', [...mux, '-O', 'exit'])
    }
  })

  it('runs a 3-node batch job whose srun reaches node1..node3, as the user, with a shared scratch', async () => {
    const script = [
      '#!/bin/bash',
      '#SBATCH --nodes=3 --time=5 --job-name=site-fanout',
      `#SBATCH --output=${s.scratch}/fanout-%j.out`,
      'echo "batch $(id -un) $SLURM_JOB_PARTITION $(scontrol show hostnames "$SLURM_JOB_NODELIST" | tr "\\n" " ")"',
      'srun -K0 -W0 -n 3 bash -c \'echo "task $(hostname) $(cat "$0")"\' "$SLURM_SUBMIT_DIR/marker" | sort',
    ].join('\n')
    const r = await ssh(
      'hpc',
      `set -e; cd ${s.scratch}; echo shared > marker; cat > fanout.sh; jid=$(sbatch --parsable fanout.sh); ` +
        'while [ -n "$(squeue -h -j $jid)" ]; do sleep 0.2; done; cat fanout-$jid.out',
      [],
      process.env,
      script,
    )
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(`batch ${s.user} compute node1 node2 node3 \ntask node1 shared\ntask node2 shared\ntask node3 shared\n`)
  })

  it('enforces the partition limits at submit time', async () => {
    const r = await ssh('hpc', 'sbatch -p debug -t 31 --wrap true')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/Requested time limit is invalid/)
    const tooBig = await ssh('hpc', 'sbatch -p compute -N 4 --wrap true')
    expect(tooBig.code).not.toBe(0)
  })

  it('cancels a running job with scancel', async () => {
    const r = await ssh(
      'hpc',
      'jid=$(sbatch --parsable -p shared -n 1 -t 5 -o /dev/null --wrap "sleep 300"); ' +
        'until [ "$(squeue -h -j $jid -o %T)" = RUNNING ]; do sleep 0.1; done; echo running; ' +
        'scancel $jid; while [ -n "$(squeue -h -j $jid)" ]; do sleep 0.1; done; echo gone',
    )
    expect(r.stdout).toBe('running\ngone\n')
  })

  const daemonPids = () => [
    ...s.sshdLogs.map(log => log.replace(/\.log$/, '.pid')),
    join(s.dir, 'slurm', 'run', 'slurmctld.pid'),
    ...s.nodes.map(n => join(s.dir, 'slurm', 'run', `slurmd-${n}.pid`)),
  ].map(f => (existsSync(f) ? readFileSync(f, 'utf8').trim() : 'missing'))
  const upSh = () => {
    const fd = openSync(join(tmp, 'up.log'), 'w')
    const r = spawnSync('bash', [join(import.meta.dirname, '..', 'site', 'up.sh')], {stdio: ['ignore', fd, fd]})
    closeSync(fd)
    return {status: r.status, log: readFileSync(join(tmp, 'up.log'), 'utf8')}
  }

  it('up.sh is a quick no-op while the site is up', () => {
    const before = daemonPids()
    const t0 = Date.now()
    const r = upSh()
    expect(r.status, r.log).toBe(0)
    // (another worktree's harness may have started the site: then it is kept as it is)
    expect(r.log).toMatch(/site already up|test runs \(pids .*\) use it: keeping it/)
    expect(Date.now() - t0).toBeLessThan(5_000)
    expect(daemonPids()).toEqual(before)
  })

  // Restarts the site: not while another test run on this machine uses it.
  it('up.sh stops the daemons of a crashed run (pid files lost) and starts afresh', async ({skip}) => {
    if (otherSiteRuns().length > 0) skip('another test run uses the site')
    const before = daemonPids()
    for (const f of [...s.sshdLogs.map(log => log.replace(/\.log$/, '.pid')), join(s.dir, 'mode')]) rmSync(f, {force: true})
    rmSync(join(s.dir, 'slurm', 'run'), {recursive: true, force: true})
    const r = upSh()
    expect(r.status, r.log).toBe(0)
    expect(r.log).toMatch(/stopping leftover .*sshd-annexsite/)
    expect(r.log).toMatch(/stopping leftover .*slurmctld -f/)
    // A killed daemon may linger as a zombie until it is reaped: wait for it, boundedly.
    const running = () => before.filter((pid) => pid !== 'missing' && !processGone(pid))
    await until(`the old daemons to end (still running: ${running().join(' ')})`, () => running().length === 0, 20_000)
    const after = await ssh('hpc', 'sinfo -h -o "%P %D %t"')
    expect(after.stdout).toBe('compute* 3 idle\nshared 3 idle\ndebug 3 idle\n')
  })
})
