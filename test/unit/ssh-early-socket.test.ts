import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {connect, createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import type {ResolvedTarget} from '../../src/ssh/config.js'
import {connectEarly, discardEarlySocket, takeEarlySocket} from '../../src/ssh/early-socket.js'
import {Ssh2Transport} from '../../src/ssh/ssh2.js'
import {until} from '../site/poll.js'

let server: Server
let port: number
/** Connections the server accepted, and whether each has been closed by the client. */
const accepted: {socket: Socket; closed: boolean}[] = []

function target(overrides: Partial<ResolvedTarget> = {}): ResolvedTarget {
  return {
    alias: 'hpc',
    host: '127.0.0.1',
    port,
    user: 'u',
    identityFiles: [],
    identitiesOnly: false,
    knownHostsFiles: [],
    hostKeyName: '127.0.0.1',
    hashKnownHosts: false,
    jumps: [],
    source: 'ssh-config',
    ...overrides,
  }
}

beforeAll(async () => {
  server = createServer((socket) => {
    const entry = {socket, closed: false}
    accepted.push(entry)
    socket.on('end', () => (entry.closed = true))
    socket.on('error', () => (entry.closed = true))
    socket.on('data', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as {port: number}).port
})

afterEach(() => {
  discardEarlySocket(target())
  for (const entry of accepted.splice(0)) entry.socket.destroy()
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('early connection to the login node', () => {
  it('is opened once per host and port, and handed to the login that asks for it', async () => {
    connectEarly(target())
    connectEarly(target())
    await until('the early connection', () => accepted.length === 1, 10_000)
    const socket = takeEarlySocket('127.0.0.1', port)
    expect(socket).toBeDefined()
    // Taken once: a second login connects itself.
    expect(takeEarlySocket('127.0.0.1', port)).toBeUndefined()
    // It is the one the server accepted.
    await until('the connection open', () => socket!.readyState === 'open', 10_000)
    expect(socket!.localPort).toBe(accepted[0]!.socket.remotePort)
    expect(accepted).toHaveLength(1)
    socket!.destroy()
  })

  it('is not opened through a ProxyCommand or a jump host', async () => {
    connectEarly(target({proxyCommand: 'nc %h %p'}))
    connectEarly(target({jumps: [target()]}))
    expect(takeEarlySocket('127.0.0.1', port)).toBeUndefined()
    expect(accepted).toHaveLength(0)
  })

  it('a refused one is not handed out: the login connects itself and reports why', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const refusedPort = (closed.address() as {port: number}).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    connectEarly(target({port: refusedPort}))
    // A connection made after it is refused after it.
    await new Promise<void>((resolve) => connect({host: '127.0.0.1', port: refusedPort}).once('error', () => resolve()))
    expect(takeEarlySocket('127.0.0.1', refusedPort)).toBeUndefined()
  })

  it('one no login took is closed by discardEarlySocket, and only the one to that target', async () => {
    connectEarly(target())
    await until('the early connection', () => accepted.length === 1, 10_000)
    // Another target's discard leaves it to the login.
    discardEarlySocket(target({port: port + 1}))
    const kept = takeEarlySocket('127.0.0.1', port)
    expect(kept).toBeDefined()
    kept!.destroy()
    connectEarly(target())
    await until('a second early connection', () => accepted.length === 2, 10_000)
    discardEarlySocket(target())
    await until('the server to see it closed', () => accepted[1]!.closed, 10_000)
    expect(takeEarlySocket('127.0.0.1', port)).toBeUndefined()
  })
})

describe('a transport told to expect a login', () => {
  it('opens the connection from the ssh configuration at once, and closes it when it closes without logging in', async () => {
    const home = mkdtempSync(join(tmpdir(), 'early-socket-'))
    try {
      const configFile = join(home, 'config')
      writeFileSync(configFile, `Host hpc\n  HostName 127.0.0.1\n  Port ${port}\n  User u\n`)
      const transport = new Ssh2Transport({interactive: false, resolve: {ssh: null, env: {HOME: home}}})
      transport.expect({host: 'hpc', configFile})
      await until('the early connection', () => accepted.length === 1, 10_000)
      await transport.close()
      await until('the server to see it closed', () => accepted[0]!.closed, 10_000)
      expect(takeEarlySocket('127.0.0.1', port)).toBeUndefined()
    } finally {
      rmSync(home, {recursive: true, force: true})
    }
  })
})
