import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, expect, it} from 'vitest'
import {totp} from '../site/helpers.js'

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

describe('totp', () => {
  it('gives RFC 6238 test vector codes (SHA1, 6 digits)', () => {
    // RFC 6238 appendix B, secret "12345678901234567890", last 6 digits
    const rfc = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
    expect(totp(rfc, 59_000)).toBe('287082')
    expect(totp(rfc, 1_111_111_109_000)).toBe('081804')
    expect(totp(rfc, 2_000_000_000_000)).toBe('279037')
  })

  // CI installs oathtool (.ci/run); elsewhere it may be missing.
  it.skipIf(!existsSync('/usr/bin/oathtool') && process.env.CI !== 'true')('agrees with oathtool', () => {
    const now = Date.now()
    for (const at of [0, 59_000, now - 90_000, now, now + 30_000, now + 240_000]) {
      const want = execFileSync('oathtool', ['--totp', '-b', SECRET, '-N', `@${Math.floor(at / 1000)}`], {encoding: 'utf8'}).trim()
      expect(totp(SECRET, at), `at ${at}`).toBe(want)
    }
  })
})

describe('test/site/users.sh', () => {
  const script = join(import.meta.dirname, '..', 'site', 'users.sh')

  it('lists a registered run while it runs, and never a later process or a zombie with its pid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-users-'))
    const users = (...args: string[]) => execFileSync('bash', [script, ...args], {encoding: 'utf8', env: {...process.env, SITE_DIR: dir}})
    const live = () => users('live').split('\n').filter(Boolean).map(Number)
    try {
      const run = spawn('sleep', ['30'])
      const pid = run.pid!
      users('add', String(pid), 'a test run')
      expect(live()).toEqual([pid])
      // Another process's start time under this pid: not the registered run.
      const record = readFileSync(join(dir, 'users', String(pid)), 'utf8')
      writeFileSync(join(dir, 'users', String(pid)), record.replace(/^\d+/, (t) => String(Number(t) + 1)))
      expect(live()).toEqual([])
      writeFileSync(join(dir, 'users', String(pid)), record)
      const exited = new Promise((resolve) => run.once('exit', resolve))
      run.kill()
      await exited
      expect(live()).toEqual([])

      // A child its parent never waits for stays a zombie: ended, though /proc still lists it.
      const parent = spawn('bash', ['-c', 'sleep 0.5 & echo $!; exec sleep 30'])
      const zombie = Number((await new Promise<Buffer>((resolve) => parent.stdout.once('data', resolve))).toString())
      users('add', String(zombie), 'a run that ends')
      expect(live()).toEqual([zombie])
      while (!/\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8'))) await sleep(50)
      expect(live()).toEqual([])
      parent.kill()
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
