import {createHmac} from 'node:crypto'
import {chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {execFileSync, spawn} from 'node:child_process'
import {describe, inject} from 'vitest'
import type {AccessPoint} from './htcondor.js'
import {readSiteInfo, SITE_DIR, siteUsers, type SiteInfo} from './site-info.js'

export {SITE_DIR, type SiteInfo}
export {processGone, until} from './poll.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** true when test/site/global-setup.ts brought the loopback site up */
    SITE_AVAILABLE: boolean
    /** why the site is not available (shown in the skip reason) */
    SITE_UNAVAILABLE_REASON: string
    /** pid of the vitest process that brought the site up (registered in $SITE_DIR/users/) */
    SITE_RUN_PID: number
    /** the real-HTCondor Access Point of this run (JSON of AccessPoint), '' when the tier does not run */
    HTCONDOR_AP: string
    /** why the real-HTCondor tier does not run */
    HTCONDOR_UNAVAILABLE_REASON: string
  }
}

/** Whether the loopback site is up for this run (false outside the integration project). */
export function siteAvailable(): boolean {
  try {
    return inject('SITE_AVAILABLE') === true
  } catch {
    return false
  }
}

/**
 * `describe` when the site is up, skipped otherwise (the global setup already
 * printed why; under CI=true it fails the run instead).
 */
export function describeOnSite(name: string, fn: () => void): void {
  describe.skipIf(!siteAvailable())(name, fn)
}

/** This run's real-HTCondor Access Point (test/site/htcondor.ts), when the real tier runs. */
export function realAccessPoint(): AccessPoint | undefined {
  try {
    const json = inject('HTCONDOR_AP')
    return json ? (JSON.parse(json) as AccessPoint) : undefined
  } catch {
    return undefined
  }
}

/**
 * `describe` when the site is up and real HTCondor runs (HPC_ANNEX_TEST_HTCONDOR);
 * skipped otherwise, with the global setup's warning saying why and how to run it.
 */
export function describeOnRealHTCondor(name: string, fn: () => void): void {
  describe.skipIf(!siteAvailable() || realAccessPoint() === undefined)(`${name} (real HTCondor)`, fn)
}

/** The running site's description ($SITE_DIR/site.json, written by up.sh). */
export function site(): SiteInfo {
  return readSiteInfo()
}

function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const clean = text.toUpperCase().replace(/[\s=]/g, '')
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const ch of clean) {
    const v = alphabet.indexOf(ch)
    if (v < 0) throw new Error(`not base32: ${JSON.stringify(ch)}`)
    value = (value << 5) | v
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

/**
 * The one-time code (RFC 6238 TOTP: HMAC-SHA1, 30 s steps, 6 digits) for the
 * base32 `secret` at time `at` (ms). The site accepts a code only once: a test
 * that logs in again within 30 s passes `Date.now() + 30_000 * k`.
 */
export function totp(secret: string, at: number = Date.now()): string {
  const counter = Math.floor(at / 1000 / 30)
  const msg = Buffer.alloc(8)
  msg.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac('sha1', base32Decode(secret)).update(msg).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000
  return code.toString().padStart(6, '0')
}

/** Byte offsets of the sshd logs: take one before a test, pass it to sshdCounts after. */
export type LogOffsets = Record<string, number>

export function logOffsets(logs: string[] = site().sshdLogs): LogOffsets {
  const out: LogOffsets = {}
  for (const log of logs) out[log] = existsSync(log) ? statSync(log).size : 0
  return out
}

export interface SshdCounts {
  /** new TCP connections (`Connection from ...`) */
  connections: number
  /**
   * completed authentications (`Accepted publickey|keyboard-interactive/pam|password for`);
   * neither `Accepted key ... found at` (twice per key attempt) nor `Partial publickey`
   * (the first factor of 2FA) count
   */
  logins: number
  /** sessions on established connections (`Starting session: ...`): one per exec/shell/sftp channel */
  sessions: number
  /** failed authentication attempts (`Failed ... for`; not counted per client port: some name none) */
  failures: number
}

const ZERO: SshdCounts = {connections: 0, logins: 0, sessions: 0, failures: 0}

/** Client port of a log line (`... from 127.0.0.1 port 39556 ...`), if it names one. */
function clientPort(line: string): number | undefined {
  const m = /(?:^Connection from|\bfrom) \S+ port (\d+)/.exec(line)
  return m ? Number(m[1]) : undefined
}

function count(text: string, clientPorts?: number[]): SshdCounts {
  const c = {...ZERO}
  for (const line of text.split('\n')) {
    if (clientPorts !== undefined && !clientPorts.includes(clientPort(line) ?? -1)) continue
    if (/^Connection from /.test(line)) c.connections++
    else if (/^Accepted (publickey|keyboard-interactive\/pam|password) for /.test(line)) c.logins++
    else if (/^Starting session: /.test(line)) c.sessions++
    else if (/^Failed \S+ for /.test(line)) c.failures++
  }
  return c
}

/**
 * What the site's sshds logged since `since` (from logOffsets()): totals over
 * the logs in `since`, and per log file in `byLog`.
 *
 * The site is shared by every test run on the machine (other worktrees too),
 * so a count can include someone else's connections. `clientPorts` keeps only
 * the lines of connections from those local ports: a transport knows its
 * socket's local port; a remote command can print it (`$SSH_CLIENT` is
 * "ADDRESS PORT SERVER_PORT").
 */
export function sshdCounts(since: LogOffsets, options: {clientPorts?: number[]} = {}): SshdCounts & {byLog: Record<string, SshdCounts>} {
  const total = {...ZERO}
  const byLog: Record<string, SshdCounts> = {}
  for (const [log, offset] of Object.entries(since)) {
    const text = existsSync(log) ? readFileSync(log).subarray(offset).toString('utf8') : ''
    const c = count(text, options.clientPorts)
    byLog[log] = c
    for (const k of Object.keys(total) as (keyof SshdCounts)[]) total[k] += c[k]
  }
  return {...total, byLog}
}

/**
 * Environment for `ssh` to answer the keyboard-interactive prompts without a
 * terminal through the site's askpass helper: the current code, or `code`.
 */
export function askpassEnv(code?: string, askpassLog?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SSH_ASKPASS: `${site().dir}/client/askpass.sh`,
    SSH_ASKPASS_REQUIRE: 'force',
    DISPLAY: process.env.DISPLAY ?? ':0',
  }
  if (code !== undefined) env.SITE_OTP_CODE = code
  if (askpassLog !== undefined) env.ASKPASS_LOG = askpassLog
  return env
}

