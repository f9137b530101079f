import {readFileSync} from 'node:fs'
import {connect as tcpConnect} from 'node:net'
import type {Duplex, Writable} from 'node:stream'

import ssh2 from 'ssh2'
import type {AnyAuthMethod, AuthenticationType, Client as ClientType, ClientChannel, ConnectConfig, NextAuthHandler, ParsedKey} from 'ssh2'

import {AnnexError, oneLine, systemError, userError} from '../errors.js'
import {trace, traced} from '../trace.js'
import {closedErrors} from './closed.js'
import {resolveEarly, resolveTarget, type ResolvedTarget, type ResolveOptions} from './config.js'
import {fetchHostCertificate} from './cert-probe.js'
import {expectEarly, takeEarlySocket} from './early-socket.js'
import {certAuthorities, checkHostCertificate, type CertificateCheck} from './host-cert.js'
import {keyType, knownHostName, knownKeyTypes, verifyHostKey} from './known-hosts.js'
import {SessionPool, withSession} from './pool.js'
import {expandProxyCommand, ProxyCommand} from './proxy-command.js'
import type {ExecOptions, ExecResult, Interaction, LoginTarget, Transport} from './transport.js'

const {Client, utils} = ssh2

export interface Ssh2Options {
  /** Most sessions open at once (the server's MaxSessions; lowered on refusal). Default 10. */
  maxSessions?: number
  /** SSH keepalive every this many ms (default 15 s); the connection is lost after `keepaliveCountMax` unanswered. */
  keepaliveInterval?: number
  keepaliveCountMax?: number
  /** How long the handshake may take, in ms (default 30 s; prompts are not counted). */
  readyTimeout?: number
  /** The ssh-agent socket (default $SSH_AUTH_SOCK); null for none. */
  agent?: string | null
  /** Whether a person can answer an unknown host key question (default: stdin and stderr are terminals). */
  interactive?: boolean
  /** How to apply the user's ssh configuration. */
  resolve?: ResolveOptions
}

const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']

/** Ask the server for a host key type we already know for it, as OpenSSH does. */
function hostKeyAlgorithms(types: string[]): string[] {
  const preferred = types.flatMap((type) => (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type])).filter((alg) => HOST_KEY_ALGORITHMS.includes(alg))
  return [...new Set([...preferred, ...HOST_KEY_ALGORITHMS])]
}

type Step = {type: 'none'} | {type: 'agent'; socket: string} | {type: 'key'; file: string} | {type: 'keyboard-interactive'} | {type: 'password'}

function isEncryptedKeyError(error: Error): boolean {
  return /encrypted|passphrase/i.test(error.message)
}

/** Where one hop of the login stands: who, and what authentication did. */
interface Hop {
  target: ResolvedTarget
  client: ClientType
}

/**
 * Opens a stream to a hop: a channel through the previous hop, or a
 * ProxyCommand. Absent, ssh2 makes its own TCP connection.
 */
type Opener = () => {stream: Duplex; proxy?: ProxyCommand} | Promise<{stream: Duplex; proxy?: ProxyCommand}>

/**
 * The default transport: one ssh2 connection per invocation (through
 * ProxyJump hops or a ProxyCommand when configured), every exec a session
 * channel on it. It never forwards anything to the login node (no agent, no
 * X11, no ports), whatever the ssh configuration says. A host known through
 * an `@cert-authority` line of known_hosts is checked with the certificate
 * it shows to a short key-exchange-only connection before the login
 * (cert-probe.ts; ssh2 itself reads plain host keys only).
 */
export class Ssh2Transport implements Transport {
  readonly #options: Ssh2Options
  #pool: SessionPool
  #hops: Hop[] = []
  #client: ClientType | undefined
  #target: ResolvedTarget | undefined
  #lost: AnnexError | undefined
  #closed = false
  #inFlight = new Set<(error: AnnexError) => void>()
  /** Clients still logging in: close() cuts them off. */
  #loggingIn = new Set<ClientType>()
  /** ProxyCommands running: close() ends them. */
  #proxies = new Set<ProxyCommand>()
  /** Aborted by close(): stops a host certificate check under way. */
  #closing = new AbortController()
  /** The early connection expect() asked for; once the login is done (or will not be), unused, it goes. */
  #early: {discard(): void} | undefined

