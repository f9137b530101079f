import {chmodSync, existsSync, lstatSync, mkdirSync, readdirSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import type {Readable, Writable} from 'node:stream'

import {execa} from '../vendor/execa.js'

import {AnnexError, oneLine, systemError, userError} from '../errors.js'
import {closedErrors} from './closed.js'
import {AskpassBridge} from './askpass.js'
import {findSsh, resolveTarget, sshG, type ResolvedTarget} from './config.js'
import {knownHostName} from './known-hosts.js'
import {SessionPool, withSession} from './pool.js'
import type {ExecOptions, ExecResult, Interaction, LoginTarget, Transport} from './transport.js'

export interface OpenSshOptions {
  /** Where master sockets live (mode 0700) when the target names no directory. Default: defaultControlDir(). */
  controlDir?: string
  /** ControlPersist of a master this process opens, in seconds (default 300). */
  persist?: number
  /** Leave a master this process opened running after close() (`hpc-annex login`). */
  keepMaster?: boolean
  /** Most sessions open at once (the server's MaxSessions; lowered on refusal). Default 10. */
  maxSessions?: number
  /** The OpenSSH client (default `ssh`). */
  ssh?: string
  /** Whether a person can answer an unknown host key question (default: stdin and stderr are terminals). */
  interactive?: boolean
  /** ServerAliveInterval of the master, in seconds (default 15). */
  serverAliveInterval?: number
}

// A Unix socket path holds at most 107 bytes. ssh first binds <dir>/master-<40 hex>
// with a '.' and 16 random characters added, then renames it: that must fit.
const SOCKET_PATH_MAX = 107
const SOCKET_NAME_LENGTH = 'master-'.length + 40 + '.'.length + 16

/**
 * Where master sockets live by default: ~/.hpc-annex, as HTCondor's
 * `htcondor annex` puts them (`<dir>/master-%C`), so that a connection
 * either tool opened serves the other; or, when a long HOME would make the
 * socket path too long for the kernel, a private directory under /tmp named
 * for the user (the same one every run computes).
 */
export function defaultControlDir(env: NodeJS.ProcessEnv = process.env): string {
  const preferred = join(env.HOME || homedir(), '.hpc-annex')
  if (socketFits(preferred)) return preferred
  return join('/tmp', `hpc-annex-ssh-${process.getuid?.() ?? 'user'}`)
}

function socketFits(dir: string): boolean {
  return Buffer.byteLength(dir) + 1 + SOCKET_NAME_LENGTH <= SOCKET_PATH_MAX
}

/** The directory of a target's master socket: the one it names (--tmp_dir, ANNEX_TMP_DIR), else `fallback`, else the default. */
export function controlDirOf(target: LoginTarget, fallback?: string): string {
  return target.controlDir?.path ?? fallback ?? defaultControlDir()
}

/**
 * Makes sure the master socket's directory can be used. One the user named
 * (`named`: '--tmp_dir' or 'ANNEX_TMP_DIR') must be a directory of theirs
 * that nobody else can write to (made, mode 0700, when missing) and short
 * enough for a socket path; one hpc-annex chose is made and kept at 0700.
 */
export function ensureControlDir(dir: string, named?: string): void {
  if (named !== undefined) {
    const where = `The SSH control directory '${dir}' (${named})`
    if (!socketFits(dir)) {
      throw userError(`${where} is too long for a socket path (at most ${SOCKET_PATH_MAX - 1 - SOCKET_NAME_LENGTH} bytes); change ${named}.`)
    }
    let info = lstatSync(dir, {throwIfNoEntry: false})
    if (info === undefined) {
      mkdirSync(dir, {recursive: true, mode: 0o700})
      info = lstatSync(dir)
    }
    if (!info.isDirectory()) throw userError(`${where} is not a directory; change ${named}.`)
    if (process.getuid && info.uid !== process.getuid()) throw userError(`${where} is not yours (another user could take over its connections); change ${named}.`)
    if ((info.mode & 0o022) !== 0) {
      throw userError(`${where} is writable by others (they could take over its connections); give a directory only you can write to (e.g. ~/.hpc-annex) with ${named}.`)
    }
    return
  }
  mkdirSync(dir, {recursive: true, mode: 0o700})
  // Under /tmp someone else could have made it first: it must be ours, a real directory.
  const info = lstatSync(dir)
  if (!info.isDirectory() || (process.getuid && info.uid !== process.getuid())) {
    throw systemError(`${dir} is not a directory of yours; remove it, or set HOME to a shorter path.`)
  }
  chmodSync(dir, 0o700)
}

/** The options every ssh run for a target shares: the user's config file and flags. */
function targetArgs(target: LoginTarget): string[] {
  return [
    ...(target.configFile ? ['-F', target.configFile] : []),
    ...(target.port ? ['-p', String(target.port)] : []),
    ...(target.user ? ['-l', target.user] : []),
    ...(target.identityFile ? ['-i', target.identityFile] : []),
    ...(target.knownHostsFile ? ['-o', `UserKnownHostsFile=${target.knownHostsFile}`] : []),
  ]
}

/** The master's socket for a target, as ssh expands `<dir>/master-%C`. */
export async function controlPath(target: LoginTarget, dir: string, ssh = 'ssh'): Promise<string> {
  const options = await sshG(ssh, {...target, host: target.host}, [...(target.identityFile ? ['-i', target.identityFile] : []), '-o', `ControlPath=${join(dir, 'master-%C')}`])
  const path = options.get('controlpath')?.[0]
  if (!path) throw systemError(`ssh -G did not report a ControlPath for ${target.host}; is this OpenSSH?`)
  return path
}

/** Is a master running behind `path`? */
export async function masterAlive(target: LoginTarget, path: string, ssh = 'ssh'): Promise<boolean> {
  const result = await execa(ssh, ['-S', path, '-O', 'check', ...targetArgs(target), '--', target.host], {reject: false, stdin: 'ignore'})
  return result.exitCode === 0
}

/** Whether a live master for the target exists in `dir` (opened by `hpc-annex login`, or by another run). */
export async function hasLiveMaster(target: LoginTarget, dir = defaultControlDir(), ssh = 'ssh'): Promise<boolean> {
  try {
    // Most runs have no master at all: then no ssh process needs to say so.
    if (!existsSync(dir) || !readdirSync(dir).some((name) => name.startsWith('master-'))) return false
    const path = await controlPath(target, dir, ssh)
    // No socket, no master: spare the `ssh -O check`.
    return existsSync(path) && (await masterAlive(target, path, ssh))
  } catch {
    return false
  }
}

/** What ssh says when the other end (or a ProxyCommand) hung up; said after the line that tells why. */
const HUNG_UP = /^(?:kex_exchange_identification:|banner exchange:|Connection closed by UNKNOWN)/

function lastLines(text: string): string {
  const lines = text
    .replace(/\r/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^@+$|^Pseudo-terminal/.test(line))
  const telling = lines.filter((line) => !HUNG_UP.test(line))
  return oneLine((telling.length > 0 ? telling : lines).slice(-2).join(' '))
}

/** A one-line AnnexError for a failed master login, from what ssh printed. */
export function masterError(stderr: string, target: ResolvedTarget, knownHosts: string): AnnexError {
  const name = knownHostName(target.hostKeyName, target.port)
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(stderr)) {
    return systemError(
      `The host key of ${name} has CHANGED (it differs from ${knownHosts}): refusing to connect, as this may be an attack; ` +
        `if the site changed its keys, remove the old line after checking the new fingerprint with the site.`,
    )
  }
  if (/No .* host key is known for|Host key verification failed/i.test(stderr)) {
    return userError(`The host key of ${name} is not in ${knownHosts}; refusing to connect without a terminal to confirm it.`)
  }
  if (/Permission denied/i.test(stderr)) {
    return userError(`Could not log in to ${target.user}@${name}: ${lastLines(stderr)}; check the user name, keys and ~/.ssh/config.`)
  }
  // ssh sends the ProxyCommand's stderr of a ControlPersist master to /dev/null: what it said is lost.
  if (target.proxyCommand !== undefined && /kex_exchange_identification|banner exchange|Connection closed by UNKNOWN/.test(stderr)) {
    return systemError(
      `Cannot connect to ${target.user}@${name}: its ProxyCommand (${oneLine(target.proxyCommand)}) ended before the server answered; ` +
        `run that command by hand (with %h %p as the host and port) to see why.`,
    )
  }
  return systemError(`Cannot connect to ${target.user}@${name}: ${lastLines(stderr) || 'ssh failed'}.`)
}

