import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * What `test/site/up.sh` writes to `$SITE_DIR/site.json` (default
 * /tmp/hpc-annex-site): everything a test needs to reach the loopback site.
 */
export interface SiteInfo {
  dir: string
  host: string
  /** login node user (unprivileged) */
  user: string
  ports: {
    /** publickey only */
    key: number
    /** publickey, then keyboard-interactive TOTP */
    otp: number
    /** publickey only, MaxSessions 1 */
    one: number
    /** keyboard-interactive: password, then TOTP */
    password: number
  }
  /** MaxSessions of the key and otp sshds */
  maxSessions: number
  /** the workstation's private key for `user` (mode 0600) */
  keyFile: string
  knownHosts: string
  /** ssh_config with Host aliases hpc (key), hpc-2fa, hpc-one, hpc-pw */
  sshConfig: string
  otpSecret: string
  password: string
  /** sshd logs (LogLevel VERBOSE), for counting connections and logins */
  sshdLogs: string[]
  /** scratch shared by every SLURM node, writable by `user` */
  scratch: string
  /** SLURM node names */
  nodes: string[]
  /** the sshd logs by port kind (the same files as sshdLogs, in the order key, otp, one, password) */
  sshdLog: {key: string; otp: string; one: string; password: string}
  /** SSH_ASKPASS helper answering the prompts: $SITE_OTP_CODE or the current code, the password */
  askpass: string
  /** what `hostname` prints on the login node */
  loginHostname: string
  /** "loopback" (everything on 127.0.0.1) or "netns" (behind an emulated network) */
  mode: string
  /** SLURM partitions: compute (default, whole nodes), shared, debug (30 min) */
  partitions: string[]
  /** a small HTCondor tarball whose condor_master is a test double (test/site/README.md) */
  condorTarball: string
  condorTarballSha256: string
}

export const SITE_DIR = process.env.SITE_DIR ?? '/tmp/hpc-annex-site'

export function readSiteInfo(dir = SITE_DIR): SiteInfo {
  return JSON.parse(readFileSync(join(dir, 'site.json'), 'utf8')) as SiteInfo
}

/**
 * test/site/users.sh: registers (add PID LABEL) and unregisters (remove PID)
 * a run using the site, or lists those still running (live).
 */
export function siteUsers(...args: string[]): number[] {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'users.sh')
  const r = spawnSync('bash', [script, ...args], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`test/site/users.sh ${args.join(' ')} failed: ${r.stderr.trim()}`)
  return r.stdout.split('\n').filter((line) => line !== '').map(Number)
}
