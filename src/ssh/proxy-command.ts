import {type ChildProcess, spawn} from 'node:child_process'
import {Duplex} from 'node:stream'

import {oneLine, userError} from '../errors.js'

/**
 * ProxyCommand for the built-in client, as `ssh` runs it: the command with
 * its tokens expanded (%% %h %k %n %p %r, the ones ssh_config(5) allows;
 * another is an error, as it is for ssh), run by `$SHELL -c "exec ..."`, its
 * stdin and stdout the connection to the server. Its stderr is kept to say
 * why, should it fail.
 */

export interface ProxyTokens {
  /** %h: the host name to connect to (HostName). */
  host: string
  /** %p */
  port: number
  /** %r: the remote user. */
  user: string
  /** %n: the host as the user named it. */
  alias: string
  /** %k: HostKeyAlias, else the host as named. */
  hostKeyAlias?: string
}

export function expandProxyCommand(command: string, tokens: ProxyTokens): string {
  return command.replace(/%(.?)/g, (whole, token: string) => {
    switch (token) {
      case '%':
        return '%'
      case 'h':
        return tokens.host
      case 'p':
        return String(tokens.port)
      case 'r':
        return tokens.user
      case 'n':
        return tokens.alias
      case 'k':
        return tokens.hostKeyAlias ?? tokens.alias
      default:
        throw userError(
          `The ProxyCommand for ${tokens.alias} has ${whole === '%' ? 'a lone %' : `the token ${whole}`}, which ProxyCommand does not take (only %%, %h, %k, %n, %p, %r); fix the ssh configuration.`,
        )
    }
  })
}

const STDERR_KEEP = 4096

/** A running ProxyCommand: `stream` is the connection; when it closes, the command is ended. */
export class ProxyCommand {
  readonly stream: Duplex
  readonly #child: ChildProcess
  #stderr = ''
  #exit: {code: number | null; signal: NodeJS.Signals | null} | undefined
  #spawnError: Error | undefined
  readonly #exited: Promise<void>

  constructor(readonly command: string) {
    const shell = process.env.SHELL || '/bin/sh'
    this.#child = spawn(shell, ['-c', `exec ${command}`], {stdio: ['pipe', 'pipe', 'pipe']})
    const child = this.#child
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = {code, signal}
        resolve()
      })
      child.once('error', (error) => {
        this.#spawnError = error
        resolve()
      })
    })
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (text: string) => {
      this.#stderr = (this.#stderr + text).slice(-STDERR_KEEP)
    })
    // Writes after the command is gone (EPIPE) end the connection, reported through the stream.
    child.stdin!.on('error', () => undefined)
    this.stream = Duplex.from({readable: child.stdout!, writable: child.stdin!})
    this.stream.once('close', () => this.kill())
  }

  /** Ends the command (it may outlive its stdin closing: `ssh -W` waits for its channel). */
  kill(): void {
    if (this.#exit === undefined && this.#spawnError === undefined) this.#child.kill('SIGTERM')
  }

  /**
   * Why the command failed, when it did: waits (at most `ms`) for it to end,
   * then says how it ended and the end of what it printed; undefined when it
   * is still running or ended well.
   */
  async failure(ms = 2000): Promise<string | undefined> {
    await Promise.race([this.#exited, new Promise((resolve) => setTimeout(resolve, ms).unref())])
    if (this.#spawnError) return `the ProxyCommand could not start: ${oneLine(this.#spawnError.message)}`
    const exit = this.#exit
    if (!exit || exit.code === 0) return undefined
    const printed = oneLine(this.#stderr.trim().split('\n').slice(-3).join(' '))
    const how = exit.code !== null ? `exited with status ${exit.code}` : `was killed by ${exit.signal}`
    return `the ProxyCommand ${how}${printed ? `: ${printed}` : ''}`
  }
}
