import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {shellQuote} from '../quote.js'
import type {Interaction, Prompt} from './transport.js'

// The helper ssh runs as SSH_ASKPASS: it hands the question to this process
// over a Unix socket and prints the answer for ssh. The answer travels only
// through that socket (0600, in a 0700 directory) and ssh's pipe: never a
// command line, never the environment.
const HELPER = `'use strict'
const net = require('node:net')
const sock = net.connect(process.argv[2])
let data = ''
sock.setEncoding('utf8')
sock.on('connect', () => sock.write(JSON.stringify({prompt: process.argv[3] || '', kind: process.env.SSH_ASKPASS_PROMPT || ''}) + '\\n'))
sock.on('data', (chunk) => { data += chunk })
sock.on('end', () => {
  let reply
  try { reply = JSON.parse(data) } catch { process.exit(1) }
  if (reply && reply.ok) { process.stdout.write(String(reply.answer) + '\\n'); process.exit(0) }
  process.exit(1)
})
sock.on('error', () => process.exit(1))
`

/** A question from ssh, split into what to show and what to ask. */
export function askpassPrompt(text: string, kind = ''): {prompt: Prompt; instructions: string} {
  const lines = text.replace(/\r/g, '').split('\n')
  // ssh puts the explanation first and the question on the last line.
  while (lines.length > 1 && lines[lines.length - 1]?.trim() === '') lines.pop()
  const question = lines.pop() ?? ''
  const confirm = kind === 'confirm' || /\(yes\/no/.test(question)
  return {prompt: {prompt: question, echo: confirm}, instructions: lines.join('\n')}
}

/**
 * Serves `SSH_ASKPASS` for the ssh processes this one starts: every question
 * ssh asks (2FA codes, passwords, passphrases, unknown host keys) goes to
 * `interaction.answer`, one at a time.
 */
export class AskpassBridge {
  readonly dir: string
  readonly socketPath: string
  readonly script: string
  /** Questions asked so far. */
  asked = 0
  /** Why the last question could not be answered (the interaction's own error). */
  failure: unknown
  #server: Server
  #chain: Promise<unknown> = Promise.resolve()
  #sockets = new Set<Socket>()

  private constructor(interaction: Interaction, node: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'hpc-annex-askpass-'))
    chmodSync(this.dir, 0o700)
    this.socketPath = join(this.dir, 'socket')
    const helper = join(this.dir, 'askpass.cjs')
    writeFileSync(helper, HELPER, {mode: 0o600})
    this.script = join(this.dir, 'askpass')
    writeFileSync(this.script, `#!/bin/sh\nexec ${shellQuote(node)} ${shellQuote(helper)} ${shellQuote(this.socketPath)} "$@"\n`, {mode: 0o700})
    this.#server = createServer((socket) => this.#serve(socket, interaction))
  }

  static async start(interaction: Interaction, node: string = process.execPath): Promise<AskpassBridge> {
    const bridge = new AskpassBridge(interaction, node)
    await new Promise<void>((resolve, reject) => {
      bridge.#server.once('error', reject)
      bridge.#server.listen(bridge.socketPath, () => {
        bridge.#server.removeListener('error', reject)
        resolve()
      })
    })
    chmodSync(bridge.socketPath, 0o600)
    bridge.#server.unref()
    return bridge
  }

  /** What ssh needs in its environment to ask through this bridge. */
  env(): Record<string, string> {
    return {SSH_ASKPASS: this.script, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: process.env.DISPLAY ?? ':0'}
  }

  #serve(socket: Socket, interaction: Interaction): void {
    this.#sockets.add(socket)
    socket.on('close', () => this.#sockets.delete(socket))
    socket.on('error', () => undefined)
    let buffer = ''
    socket.setEncoding('utf8')
    const onData = (chunk: string): void => {
      buffer += chunk
      const end = buffer.indexOf('\n')
      if (end < 0) return
      socket.removeListener('data', onData)
      let request: {prompt?: unknown; kind?: unknown}
      try {
        request = JSON.parse(buffer.slice(0, end)) as {prompt?: unknown; kind?: unknown}
      } catch {
        socket.end(JSON.stringify({ok: false}))
        return
      }
      const {prompt, instructions} = askpassPrompt(String(request.prompt ?? ''), String(request.kind ?? ''))
      this.asked++
      // One question at a time, in the order ssh asks them.
      const answer = this.#chain.then(() => interaction.answer([prompt], instructions, 'ssh'))
      this.#chain = answer.catch(() => undefined)
      answer.then(
        (answers) => socket.end(JSON.stringify({ok: true, answer: answers[0] ?? ''})),
        (error) => {
          this.failure = error
          socket.end(JSON.stringify({ok: false}))
        },
      )
    }
    socket.on('data', onData)
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
    rmSync(this.dir, {recursive: true, force: true})
  }
}
