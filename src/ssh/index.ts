import {systemError} from '../errors.js'
import {findSsh} from './config.js'
import {controlDirOf, hasLiveMaster, OpenSshTransport, type OpenSshOptions} from './openssh.js'
import {Ssh2Transport, type Ssh2Options} from './ssh2.js'
import type {ExecOptions, ExecResult, Interaction, LoginTarget, Transport, TransportKind} from './transport.js'

export {findSsh, resolveTarget, type ResolvedTarget} from './config.js'
export {checkHostKey, fingerprint, verifyHostKey} from './known-hosts.js'
export {hasLiveMaster, OpenSshTransport, type OpenSshOptions} from './openssh.js'
export {Ssh2Transport, type Ssh2Options} from './ssh2.js'
export type {ExecOptions, ExecResult, Interaction, LoginTarget, Prompt, Transport, TransportKind} from './transport.js'

export interface TransportOptions {
  ssh2?: Ssh2Options
  openssh?: OpenSshOptions
  /** Most concurrent sessions, for either kind (default 10). */
  maxSessions?: number
  /** Whether a person can answer questions (unknown host keys). */
  interactive?: boolean
}

function makeOpenSsh(options: TransportOptions): OpenSshTransport {
  return new OpenSshTransport({
    ...(options.maxSessions !== undefined ? {maxSessions: options.maxSessions} : {}),
    ...(options.interactive !== undefined ? {interactive: options.interactive} : {}),
    ...options.openssh,
  })
}

function makeSsh2(options: TransportOptions): Ssh2Transport {
  return new Ssh2Transport({
    ...(options.maxSessions !== undefined ? {maxSessions: options.maxSessions} : {}),
    ...(options.interactive !== undefined ? {interactive: options.interactive} : {}),
    ...options.ssh2,
  })
}

/**
 * Picks the transport when it connects: OpenSSH when a master for the host
 * is already running (so `hpc-annex login` spares the user a second 2FA),
 * ssh2 otherwise.
 */
class AutoTransport implements Transport {
  #chosen: Transport | undefined
  /** The ssh2 transport it will choose unless a master is live, made early when a target is expected. */
  #ssh2: Ssh2Transport | undefined
  #closed = false

  constructor(private readonly options: TransportOptions) {}

  get kind(): TransportKind | undefined {
    return this.#chosen instanceof OpenSshTransport ? 'openssh' : this.#chosen ? 'ssh2' : undefined
  }

  async connect(target: LoginTarget, interaction: Interaction): Promise<void> {
    const dir = controlDirOf(target, this.options.openssh?.controlDir)
    const ssh = this.options.openssh?.ssh ?? (await findSsh())
    const live = ssh !== null && (await hasLiveMaster(target, dir, ssh))
    this.#chosen = live ? makeOpenSsh(this.options) : (this.#ssh2 ?? makeSsh2(this.options))
    // The ssh2 transport made for expect() is not used beside OpenSSH's master: it closes its early connection.
    if (live) void this.#ssh2?.close()
    if (this.#closed) await this.#chosen.close()
    await this.#chosen.connect(target, interaction)
  }

  expect(target: LoginTarget): void {
    this.#ssh2 ??= makeSsh2(this.options)
    this.#ssh2.expect(target)
  }

  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    if (!this.#chosen) return this.#closedOrNot()
    return this.#chosen.exec(command, options)
  }

  async #closedOrNot(): Promise<ExecResult> {
    throw systemError(this.#closed ? 'The SSH connection is closed; nothing more can run on it.' : 'Not connected: log in (connect) before running commands.')
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#ssh2 !== this.#chosen) await this.#ssh2?.close()
    await this.#chosen?.close()
  }
}

/**
 * The transport for a command: `kind` when the user chose one (`--ssh`),
 * otherwise decided at connect time (a live OpenSSH master wins, else ssh2).
 */
export function createTransport(kind: TransportKind | undefined, options: TransportOptions = {}): Transport {
  if (kind === 'openssh') return makeOpenSsh(options)
  if (kind === 'ssh2') return makeSsh2(options)
  return new AutoTransport(options)
}