/**
 * Feeds a stdin stream to one ssh process after another: what went to a
 * process whose session the server refused is sent again to the next. Only
 * the first MiB is kept; a refused session cannot have taken more than the
 * pipe holds (64 KiB).
 */
class StdinFeed {
  static readonly KEEP = 1 << 20
  #kept: Buffer[] = []
  #keptBytes = 0
  #overflow = false
  #ended = false
  #error: Error | undefined

  constructor(private readonly source: Readable) {
    source.pause()
    source.on('end', () => {
      this.#ended = true
    })
    source.on('error', (error: Error) => {
      this.#error = error
    })
  }

  get replayable(): boolean {
    return !this.#overflow
  }

  /** Starts feeding `dest`; returns a function that stops. */
  attach(dest: Writable, onError: (error: Error) => void): () => void {
    dest.on('error', () => undefined)
    for (const chunk of this.#kept) dest.write(chunk)
    const onData = (chunk: Buffer): void => {
      if (!this.#overflow) {
        this.#kept.push(chunk)
        this.#keptBytes += chunk.length
        if (this.#keptBytes > StdinFeed.KEEP) {
          this.#overflow = true
          this.#kept = []
        }
      }
      if (!dest.write(chunk)) {
        this.source.pause()
        dest.once('drain', () => this.source.resume())
      }
    }
    const onEnd = (): void => {
      dest.end()
    }
    if (this.#error) {
      queueMicrotask(() => onError(this.#error as Error))
      return () => undefined
    }
    if (this.#ended) {
      dest.end()
      return () => undefined
    }
    this.source.on('data', onData)
    this.source.once('end', onEnd)
    this.source.once('error', onError)
    this.source.resume()
    return () => {
      this.source.removeListener('data', onData)
      this.source.removeListener('end', onEnd)
      this.source.removeListener('error', onError)
      this.source.pause()
    }
  }
}

/**
 * For the master and every client: no agent forwarding (`-a`), no X11 (`-x`),
 * no port forwarding or tunnel (ClearAllForwardings), though the user's
 * ssh_config asks for them (ForwardAgent yes, ForwardX11 yes, LocalForward, ...).
 * Command-line options win over the configuration files.
 */
export const NO_FORWARDING = ['-a', '-x', '-o', 'ForwardAgent=no', '-o', 'ForwardX11=no', '-o', 'ClearAllForwardings=yes']

const REFUSED = /session request failed|Session open refused|open failed/i
const SSH_NOISE = /^(?:(?:mux_client_\S*|kex_exchange_identification|Connection closed by UNKNOWN|Control ?socket|ControlSocket)[^\n]*(?:\n|$))+$/

/**
 * The system OpenSSH client with a ControlMaster: one master connection
 * (opened here with its questions asked through an SSH_ASKPASS bridge, or
 * one that `hpc-annex login` left running), every exec a multiplexed client
 * in BatchMode that can never open a connection of its own.
 */
export class OpenSshTransport implements Transport {
  readonly #options: OpenSshOptions
  readonly #ssh: string
  #pool: SessionPool
  #target: LoginTarget | undefined
  #resolved: ResolvedTarget | undefined
  #path: string | undefined
  #ownMaster = false
  #reused = false
  #lost: AnnexError | undefined
  #closed = false
  #children = new Set<{kill(): boolean; stdout?: {destroy(): void} | null; stderr?: {destroy(): void} | null}>()

  constructor(options: OpenSshOptions = {}) {
    this.#options = options
    this.#ssh = options.ssh ?? 'ssh'
    this.#pool = new SessionPool(options.maxSessions ?? 10)
  }

  get target(): ResolvedTarget | undefined {
    return this.#resolved
  }

  /** The master's socket, once connected. */
  get controlPath(): string | undefined {
    return this.#path
  }

  /** Whether connect() found a running master instead of logging in. */
  get reusedMaster(): boolean {
    return this.#reused
  }

  get sessionCap(): number {
    return this.#pool.cap
  }

  async connect(target: LoginTarget, interaction: Interaction): Promise<void> {
    if (this.#path) throw closedErrors.alreadyConnected()
    if (this.#closed) throw closedErrors.closedBeforeLogin()
    if (this.#ssh === 'ssh' && (await findSsh()) === null) {
      throw userError('The OpenSSH client (ssh) is not installed; install it, or use the built-in transport (--ssh ssh2).')
    }
    const dir = controlDirOf(target, this.#options.controlDir)
    ensureControlDir(dir, target.controlDir?.from)
    const resolved = await resolveTarget(target, {ssh: this.#ssh})
    this.#target = target
    this.#resolved = resolved
    const path = await controlPath(target, dir, this.#ssh)
    const name = `${resolved.user}@${resolved.host}${resolved.port === 22 ? '' : `:${resolved.port}`}`
    if (await masterAlive(target, path, this.#ssh)) {
      this.#path = path
      this.#reused = true
      interaction.progress?.(`Using the open SSH connection to ${name}`)
      return
    }
    interaction.progress?.(`Connecting to ${name}`)
    const interactive = this.#options.interactive ?? interaction.interactive ?? Boolean(process.stdin.isTTY && process.stderr.isTTY)
    const bridge = await AskpassBridge.start(interaction)
    try {
      const starting = execa(
        this.#ssh,
        [
          '-M',
          '-f',
          '-N',
          '-o', `ControlPath=${join(dir, 'master-%C')}`,
          '-o', `ControlPersist=${this.#options.persist ?? 300}`,
          '-o', `ServerAliveInterval=${this.#options.serverAliveInterval ?? 15}`,
          '-o', 'ServerAliveCountMax=3',
          '-o', 'BatchMode=no',
          // Whatever the user's ssh_config says: the login node gets no agent, no X11 and no ports.
          ...NO_FORWARDING,
          '-o', `StrictHostKeyChecking=${interactive ? 'ask' : 'yes'}`,
          ...targetArgs(target),
          '--',
          target.host,
        ],
        {reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', env: bridge.env()},
      )
      // close() while logging in stops the login.
      this.#children.add(starting)
      const result = await starting.finally(() => this.#children.delete(starting))
      if (this.#closed) {
        // It may have got as far as a master: that goes too.
        if (result.exitCode === 0) await this.#exitMaster(target, path)
        throw closedErrors.closedWhileLoggingIn(name)
      }
      if (result.exitCode !== 0) {
        if (bridge.failure !== undefined) throw bridge.failure
        throw masterError(String(result.stderr ?? ''), resolved, target.knownHostsFile ?? resolved.knownHostsFiles[0] ?? '~/.ssh/known_hosts')
      }
    } finally {
      await bridge.close()
    }
    this.#path = path
    this.#ownMaster = true
    interaction.progress?.(`Authenticated to ${name}`)
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.#lost) throw this.#lost
    if (this.#closed) throw closedErrors.closed()
    if (!this.#path) throw systemError('Not connected: log in (connect) before running commands.')
    const feed = options.stdin ? new StdinFeed(options.stdin) : undefined
    // From outside, ssh does not say when its session opened: the pool learns the limit from refusals alone.
    return withSession(this.#pool, options.signal, () => this.#attempt(command, options, feed))
  }

  async #attempt(command: string, options: ExecOptions, feed: StdinFeed | undefined): Promise<{refused: true; error: unknown} | {refused: false; value: ExecResult}> {
    if (this.#lost) throw this.#lost
    const target = this.#target
    const path = this.#path
    if (this.#closed || !target || !path) throw closedErrors.closed()
    const host = this.#resolved?.host ?? target.host
    const collect = options.collect ?? true
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    const child = execa(
      this.#ssh,
      [
        '-S', path,
        '-o', 'ControlMaster=no',
        '-o', 'BatchMode=yes',
        // Without the master, fail instead of connecting on our own.
        '-o', 'ProxyCommand=false',
        '-o', 'LogLevel=ERROR',
        // The master forwards an agent to a session only when the client asks: never ask.
        ...NO_FORWARDING,
        '-T',
        ...targetArgs(target),
        '--',
        target.host,
        command,
      ],
      {
        reject: false,
        buffer: false,
        stdin: feed ? 'pipe' : 'ignore',
        stdout: 'pipe',
        stderr: 'pipe',
      },
    )
    this.#children.add(child)
    child.stdout?.on('data', (chunk: Buffer) => {
      options.onStdout?.(chunk)
      if (collect) stdout.push(chunk)
    })
    // ssh's own complaints are read too, to tell a refused session from the command's output.
    const sshErrors: Buffer[] = []
    child.stderr?.on('data', (chunk: Buffer) => {
      if (sshErrors.length < 64) sshErrors.push(chunk)
      // What the mux client itself says about a refused session or a gone master is not the command's output.
      if (SSH_NOISE.test(chunk.toString('utf8'))) return
      options.onStderr?.(chunk)
      if (collect) stderr.push(chunk)
    })
    let stdinError: Error | undefined
    const detach = feed && child.stdin ? feed.attach(child.stdin, (error) => {
      stdinError = error
      child.kill()
    }) : undefined
    // The master holds copies of the client's stdout and stderr until the
    // remote command ends, so an abort cannot wait for them to close.
    const signal = options.signal
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        child.kill('SIGTERM')
        child.stdout?.destroy()
        child.stderr?.destroy()
        reject(signal?.reason)
      }
      if (signal?.aborted) onAbort()
      else signal?.addEventListener('abort', onAbort, {once: true})
    })
    aborted.catch(() => undefined)
    child.catch(() => undefined)
    let result: Awaited<typeof child>
    try {
      result = await Promise.race([child, aborted])
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort)
      detach?.()
      this.#children.delete(child)
    }
    if (stdinError) throw systemError(`Reading the input for a command on ${host} failed: ${oneLine(stdinError.message)}`, {cause: stdinError})
    if (this.#lost) throw this.#lost
    if (this.#closed) throw closedErrors.closedWhileRunning()
    if (result.exitCode === 255) {
      const text = Buffer.concat(sshErrors).toString('utf8')
      if (REFUSED.test(text)) {
        const error = systemError(`${host} refused to open another session (its MaxSessions).`)
        if (feed && !feed.replayable) throw error
        return {refused: true, error}
      }
      if (!(await masterAlive(target, path, this.#ssh))) {
        this.#connectionLost(lastLines(text) || 'the master connection ended')
        throw this.#lost
      }
    }
    const value: ExecResult = {
      code: typeof result.exitCode === 'number' ? result.exitCode : null,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
    }
    if (result.signal) value.signal = result.signal
    return {refused: false, value}
  }

  #connectionLost(reason: string): void {
    if (this.#lost) return
    const host = this.#resolved?.host ?? this.#target?.host ?? 'the login node'
    this.#lost = closedErrors.lost(host, reason)
    this.#pool.fail(this.#lost)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#pool.fail(closedErrors.closedWhileRunning())
    for (const child of this.#children) {
      child.kill()
      // The master keeps copies of these until the remote command ends.
      child.stdout?.destroy()
      child.stderr?.destroy()
    }
    const target = this.#target
    const path = this.#path
    if (this.#ownMaster && !this.#options.keepMaster && target && path) await this.#exitMaster(target, path)
  }

  /** Asks the master on `path` to exit (its sessions end with it). */
  async #exitMaster(target: LoginTarget, path: string): Promise<void> {
    await execa(this.#ssh, ['-S', path, '-O', 'exit', ...targetArgs(target), '--', target.host], {reject: false, stdin: 'ignore'})
  }
}
