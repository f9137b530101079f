import {closeSync} from 'node:fs'
import {isatty} from 'node:tty'

import {interruptedError, type ExitCode} from '../errors.js'

/**
 * Ctrl-C, SIGTERM and SIGHUP (the terminal closed) for every command. Each
 * ends the process with the shell's status for it, 128 + the signal's number:
 * 130 (INT), 143 (TERM), 129 (HUP). Outside a guarded operation the process
 * exits at once (the 'exit' hooks still delete local token files). Inside one
 * — a create that has made things to undo — the first signal aborts the
 * operation's signal so it unwinds, and the command then exits with that
 * status; a second signal exits at once.
 */
const controller = new AbortController()
let installed = false
let guards = 0
let received = 0

const SIGNALS = {
  SIGINT: {exit: 130, reason: 'interrupted'},
  SIGTERM: {exit: 143, reason: 'terminated (SIGTERM)'},
  SIGHUP: {exit: 129, reason: 'hung up (SIGHUP): the terminal was closed'},
} as const satisfies Record<string, {exit: ExitCode; reason: string}>

type HandledSignal = keyof typeof SIGNALS

/** The terminal this process started on is gone (SIGHUP, or a write to it failed). */
let terminalGone = false
/** Which of fds 0-2 were terminals at start. */
let terminalFds: number[] = []

function onSignal(signal: HandledSignal): void {
  received += 1
  if (signal === 'SIGHUP') terminalGone = true
  const {exit, reason} = SIGNALS[signal]
  if (guards === 0 || received > 1) {
    process.exit(exit)
  }
  controller.abort(interruptedError(reason, exit))
}

/**
 * Output can fail once the terminal (or the pipe) is gone: a write to a hung
 * up terminal fails with EIO, to a closed pipe with EPIPE. Such a failure
 * must never end the process before it has undone what it made, so stdout's
 * and stderr's errors are noted, not thrown; what cannot be printed is lost.
 * Node also resets the terminal's modes as it exits and aborts when that
 * fails (EIO on a hung-up terminal), which would replace the command's exit
 * status: once the terminal is gone, its descriptors are closed first, and
 * that reset is skipped. (oclif's own listener, which rethrows all but
 * EPIPE, is replaced.)
 */
function guardOutput(): void {
  terminalFds = [0, 1, 2].filter((fd) => isatty(fd))
  for (const stream of [process.stdout, process.stderr]) {
    stream.removeAllListeners('error')
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EIO' || error.code === 'ENXIO') terminalGone = true
    })
  }
  process.on('exit', () => {
    if (!terminalGone) return
    for (const fd of terminalFds) {
      try {
        closeSync(fd)
      } catch {
        // already closed
      }
    }
  })
}

export function installInterruptHandler(): void {
  if (installed) return
  installed = true
  guardOutput()
  for (const signal of Object.keys(SIGNALS) as HandledSignal[]) process.on(signal, onSignal)
}

/** Aborted when the user interrupts; a guarded operation passes it to every step. Its reason is an AnnexError with the exit status. */
export function interruptSignal(): AbortSignal {
  return controller.signal
}

/** Runs `operation` so that a first interrupt aborts interruptSignal() instead of exiting. */
export async function withInterruptGuard<T>(operation: () => Promise<T>): Promise<T> {
  guards += 1
  try {
    return await operation()
  } finally {
    guards -= 1
  }
}
