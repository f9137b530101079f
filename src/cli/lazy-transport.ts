import {systemError} from '../errors.js'
import {findSsh, resolveEarly} from '../ssh/config.js'
import {expectEarly} from '../ssh/early-socket.js'
import type {TransportOptions} from '../ssh/index.js'
import type {ExecOptions, ExecResult, Interaction, LoginTarget, Transport, TransportKind} from '../ssh/transport.js'

/**
 * A transport whose code (ssh2, the OpenSSH driver) loads from when it is
 * made, not when the command starts (the ssh_config reader, small, is
 * loaded with the command: `ssh -G` starts at once): the verbs that log in
 * make it first thing (create) or only when they need it (logs, shutdown
 * --cancel-pending), so the loading overlaps the Access Point's work.
 * Otherwise it is the transport `createTransport` returns.
 */
export function lazyTransport(kind: TransportKind | undefined, options: TransportOptions = {}): Transport {
  // Whether OpenSSH is installed decides how the target is resolved: asked now, while the Access Point works.
  void findSsh()
  const transport = import('../ssh/index.js').then(({createTransport}) => createTransport(kind, options))
  // A load failure is reported by the first connect or exec.
  transport.catch(() => undefined)
  let closed = false
  // The early connection expect() asked for; once the login is done (or will not be), unused, it goes.
  let early: {discard(): void} | undefined
  return {
    async connect(target: LoginTarget, interaction: Interaction): Promise<void> {
      const loaded = await transport
      // Closed while its code was loading (a failure or Ctrl-C elsewhere): no login is started.
      if (closed) throw systemError('The SSH connection is closed; nothing more can run on it.')
      try {
        await loaded.connect(target, interaction)
      } finally {
        early?.discard()
      }
    },
    async exec(command: string, execOptions?: ExecOptions): Promise<ExecResult> {
      return (await transport).exec(command, execOptions)
    },
    expect(target: LoginTarget): void {
      // The ssh2 login's ssh_config answer (`ssh -G`, a process of its own) is asked for while ssh2
      // loads, and its connection opened as soon as that answer is in.
      if (kind !== 'openssh' && options.ssh2?.resolve === undefined) {
        early = expectEarly(resolveEarly(target), () => closed)
      } else void transport.then((loaded) => loaded.expect?.(target), () => undefined)
    },
    async close(): Promise<void> {
      closed = true
      early?.discard()
      // Nothing to close when the code never loaded.
      const loaded = await transport.catch(() => undefined)
      await loaded?.close()
    },
  }
}
