/**
 * `htcondor annex login` takes --login, --host and --tmp_dir; so does
 * hpc-annex's, and every verb that logs in puts its SSH control socket where
 * --tmp_dir, else the ANNEX_TMP_DIR knob, says (`DIR/master-%C`, HTCondor's
 * path), so that a connection either tool opened serves the other.
 */
import {mkdtempSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {createFakeCondor} from '../fixtures/fake-condor/index.mjs'
import {runCli} from './helpers/cli.js'

describe("login takes HTCondor's flags", () => {
  it('--login, --host and --tmp_dir: the login goes to that user and host, its socket into that directory', () => {
    // Short: a socket path holds at most 107 bytes, and ssh's socket name takes 64 of them.
    const dir = mkdtempSync(join(tmpdir(), 'h-'))
    // Nothing listens on port 1: the login fails at once, after the flags were taken.
    const config = join(dir, 'ssh_config')
    writeFileSync(config, 'Host *\n  Port 1\n  ConnectTimeout 5\n')
    const sockets = join(dir, 'sockets')
    const {status, stderr} = runCli(['login', 'anvil', '--login', 'alice', '--host', '127.0.0.1', '--tmp_dir', sockets], {HPC_ANNEX_SSH_CONFIG: config})
    expect(stderr).not.toContain('Nonexistent')
    expect(stderr).toContain('alice@127.0.0.1')
    expect(status).toBe(2)
    expect(statSync(sockets).mode & 0o777).toBe(0o700)
    expect(runCli(['login', 'anvil', '--tmp_dir', config], {HPC_ANNEX_SSH_CONFIG: config}).stderr.trim()).toBe(
      `Error: The SSH control directory '${config}' (--tmp_dir) is not a directory; change --tmp_dir.`,
    )
  })

  it('the ANNEX_TMP_DIR knob, when no --tmp_dir is given', () => {
    // Short: a socket path holds at most 107 bytes, and ssh's socket name takes 64 of them.
    const dir = mkdtempSync(join(tmpdir(), 'h-'))
    const file = join(dir, 'f')
    writeFileSync(file, '')
    const fake = createFakeCondor({config: {ANNEX_TMP_DIR: file}})
    try {
      const {status, stderr} = runCli(['login', 'anvil'], fake.env)
      expect(stderr.trim()).toBe(`Error: The SSH control directory '${file}' (ANNEX_TMP_DIR) is not a directory; change ANNEX_TMP_DIR.`)
      expect(status).toBe(1)
      // --tmp_dir wins over the knob.
      expect(runCli(['login', 'anvil', '--tmp_dir', join(dir, 'x'.repeat(80))], fake.env).stderr).toMatch(/\(--tmp_dir\) is too long/)
    } finally {
      fake.cleanup()
    }
  })

  it("create takes its login's socket directory from --tmp_dir too", () => {
    const dir = mkdtempSync(join(tmpdir(), 'h-'))
    const file = join(dir, 'f')
    writeFileSync(file, '')
    const fake = createFakeCondor({config: {HPC_ANNEX_REQUIRE_JOB: 'false'}})
    fake.advertise({MyType: 'Scheduler', Name: 'ap@vm', MyAddress: '<192.0.2.2:9618>'})
    try {
      // The OpenSSH client keeps the socket; the refusal comes before any connection is tried.
      const {status, stderr} = runCli(['create', 'x', 'wholenode@anvil', '--ssh', 'openssh', '--tmp_dir', file], {...fake.env, HOME: fake.dir})
      expect(stderr).toContain(`Error: Logging in to anvil.rcac.purdue.edu failed: The SSH control directory '${file}' (--tmp_dir) is not a directory; change --tmp_dir.`)
      expect(status).toBe(1)
    } finally {
      fake.cleanup()
    }
  })

  it.each([['logs', 'x'], ['shutdown', 'x'], ['cache', 'anvil'], ['create', 'x', 'wholenode@anvil'], ['add', 'x', 'wholenode@anvil']])('%s takes --tmp_dir too', (...args) => {
    expect(runCli([...args, '--help']).stdout).toContain('--tmp_dir=DIR')
  })
})
