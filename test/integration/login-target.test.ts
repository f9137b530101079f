/**
 * `hpc-annex login` opens the connection that later verbs use, so it must
 * log in where they will: the admin's per-system override
 * (HPC_ANNEX_<SYSTEM>_HOST_NAME) counts for it as for create. And it takes
 * HTCondor's flags and socket path (`<tmp_dir>/master-%C`, ~/.hpc-annex by
 * default): a connection `htcondor annex login` opened serves hpc-annex, and
 * the other way round, so the user answers 2FA once for both tools.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, expect, it} from 'vitest'

import {describeOnSite, logOffsets, sshdCounts} from '../site/helpers.js'
import {annexSite, type AnnexSite} from './annex-site.js'

describeOnSite('login on the loopback site', () => {
  let a: AnnexSite
  const masters: string[] = []
  const dirs: string[] = []
  beforeAll(() => {
    // The admin sends this system's logins to the MaxSessions=1 sshd (alias hpc-one) instead of the machine file's hpc.
    a = annexSite({config: {HPC_ANNEX_SANDBOX_HOST_NAME: 'hpc-one'}})
  })
  afterEach(() => {
    for (const path of masters.splice(0)) spawnSync('ssh', ['-F', a.s.sshConfig, '-S', path, '-O', 'exit', 'hpc-one'], {stdio: 'ignore'})
  })
  afterAll(() => {
    a?.close()
    for (const dir of dirs) rmSync(dir, {recursive: true, force: true})
  })

  // Short: a socket path holds at most 107 bytes, and ssh's socket name takes 64 of them.
  const shortDir = () => {
    const dir = mkdtempSync('/tmp/h-')
    dirs.push(dir)
    return dir
  }
  const logins = (before: ReturnType<typeof logOffsets>) => sshdCounts(before).byLog[a.s.sshdLog.one]!.logins

  /** What HTCondor's `htcondor annex login` runs (left in the background here): ssh with its ControlPath. */
  function htcondorLogin(dir: string): void {
    // HTCondor's tool insists that the directory exists.
    mkdirSync(dir, {recursive: true, mode: 0o700})
    const opened = spawnSync('ssh', ['-F', a.s.sshConfig, '-o', 'ControlPersist=60', '-o', 'ControlMaster=auto', '-o', `ControlPath=${dir}/master-%C`, '-f', '-N', 'hpc-one'])
    expect(opened.status, String(opened.stderr)).toBe(0)
    masters.push(join(dir, 'master-%C'))
  }

  it("logs in to the admin's override host, as create would", async () => {
    const dir = shortDir()
    const before = logOffsets()
    const r = await a.cli(['login', 'sandbox', '--json', '--persist', '60', '--tmp_dir', dir])
    expect(r.code, r.stderr).toBe(0)
    const {controlPath} = JSON.parse(r.stdout) as {controlPath: string}
    masters.push(controlPath)
    expect(logins(before)).toBe(1)
  })

  it("takes --login, --host and --tmp_dir; HTCondor's ssh, with its ControlPath, runs over that connection", async () => {
    const dir = shortDir()
    const before = logOffsets()
    const r = await a.cli(['login', 'sandbox', '--json', '--persist', '60', '--login', 'hpcuser', '--host', 'hpc-one', '--tmp_dir', dir])
    expect(r.code, r.stderr).toBe(0)
    const {controlPath, reused} = JSON.parse(r.stdout) as {controlPath: string; reused: boolean}
    masters.push(controlPath)
    expect(controlPath.startsWith(`${dir}/master-`)).toBe(true)
    expect(reused).toBe(false)
    // As HTCondor's create runs its commands: ControlMaster=auto on the same path, no way to answer a question.
    const htcondor = spawnSync('ssh', ['-F', a.s.sshConfig, '-o', 'ControlMaster=auto', '-o', `ControlPath=${dir}/master-%C`, '-o', 'BatchMode=yes', 'hpc-one', 'echo over-the-master'], {encoding: 'utf8'})
    expect(htcondor.status, htcondor.stderr).toBe(0)
    expect(htcondor.stdout.trim()).toBe('over-the-master')
    expect(logins(before)).toBe(1)
  })

  it("uses the connection HTCondor's tool opened: in ~/.hpc-annex by default, else where ANNEX_TMP_DIR says", async () => {
    const before = logOffsets()
    htcondorLogin(join(a.home, '.hpc-annex'))
    const byDefault = await a.cli(['login', 'sandbox', '--json'])
    expect(byDefault.code, byDefault.stderr).toBe(0)
    expect(JSON.parse(byDefault.stdout)).toMatchObject({reused: true})

    const dir = shortDir()
    htcondorLogin(dir)
    a.fake.update((state: {config: Record<string, string>}) => {
      state.config.ANNEX_TMP_DIR = dir
    })
    try {
      const byKnob = await a.cli(['login', 'sandbox', '--json'])
      expect(byKnob.code, byKnob.stderr).toBe(0)
      expect(JSON.parse(byKnob.stdout)).toMatchObject({reused: true, controlPath: expect.stringMatching(new RegExp(`^${dir}/master-`))})
    } finally {
      a.fake.update((state: {config: Record<string, string>}) => {
        delete state.config.ANNEX_TMP_DIR
      })
    }
    // Only HTCondor's two logins reached the login node.
    expect(logins(before)).toBe(2)
  })
})
