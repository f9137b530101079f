import {systemError} from '../errors.js'
import type {TransportOptions} from '../ssh/index.js'
import type {ExecOptions, ExecResult, Interaction, LoginTarget, Transport, TransportKind} from '../ssh/transport.js'

/**
 * A transport whose code (ssh2, the OpenSSH driver, the ssh_config reader)
 * is loaded when it first connects rather than when the command starts: the
 * verbs that log in do so only after their Access Point work (condor_* tools,
 * run as child processes), and `shutdown` without --cancel-pending never
 * does. Otherwise it is the transport `createTransport` returns.
 */
export function lazyTransport(kind: TransportKind | undefined, options: TransportOptions = {}): Transport {
  let transport: Promise<Transport> | undefined
  let closed = false
  const load = () => (transport ??= import('../ssh/index.js').then(({createTransport}) => createTransport(kind, options)))
  return {
    async connect(target: LoginTarget, interaction: Interaction): Promise<void> {
      const loaded = await load()
      // Closed while its code was loading (a failure or Ctrl-C elsewhere): no login is started.
      if (closed) throw systemError('The SSH connection is closed; nothing more can run on it.')
      await loaded.connect(target, interaction)
    },
    async exec(command: string, execOptions?: ExecOptions): Promise<ExecResult> {
      return (await load()).exec(command, execOptions)
    },
    async close(): Promise<void> {
      closed = true
      if (transport) await (await transport).close()
    },
  }
}
