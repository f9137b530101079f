/**
 * A private sshd for one test file, beside the loopback site's (test/site/):
 * the site's login user and authorized key, on a free port of the site's
 * address, with what the site's sshds do not have: a host certificate signed
 * by a test CA, agent and X11 forwarding allowed, and LogLevel DEBUG1 (sshd
 * then logs every channel request: `auth-agent-req@openssh.com`, `x11-req`,
 * and global requests such as `tcpip-forward`). It is started and stopped by
 * the test, so the site's own sshds stay as up.sh made them.
 */
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createConnection, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {processGone, until, type SiteInfo} from '../site/helpers.js'

export interface ExtraSshd {
  dir: string
  host: string
  port: number
  log: string
  /** The (first) host key's public blob (what a plain known_hosts line holds). */
  hostKey: {type: string; base64: string}
  /** Every host key, in the order of `hostKeys`. */
  hostKeys: {type: string; base64: string}[]
  /** The CA that signed the host certificate: its public key line `type base64`. */
  ca: string
  /** The CA's private key file, to sign more certificates with. */
  caKey: string
  /** known_hosts name of this sshd: `[host]:port`. */
  name: string
  /** Lines the sshd logged since `offset` (byte offset of the log; 0 = all). */
  logSince(offset: number): string
  logSize(): number
  stop(): Promise<void>
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({host, port})
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function keygen(args: string[]): void {
  execFileSync('ssh-keygen', ['-q', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
}

/** `ssh-keygen -t` arguments of a key kind. */
const KEY_KINDS = {
  ed25519: ['-t', 'ed25519'],
  ecdsa256: ['-t', 'ecdsa', '-b', '256'],
  ecdsa384: ['-t', 'ecdsa', '-b', '384'],
  ecdsa521: ['-t', 'ecdsa', '-b', '521'],
  rsa: ['-t', 'rsa', '-b', '2048'],
}
export type KeyKind = keyof typeof KEY_KINDS

export interface ExtraSshdOptions {
  /** Principals of the host certificates (default: the site's address and the login node's name). */
  principals?: string[]
  /** Host keys, each with a certificate (default: one Ed25519 key). */
  hostKeys?: KeyKind[]
  /** The CA's key (default Ed25519). */
  ca?: KeyKind
  /** sshd's KexAlgorithms (default sshd's own). */
  kex?: string
  /** sshd's HostKeyAlgorithms (default sshd's own: plain keys and certificates). */
  hostKeyAlgorithms?: string
}

/**
 * Starts the sshd: its host keys each with a host certificate of the test
 * CA, valid from 5 minutes ago for an hour.
 */
export async function startExtraSshd(s: SiteInfo, options: ExtraSshdOptions = {}): Promise<ExtraSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'extra-sshd-'))
  const port = await freePort(s.host)
  const caKey = join(dir, 'ca')
  keygen([...KEY_KINDS[options.ca ?? 'ed25519'], '-N', '', '-C', 'hpc-annex test CA', '-f', caKey])
  const principals = options.principals ?? [s.host, s.loginHostname]
  const hostKeys = (options.hostKeys ?? ['ed25519']).map((kind) => {
    const file = join(dir, `host_${kind}`)
    keygen([...KEY_KINDS[kind], '-N', '', '-C', 'extra sshd', '-f', file])
    keygen(['-s', caKey, '-I', `extra-sshd-${kind}`, '-h', '-n', principals.join(','), '-V', '-5m:+1h', `${file}.pub`])
    return file
  })
  const log = join(dir, 'sshd.log')
  const config = join(dir, 'sshd_config')
  writeFileSync(
    config,
    [
      `ListenAddress ${s.host}`,
      `Port ${port}`,
      ...hostKeys.flatMap((file) => [`HostKey ${file}`, `HostCertificate ${file}-cert.pub`]),
      ...(options.kex ? [`KexAlgorithms ${options.kex}`] : []),
      ...(options.hostKeyAlgorithms ? [`HostKeyAlgorithms ${options.hostKeyAlgorithms}`] : []),
      `PidFile ${join(dir, 'sshd.pid')}`,
      'LogLevel DEBUG1',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AuthenticationMethods publickey',
      'PermitRootLogin no',
      `AllowUsers ${s.user}`,
      'AuthorizedKeysFile .ssh/authorized_keys',
      'AllowTcpForwarding yes',
      'AllowAgentForwarding yes',
      'X11Forwarding yes',
      'PrintMotd no',
      '',
    ].join('\n'),
  )
  execFileSync('/usr/sbin/sshd', ['-t', '-f', config], {stdio: ['ignore', 'pipe', 'pipe']})
  writeFileSync(log, '')
  // In the netns mode of the site, the login node's address lives in its namespace.
  const prefix = s.mode === 'netns' ? ['nsenter', `--net=/run/netns/${process.env.SITE_NS ?? 'annexsite-login'}`] : []
  const argv = [...prefix, '/usr/sbin/sshd', '-D', '-f', config, '-E', log]
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {stdio: 'ignore'})
  const pid = child.pid
  try {
    await until(`the extra sshd on port ${port}`, () => listening(s.host, port), 10_000)
  } catch (error) {
    child.kill()
    throw new Error(`${(error as Error).message}: ${readFileSync(log, 'utf8')}`)
  }
  const publicKeys = hostKeys.map((file) => {
    const [type, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/)
    return {type: type!, base64: base64!}
  })
  return {
    dir,
    host: s.host,
    port,
    log,
    hostKey: publicKeys[0]!,
    hostKeys: publicKeys,
    ca: readFileSync(`${caKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' '),
    caKey,
    name: `[${s.host}]:${port}`,
    logSince: (offset) => readFileSync(log).subarray(offset).toString('utf8'),
    logSize: () => readFileSync(log).length,
    async stop() {
      if (pid !== undefined && !processGone(pid)) {
        child.kill('SIGTERM')
        await until('the extra sshd to stop', () => processGone(pid), 10_000).catch(() => child.kill('SIGKILL'))
      }
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