  constructor(options: Ssh2Options = {}) {
    this.#options = options
    this.#pool = new SessionPool(options.maxSessions ?? 10)
  }

  expect(target: LoginTarget): void {
    this.#early = expectEarly(resolveEarly(target, this.#options.resolve), () => this.#closed || this.#client !== undefined)
  }

  /** The resolved login node, once connected. */
  get target(): ResolvedTarget | undefined {
    return this.#target
  }

  /** The current cap on concurrent sessions (lowered when the server refuses one). */
  get sessionCap(): number {
    return this.#pool.cap
  }

  async connect(target: LoginTarget, interaction: Interaction): Promise<void> {
    if (this.#client) throw closedErrors.alreadyConnected()
    if (this.#closed) throw closedErrors.closedBeforeLogin()
    const resolved = await traced(`ssh2: resolving ${target.host}`, resolveTarget(target, this.#options.resolve))
    this.#target = resolved
    const chain = [...resolved.jumps, resolved]
    try {
      for (const [index, hop] of chain.entries()) {
        const previous = this.#hops[index - 1]?.client
        // Only the first hop is reached by a ProxyCommand: the others through the hop before (ssh's -J is a ProxyCommand too).
        const open: Opener | undefined = previous ? async () => ({stream: await forward(previous, hop)}) : this.#proxyOpener(hop)
        const client = await this.#login(hop, interaction, open, index < chain.length - 1 ? 'jump host' : 'login node')
        this.#hops.push({target: hop, client})
      }
    } catch (error) {
      this.#endAll()
      throw error
    } finally {
      this.#early?.discard()
    }
    const client = this.#hops[this.#hops.length - 1]?.client
    this.#client = client
    if (this.#closed) {
      this.#endAll()
      throw closedErrors.closedWhileLoggingIn(resolved.host)
    }
    // Any hop going away loses the connection.
    for (const hop of this.#hops) {
      hop.client.on('error', (error: Error) => this.#connectionLost(error.message))
      hop.client.on('end', () => this.#connectionLost('the server ended it'))
      hop.client.on('close', () => this.#connectionLost('it closed'))
    }
  }

  /** How to reach a hop through its ProxyCommand; undefined when it has none. */
  #proxyOpener(hop: ResolvedTarget): Opener | undefined {
    if (hop.proxyCommand === undefined) return undefined
    if (hop.proxyUseFdpass) {
      throw userError(`ProxyUseFdpass (set for ${hop.alias} in the ssh configuration) is not supported by the built-in SSH client; use the system's OpenSSH: --ssh openssh.`)
    }
    const command = expandProxyCommand(hop.proxyCommand, {host: hop.host, port: hop.port, user: hop.user, alias: hop.alias, ...(hop.hostKeyName !== hop.host ? {hostKeyAlias: hop.hostKeyName} : {})})
    return () => {
      const proxy = new ProxyCommand(command)
      this.#proxies.add(proxy)
      proxy.stream.once('close', () => this.#proxies.delete(proxy))
      return {stream: proxy.stream, proxy}
    }
  }

  /**
   * What the host's certificate says, read over a connection of its own (the
   * same way the login goes: directly, through the jump host or the
   * ProxyCommand), when known_hosts has an `@cert-authority` line for it.
   */
  async #checkCertificate(target: ResolvedTarget, open: Opener | undefined, role: string, name: string): Promise<CertificateCheck | undefined> {
    if (certAuthorities(target.knownHostsFiles, target.hostKeyName, target.port).length === 0) return undefined
    // The check has no person in it to wait for: it never goes without a time limit.
    const timeout = this.#options.readyTimeout !== undefined && this.#options.readyTimeout > 0 ? this.#options.readyTimeout : 30_000
    const signal = this.#closing.signal
    let opened: {stream: Duplex; proxy?: ProxyCommand} | undefined
    try {
      opened = open ? await open() : {stream: await tcp(target.host, target.port, timeout, signal)}
    } catch (error) {
      if (this.#closed) throw closedErrors.closedWhileLoggingIn(`${role} ${name}`)
      throw systemError(`Cannot connect to ${role} ${name}: ${oneLine((error as Error).message)}.`, {cause: error})
    }
    try {
      const {certificate} = await fetchHostCertificate(opened.stream, {timeout, signal})
      return checkHostCertificate(certificate, {files: target.knownHostsFiles, host: target.hostKeyName, port: target.port})
    } catch (error) {
      if (this.#closed) throw closedErrors.closedWhileLoggingIn(`${role} ${name}`)
      // A ProxyCommand that cannot reach the host fails the login as it would fail it.
      const proxyFailure = await opened.proxy?.failure()
      if (proxyFailure) throw systemError(`Cannot connect to ${role} ${name}: ${proxyFailure}.`)
      return {status: 'invalid', reason: oneLine((error as Error).message)}
    } finally {
      opened.stream.destroy()
    }
  }

  #connectionLost(reason: string): void {
    if (this.#lost || this.#closed) return
    const host = this.#target?.host ?? 'the login node'
    this.#lost = closedErrors.lost(host, reason)
    this.#pool.fail(this.#lost)
    for (const reject of [...this.#inFlight]) reject(this.#lost)
    this.#inFlight.clear()
  }

  /** Logs in to one hop: its certificate checked, then the connection, the host key and the authentication. */
  async #login(target: ResolvedTarget, outer: Interaction, open: Opener | undefined, role: string): Promise<ClientType> {
    const name = `${target.user}@${target.host}${target.port === 22 ? '' : `:${target.port}`}`
    outer.progress?.(`Connecting to ${role} ${name}`)
    const certificate = await this.#checkCertificate(target, open, role, name)
    const client = new Client()
    if (this.#closed) throw closedErrors.closedWhileLoggingIn(`${role} ${name}`)
    const opened = open ? await open() : undefined
    // A direct login takes the connection opened as soon as the target was known (early-socket.ts).
    const early = open ? undefined : takeEarlySocket(target.host, target.port)
    // Errors during the login are handled below, and after it by the connection-lost handlers; a
    // late one (a ProxyCommand's stream closing after a failed login) must not go unhandled.
    client.on('error', () => undefined)
    this.#loggingIn.add(client)
    let failure: unknown
    const fail = (error: unknown): void => {
      failure ??= error
      client.end()
    }
    const timeout = this.#options.readyTimeout ?? 30_000
    const timer = new LoginTimer(timeout, () => {
      fail(systemError(`Logging in to ${role} ${name} timed out after ${Math.round(timeout / 1000)} s without an answer from the server.`))
      client.destroy()
    })
    const interaction = timer.pausing(outer)
    const interactive = this.#options.interactive ?? outer.interactive ?? Boolean(process.stdin.isTTY && process.stderr.isTTY)
    const agent = this.#options.agent === undefined ? process.env.SSH_AUTH_SOCK : this.#options.agent
    const auth = authenticator(target, name, authSteps(target, agent), interaction, fail)
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      ...(opened ? {sock: opened.stream} : early ? {sock: early} : {}),
      keepaliveInterval: this.#options.keepaliveInterval ?? 15_000,
      keepaliveCountMax: this.#options.keepaliveCountMax ?? 3,
      readyTimeout: 0,
      // Nothing is forwarded to the login node; exec() asks for no agent, X11 or pty either.
      agentForward: false,
      // A key its certificate vouches for first: the one the check above was about.
      algorithms: {
        serverHostKey: hostKeyAlgorithms([
          ...(certificate?.status === 'valid' ? [keyType(certificate.cert.key)] : []),
          ...knownKeyTypes(target.knownHostsFiles, target.hostKeyName, target.port),
        ]) as never,
      },
      hostVerifier: hostVerifier(target, interaction, interactive, certificate, (error) => (failure ??= error)) as ConnectConfig['hostVerifier'],
      authHandler: auth.handler as ConnectConfig['authHandler'],
    }
    trace(`ssh2: connecting to ${name}`)
    try {
      await connected(client, config, {
        role,
        name,
        target,
        certificate,
        timer,
        failure: () => failure,
        methodsLeft: auth.methodsLeft,
        ...(opened?.proxy ? {proxy: opened.proxy} : {}),
      })
    } finally {
      timer.stop()
      this.#loggingIn.delete(client)
    }
    interaction.progress?.(`Authenticated to ${name} (${auth.lastMethod().split(' ')[0]})`)
    return client
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.#lost) throw this.#lost
    if (this.#closed) throw closedErrors.closed()
    if (!this.#client) throw systemError('Not connected: log in (connect) before running commands.')
    return withSession(this.#pool, options.signal, (opened) => this.#attempt(command, options, opened))
  }

  #attempt(command: string, options: ExecOptions, opened: () => void): Promise<{refused: true; error: unknown} | {refused: false; value: ExecResult}> {
    const client = this.#client
    if (this.#lost) return Promise.reject(this.#lost)
    if (this.#closed || !client) return Promise.reject(closedErrors.closed())
    const {stdin, signal} = options
    const collect = options.collect ?? true
    const host = this.#target?.host ?? 'the login node'
    return new Promise((resolve, reject) => {
      let settled = false
      let channel: ClientChannel | undefined
      const stdout: Buffer[] = []
      const stderr: Buffer[] = []
      let code: number | null = null
      let exitSignal: string | undefined
      const onStdinError = (error: Error): void => {
        channel?.close()
        settle(() => reject(systemError(`Reading the input for a command on ${host} failed: ${oneLine(error.message)}`, {cause: error})))
      }
      const onAbort = (): void => {
        if (channel) {
          try {
            channel.signal('HUP')
          } catch {
            // the channel may already be closing
          }
          channel.close()
        }
        settle(() => reject(signal?.reason))
      }
      const onLost = (error: AnnexError): void => settle(() => reject(error))
      const settle = (finish: () => void): void => {
        if (settled) return
        settled = true
        this.#inFlight.delete(onLost)
        signal?.removeEventListener('abort', onAbort)
        if (stdin && channel) {
          stdin.unpipe(channel)
          stdin.removeListener('error', onStdinError)
        }
        if (channel) {
          channel.removeAllListeners('data')
          channel.stderr.removeAllListeners('data')
          channel.removeAllListeners('exit')
          channel.removeAllListeners('close')
          // Late events (a close after an abort) must not throw.
          channel.on('error', () => undefined)
        }
        finish()
      }
      this.#inFlight.add(onLost)
      if (signal) signal.addEventListener('abort', onAbort, {once: true})
      try {
        trace('ssh2: exec requested')
        client.exec(command, (error, ch) => {
          trace('ssh2: exec answered')
          if (settled) {
            ch?.close()
            return
          }
          if (error) {
            const refused = /open failure|open failed|prohibited|resource shortage/i.test(error.message) || (error as {reason?: number}).reason !== undefined
            const annex = systemError(`${host} refused to run a command: ${oneLine(error.message)}`, {cause: error})
            if (refused) settle(() => resolve({refused: true, error: annex}))
            else if (this.#lost) settle(() => reject(this.#lost))
            else settle(() => reject(annex))
            return
          }
          channel = ch
          opened()
          ch.on('data', (chunk: Buffer) => {
            options.onStdout?.(chunk)
            if (collect) stdout.push(chunk)
          })
          ch.stderr.on('data', (chunk: Buffer) => {
            options.onStderr?.(chunk)
            if (collect) stderr.push(chunk)
          })
          ch.on('error', (err: Error) => settle(() => reject(systemError(`A command on ${host} failed: ${oneLine(err.message)}`, {cause: err}))))
          ch.on('exit', (exitCode: number | null, sig?: string) => {
            if (typeof exitCode === 'number') code = exitCode
            else if (sig) exitSignal = sig
          })
          ch.on('close', () => {
            // Channels closed because the connection went away have no exit status.
            if (code === null && exitSignal === undefined && (this.#lost || this.#closed)) {
              settle(() => reject(this.#lost ?? closedErrors.closedWhileRunning()))
              return
            }
            setImmediate(() => {
              if (code === null && exitSignal === undefined && this.#lost) return settle(() => reject(this.#lost))
              const result: ExecResult = {
                code,
                stdout: Buffer.concat(stdout).toString('utf8'),
                stderr: Buffer.concat(stderr).toString('utf8'),
              }
              if (exitSignal !== undefined) result.signal = exitSignal
              settle(() => resolve({refused: false, value: result}))
            })
          })
          if (stdin) {
            stdin.on('error', onStdinError)
            stdin.pipe(ch)
          } else {
            ch.end()
          }
        })
      } catch (error) {
        settle(() => reject(this.#lost ?? systemError(`Cannot run a command on ${host}: ${oneLine((error as Error).message)}`)))
      }
    })
  }

  #endAll(): void {
    for (const hop of [...this.#hops].reverse()) {
      try {
        hop.client.end()
      } catch {
        // already gone
      }
    }
    for (const proxy of this.#proxies) proxy.kill()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const closedError = closedErrors.closedWhileRunning()
    this.#pool.fail(closedError)
    for (const reject of [...this.#inFlight]) reject(closedError)
    this.#inFlight.clear()
    this.#closing.abort(closedError)
    this.#early?.discard()
    for (const client of this.#loggingIn) client.destroy()
    const hops = [...this.#hops].reverse()
    await Promise.all(
      hops.map(
        (hop) =>
          new Promise<void>((resolve) => {
            const client = hop.client as ClientType & {_sock?: Writable & {destroyed?: boolean; unref?(): void}}
            const sock = client._sock
            if (!sock || sock.destroyed) return resolve()
            const timer = setTimeout(() => {
              client.destroy()
              resolve()
            }, 2000)
            timer.unref()
            const done = (): void => {
              clearTimeout(timer)
              resolve()
            }
            client.once('close', done)
            // Done once the goodbye (DISCONNECT, then FIN) is handed to the kernel: the
            // server's own close, a round trip later, no longer holds the process.
            sock.once('finish', () => {
              sock.unref?.()
              done()
            })
            client.end()
          }),
      ),
    )
    for (const proxy of this.#proxies) proxy.kill()
  }
}

/**
 * The login's own time limit: a silent server fails the login, but the time
 * a person takes to answer a question does not count.
 */
class LoginTimer {
  #timer: NodeJS.Timeout | undefined
  #asking = 0

  constructor(
    private readonly ms: number,
    private readonly onTimeout: () => void,
  ) {}

  start(): void {
    clearTimeout(this.#timer)
    if (this.ms <= 0) return
    this.#timer = setTimeout(this.onTimeout, this.ms)
    this.#timer.unref()
  }

  stop(): void {
    clearTimeout(this.#timer)
  }

  /** The interaction, with the timer stopped while a question is open. */
  pausing(outer: Interaction): Interaction {
    return {
      answer: async (prompts, instructions, promptName) => {
        this.#asking++
        this.stop()
        try {
          return await outer.answer(prompts, instructions, promptName)
        } finally {
          if (--this.#asking === 0) this.start()
        }
      },
      progress: (message) => outer.progress?.(message),
    }
  }
}

/** The methods to try, in OpenSSH's order: the agent, each key, the server's questions, a password. */
function authSteps(target: ResolvedTarget, agent: string | null | undefined): Step[] {
  const steps: Step[] = []
  if (agent && !target.identitiesOnly) steps.push({type: 'agent', socket: agent})
  for (const file of target.identityFiles) steps.push({type: 'key', file})
  // "none" only learns which methods the server takes, a round trip; a key's refusal says the same. Without
  // a key to offer, it still comes first, so that no password is asked of a server that takes none.
  if (steps.length === 0) steps.push({type: 'none'})
  // A wrong code or password may be typed again, as OpenSSH allows.
  for (let i = 0; i < 3; i++) steps.push({type: 'keyboard-interactive'})
  for (let i = 0; i < 3; i++) steps.push({type: 'password'})
  return steps
}

/**
 * ssh2's authHandler over those steps, skipping what the server no longer
 * takes; key passphrases, the server's questions (2FA) and a password are
 * asked through the interaction.
 */
function authenticator(target: ResolvedTarget, name: string, steps: Step[], interaction: Interaction, fail: (error: unknown) => void) {
  let lastMethod = ''
  let methodsLeft: AuthenticationType[] | null = null
  const nextMethod = async (): Promise<AnyAuthMethod | false> => {
    for (;;) {
      const step = steps.shift()
      if (!step) return false
      const username = target.user
      const allowed = (type: AuthenticationType): boolean => methodsLeft === null || methodsLeft.includes(type)
      switch (step.type) {
        case 'none':
          if (methodsLeft !== null) continue
          lastMethod = 'none'
          return {type: 'none', username}
        case 'agent':
          if (!allowed('publickey')) continue
          lastMethod = 'agent'
          return {type: 'agent', username, agent: step.socket}
        case 'key': {
          if (!allowed('publickey')) continue
          const key = await loadKey(step.file, interaction)
          if (!key) continue
          lastMethod = `publickey ${step.file}`
          return {type: 'publickey', username, key}
        }
        case 'keyboard-interactive':
          if (!allowed('keyboard-interactive')) continue
          lastMethod = 'keyboard-interactive'
          return {
            type: 'keyboard-interactive',
            username,
            prompt: (promptName, instructions, _lang, prompts, finish) => {
              interaction
                .answer(
                  prompts.map((p) => ({prompt: p.prompt, echo: Boolean(p.echo)})),
                  instructions,
                  promptName,
                )
                .then((answers) => finish(answers), fail)
            },
          }
        case 'password': {
          if (!allowed('password')) continue
          const [password] = await interaction.answer([{prompt: `${name}'s password: `, echo: false}], '', 'Password')
          lastMethod = 'password'
          return {type: 'password', username, password: password ?? ''}
        }
      }
    }
  }
  return {
    handler: (left: AuthenticationType[] | null, _partial: boolean | null, next: NextAuthHandler): void => {
      methodsLeft = left
      nextMethod().then(
        (method) => next(method as AnyAuthMethod),
        (error) => {
          fail(error)
          next(false as unknown as AnyAuthMethod)
        },
      )
    },
    lastMethod: () => lastMethod,
    methodsLeft: () => methodsLeft,
  }
}

/**
 * ssh2's hostVerifier: the key (or the certificate already checked) against
 * known_hosts; an unknown host is asked about where a person can answer.
 * A refusal's reason goes to `refused`.
 */
function hostVerifier(target: ResolvedTarget, interaction: Interaction, interactive: boolean, certificate: CertificateCheck | undefined, refused: (error: unknown) => void) {
  return (key: Buffer, verify: (valid: boolean) => void): void => {
    verifyHostKey({
      host: target.hostKeyName,
      port: target.port,
      key,
      files: target.knownHostsFiles,
      appendTo: target.knownHostsFiles[0] ?? `${process.env.HOME}/.ssh/known_hosts`,
      interaction,
      interactive,
      hash: target.hashKnownHosts,
      ...(certificate ? {certificate} : {}),
    }).then(
      () => verify(true),
      (error) => {
        refused(error)
        verify(false)
      },
    )
  }
}

/** Connects and waits until the client is ready; the one-line error says why it is not. */
function connected(
  client: ClientType,
  config: ConnectConfig,
  login: {
    role: string
    name: string
    target: ResolvedTarget
    certificate: CertificateCheck | undefined
    timer: LoginTimer
    proxy?: ProxyCommand
    failure: () => unknown
    methodsLeft: () => AuthenticationType[] | null
  },
): Promise<void> {
  const {role, name, target, proxy} = login
  return new Promise<void>((resolve, reject) => {
    const done = (error?: unknown): void => {
      client.removeListener('ready', onReady)
      client.removeListener('error', onError)
      client.removeListener('close', onClose)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onReady = (): void => done()
    // When a ProxyCommand failed, what it said is the reason the connection ended.
    const ended = (reason: unknown): void => {
      if (!proxy) return done(reason)
      void proxy.failure().then((proxyFailure) => done(proxyFailure ? systemError(`Cannot connect to ${role} ${name}: ${proxyFailure}.`) : reason))
    }
    const onError = (error: Error & {level?: string}): void => {
      // An unusable agent is not fatal: the next method is tried.
      if (error.level === 'agent') return
      if (login.failure() !== undefined) return done(login.failure())
      if (error.level === 'client-authentication') {
        const methods = login.methodsLeft()
        return done(
          userError(
            `Could not log in to ${name}: the server refused every method tried` +
              `${methods ? ` (it accepts: ${methods.join(', ')})` : ''}; check the user name, keys and ~/.ssh/config.`,
          ),
        )
      }
      if (/verification failed/i.test(error.message)) return done(systemError(`The host key of ${knownHostName(target.host, target.port)} was refused.`))
      // ssh2 logs in with a plain host key; a server that shows only its certificates cannot be logged in to so.
      if (/no matching host key format/i.test(error.message) && login.certificate !== undefined) {
        return done(
          userError(
            `The ${role} ${name} offers only host certificates, which the built-in SSH client can check but not log in with; use the system's OpenSSH: --ssh openssh.`,
          ),
        )
      }
      ended(systemError(`Cannot connect to ${role} ${name}: ${oneLine(error.message)}.`, {cause: error}))
    }
    const onClose = (): void => (login.failure() !== undefined ? done(login.failure()) : ended(systemError(`The ${role} ${name} closed the connection during login.`)))
    client.on('ready', onReady)
    client.on('error', onError)
    client.on('close', onClose)
    client.once('handshake', () => trace(`ssh2: key exchange with ${name} done`))
    login.timer.start()
    try {
      client.connect(config)
      // The login and the staging stream are many small writes; Nagle would hold each behind the last one's ACK, a round trip.
      client.setNoDelay(true)
    } catch (error) {
      done(systemError(`Cannot connect to ${role} ${name}: ${(error as Error).message}`))
    }
  })
}

/** A TCP connection to host:port, for a host certificate check. */
function tcp(host: string, port: number, timeout: number, signal: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({host, port})
    const fail = (error: Error): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      reject(error)
    }
    const onAbort = (): void => fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'))
    const timer = setTimeout(() => fail(new Error(`no connection within ${Math.round(timeout / 1000)} s`)), timeout)
    timer.unref()
    signal.addEventListener('abort', onAbort, {once: true})
    socket.once('error', fail)
    socket.once('connect', () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.removeListener('error', fail)
      socket.setNoDelay(true)
      resolve(socket)
    })
  })
}

/** Opens a direct-tcpip channel to the next hop, used as that hop's socket. */
function forward(client: ClientType, next: ResolvedTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, next.host, next.port, (error, stream) => {
      if (error) reject(systemError(`The jump host could not reach ${next.host}:${next.port}: ${oneLine(error.message)}`, {cause: error}))
      else resolve(stream)
    })
  })
}

/** A private key ready for ssh2, asking for its passphrase when it is encrypted; undefined when unusable. */
async function loadKey(file: string, interaction: Interaction): Promise<ParsedKey | undefined> {
  let data: Buffer
  try {
    data = readFileSync(file)
  } catch {
    return undefined
  }
  const plain = utils.parseKey(data)
  if (!(plain instanceof Error)) return Array.isArray(plain) ? plain[0] : plain
  if (!isEncryptedKeyError(plain)) {
    interaction.progress?.(`Skipping the key ${file}: ${plain.message}`)
    return undefined
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const [passphrase] = await interaction.answer([{prompt: `Enter passphrase for key '${file}': `, echo: false}], '', 'Key passphrase')
    if (!passphrase) return undefined
    const key = utils.parseKey(data, passphrase)
    if (!(key instanceof Error)) return Array.isArray(key) ? key[0] : key
  }
  interaction.progress?.(`Skipping the key ${file}: wrong passphrase`)
  return undefined
}
