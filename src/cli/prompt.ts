import {closeSync, openSync} from 'node:fs'
import {createInterface} from 'node:readline'
import {ReadStream, WriteStream} from 'node:tty'

import {userError} from '../errors.js'
import type {Interaction, Prompt} from '../ssh/transport.js'

interface Terminal {
  input: NodeJS.ReadStream | ReadStream
  output: NodeJS.WriteStream | WriteStream
  close(): void
}

/** The controlling terminal: /dev/tty when it opens, else stdin/stderr when they are terminals. */
function openTerminal(): Terminal | undefined {
  try {
    const readFd = openSync('/dev/tty', 'r')
    const writeFd = openSync('/dev/tty', 'w')
    const input = new ReadStream(readFd)
    const output = new WriteStream(writeFd)
    // A terminal closed during a question fails its reads and writes (EIO): the question fails (see lost()), the process goes on to undo.
    output.on('error', () => undefined)
    return {
      input,
      output,
      close: () => {
        input.destroy()
        output.destroy()
        for (const fd of [readFd, writeFd]) {
          try {
            closeSync(fd)
          } catch {
            // closed with its stream
          }
        }
      },
    }
  } catch {
    // no controlling terminal
  }
  if (process.stdin.isTTY && process.stderr.isTTY) return {input: process.stdin, output: process.stderr, close: () => process.stdin.pause()}
  return undefined
}

/** Is there a terminal to ask on? */
export function hasTerminal(): boolean {
  const terminal = openTerminal()
  terminal?.close()
  return terminal !== undefined
}

/** Rejects with a one-line error when the terminal fails under a question (it was closed); returns the listener's removal. */
function lost(terminal: Terminal, reject: (error: unknown) => void): () => void {
  const onError = (error: Error): void => reject(userError(`The terminal was lost at the login prompt (${error.message}).`))
  terminal.input.on('error', onError)
  return () => terminal.input.removeListener('error', onError)
}

/**
 * Ctrl-C at a prompt reaches it as a byte (the terminal is raw), not as the
 * signal: raise the signal, so the command unwinds and ends as for any Ctrl-C
 * (exit 130), whatever instant the key was pressed.
 */
function interrupt(): void {
  process.kill(process.pid, 'SIGINT')
}

function readVisible(terminal: Terminal, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({input: terminal.input, output: terminal.output, terminal: true})
    const forget = lost(terminal, (error) => {
      rl.close()
      reject(error)
    })
    rl.on('SIGINT', () => {
      forget()
      rl.close()
      reject(userError('Interrupted at the login prompt.'))
      interrupt()
    })
    rl.question(question, (answer) => {
      forget()
      rl.close()
      resolve(answer)
    })
  })
}

/** Reads a line without echoing it (passwords, codes). */
function readHidden(terminal: Terminal, question: string): Promise<string> {
  const {input, output} = terminal
  return new Promise((resolve, reject) => {
    const raw = 'setRawMode' in input && typeof input.setRawMode === 'function'
    if (raw) input.setRawMode(true)
    // Asked once the terminal is raw: a Ctrl-C typed after the question is read here, never echoed as ^C mid-line.
    output.write(question)
    input.setEncoding('utf8')
    let answer = ''
    const forget = lost(terminal, (error) => finish(error))
    const finish = (error?: unknown): void => {
      forget()
      input.removeListener('data', onData)
      if (raw) input.setRawMode(false)
      input.pause()
      output.write('\n')
      if (error === undefined) resolve(answer)
      else reject(error)
    }
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish()
        if (ch === '\u0003') {
          finish(userError('Interrupted at the login prompt.'))
          return interrupt()
        }
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1)
        else if (ch === '\u0015') answer = ''
        else if (ch >= ' ') answer += ch
      }
    }
    input.on('data', onData)
    input.resume()
  })
}

export interface TerminalInteractionOptions {
  /** The system the login is for, named in the no-terminal error. */
  system?: string
  /** Progress messages (default: stderr); null for none. */
  log?: ((message: string) => void) | null
}

/**
 * The login node's questions, asked on the terminal: instructions printed,
 * each prompt read with echo as the server asks (hidden for codes and
 * passwords). Without a terminal, a question is an error that says how to
 * log in beforehand. Answers are never printed or logged.
 */
export class TerminalInteraction implements Interaction {
  readonly #options: TerminalInteractionOptions

  constructor(options: TerminalInteractionOptions = {}) {
    this.#options = options
  }

  /** Whether answer() can ask a person (a terminal is there). */
  get interactive(): boolean {
    return hasTerminal()
  }

  async answer(prompts: Prompt[], instructions: string, name: string): Promise<string[]> {
    if (prompts.length === 0) return []
    const terminal = openTerminal()
    if (!terminal) {
      const question = (prompts[0]?.prompt ?? name).trim()
      throw userError(
        `hpc-annex needs a terminal for the login node's question '${question}'; ` +
          `run \`hpc-annex login ${this.#options.system ?? 'SYSTEM'}\` first or use a key.`,
      )
    }
    try {
      if (instructions.trim()) terminal.output.write(`${instructions.trim()}\n`)
      const answers: string[] = []
      for (const prompt of prompts) {
        answers.push(prompt.echo ? await readVisible(terminal, prompt.prompt) : await readHidden(terminal, prompt.prompt))
      }
      return answers
    } finally {
      terminal.close()
    }
  }

  progress(message: string): void {
    if (this.#options.log === null) return
    if (this.#options.log) this.#options.log(message)
    else process.stderr.write(`${message}\n`)
  }
}
