import {interruptedError} from '../errors.js'

/**
 * Ctrl-C (and SIGTERM, SIGHUP) for every command. Outside a guarded
 * operation the process exits at once with 130 (the 'exit' hooks still delete
 * local token files). Inside one — a create that has made things to undo —
 * the first signal aborts the operation's signal so it can unwind; a second
 * one exits at once.
 */
const controller = new AbortController()
let installed = false
let guards = 0
let received = 0

function onSignal(signal: NodeJS.Signals): void {
  received += 1
  if (guards === 0 || received > 1) {
    process.exit(130)
  }
  controller.abort(interruptedError(`Interrupted (${signal})`))
}

export function installInterruptHandler(): void {
  if (installed) return
  installed = true
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal)
}

/** Aborted when the user interrupts; a guarded operation passes it to every step. */
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
