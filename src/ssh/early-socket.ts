import {connect, type Socket} from 'node:net'
import {trace} from '../trace.js'
import type {ResolvedTarget} from './config.js'

/**
 * The TCP connection to the login node, opened as soon as `ssh -G` has said
 * where it is, while the SSH code still loads and the Access Point's checks
 * run: the login then starts on a connection already made, a round trip
 * sooner on a distant login node. Only a direct one (no ProxyCommand, no
 * ProxyJump). Nothing is sent on it before the login takes it, and no
 * failure of it is reported: a login that finds none, or a failed one,
 * connects itself and says why it could not.
 */
interface Early {
  socket: Socket
  timer: NodeJS.Timeout
  onError: () => void
}

/** An early connection no login took, and no one discarded, goes after this long. */
const UNUSED_MS = 60_000

const opened = new Map<string, Early>()

function keyOf(host: string, port: number): string {
  return `${host}\0${port}`
}

/** Opens the connection a login to this target will take, unless it goes through a proxy or one is open. */
export function connectEarly(target: ResolvedTarget): void {
  if (target.jumps.length > 0 || target.proxyCommand !== undefined) return
  const key = keyOf(target.host, target.port)
  if (opened.has(key)) return
  trace(`ssh2: early connection to ${target.host}:${target.port}`)
  const socket = connect({host: target.host, port: target.port})
  // Until a login takes it, it keeps no process alive.
  socket.unref()
  const onError = (): void => discard(key)
  socket.once('error', onError)
  const timer = setTimeout(() => discard(key), UNUSED_MS)
  timer.unref()
  opened.set(key, {socket, timer, onError})
}

/** The early connection to this host and port, if one is open or still opening: the caller owns it. */
export function takeEarlySocket(host: string, port: number): Socket | undefined {
  const key = keyOf(host, port)
  const early = opened.get(key)
  if (!early) return undefined
  opened.delete(key)
  clearTimeout(early.timer)
  early.socket.removeListener('error', early.onError)
  if (early.socket.destroyed || !(early.socket.connecting || early.socket.readyState === 'open')) {
    early.socket.destroy()
    return undefined
  }
  early.socket.ref()
  return early.socket
}

function discard(key: string): void {
  const early = opened.get(key)
  if (!early) return
  opened.delete(key)
  clearTimeout(early.timer)
  early.socket.destroy()
}

/** Closes the early connection to this target if no login took it. */
export function discardEarlySocket(target: {host: string; port: number}): void {
  discard(keyOf(target.host, target.port))
}

/**
 * The early connection of a transport told to expect a login: opened once
 * `resolving` (its `ssh -G` answer) is in, unless `stopped()` says the
 * transport has closed or logged in meanwhile; discard() closes it if no
 * login took it (once the answer is in, never waiting for it).
 */
export function expectEarly(resolving: Promise<ResolvedTarget>, stopped: () => boolean): {discard(): void} {
  const resolved = resolving.then(
    (target) => {
      if (!stopped()) connectEarly(target)
      return target
    },
    () => undefined,
  )
  return {
    discard: () => void resolved.then((target) => target && discardEarlySocket(target)),
  }
}