/**
 * A one-time code no earlier login has used. The site refuses a code used
 * before (DISALLOW_REUSE) but accepts those of the 30 s windows up to 4 min
 * around now (WINDOW_SIZE 17), so successive logins take successive windows,
 * starting 3.5 min back. The last window handed out is kept in
 * $SITE_DIR/otp-last-window, shared by all test files of a run.
 */
export function freshOtpCode(info: SiteInfo = site(), now: number = Date.now()): string {
  const file = join(info.dir, 'otp-last-window')
  const current = Math.floor(now / 30_000)
  let last = Number.NaN
  try {
    last = Number(readFileSync(file, 'utf8').trim())
  } catch {
    // first use
  }
  const window = Number.isFinite(last) ? Math.max(last + 1, current - 7) : current - 7
  if (window > current + 7) throw new Error('freshOtpCode: more than 15 logins within 30 s; wait for the next window')
  writeFileSync(file, `${window}\n`)
  return totp(info.otpSecret, window * 30_000)
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Who a program runs as, and where (a test Access Point's user, say). */
export interface RunAs {
  uid?: number
  gid?: number
  cwd?: string
}

/** Runs a program to its end, collecting its output; `input`, if given, is its stdin (else stdin is closed). */
export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, input?: string, as: RunAs = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {env, ...as, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', code => resolve({code, stdout, stderr}))
    if (input !== undefined) child.stdin!.end(input)
  })
}

/**
 * Lets the pilots' condor_master test double on the site advertise into the
 * fake condor tools' collector whose state is `fakeStateDir`: makes
 * `fakeStateDir` (and its parents) traversable and its `ads.d` writable by
 * the site's user, and names it in ~hpcuser/.hpc-annex-test-collector (where
 * the double looks, since a batch job does not carry the test's environment).
 * Returns a function that undoes the pointer file.
 */
export function shareCollectorWithSite(fakeStateDir: string, info: SiteInfo = site()): () => void {
  const uid = Number(execFileSync('id', ['-u', info.user], {encoding: 'utf8'}).trim())
  const gid = Number(execFileSync('id', ['-g', info.user], {encoding: 'utf8'}).trim())
  for (let dir = fakeStateDir; dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o011)
  }
  const drop = join(fakeStateDir, 'ads.d')
  mkdirSync(drop, {recursive: true})
  chownSync(drop, uid, gid)
  chmodSync(drop, 0o755)
  const home = execFileSync('getent', ['passwd', info.user], {encoding: 'utf8'}).split(':')[5]!
  const pointer = join(home, '.hpc-annex-test-collector')
  writeFileSync(pointer, `${fakeStateDir}\n`)
  chownSync(pointer, uid, gid)
  return () => {
    try {
      if (readFileSync(pointer, 'utf8').trim() === fakeStateDir) rmSync(pointer)
    } catch {
      // already gone
    }
  }
}

/**
 * Other test runs on this machine using the site now (their pids): a test that
 * restarts or reshapes the site should skip itself while there are any.
 */
export function otherSiteRuns(): number[] {
  let mine = -1
  try {
    mine = inject('SITE_RUN_PID')
  } catch {
    // not in the integration project
  }
  return siteUsers('live').filter(pid => pid !== mine && pid !== process.pid)
}

