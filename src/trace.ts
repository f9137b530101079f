import {closeSync, openSync, writeSync} from 'node:fs'
import {performance} from 'node:perf_hooks'

/**
 * HPC_ANNEX_TRACE=FILE: a line per event of a run (a step, a condor tool, the
 * login, what the back-end reports), each with the milliseconds since the
 * process started, appended to FILE. It tells where a slow create's time
 * goes. Events name what happened, never a secret.
 */
let fd: number | undefined
let opened = false

function traceFd(): number | undefined {
  if (opened) return fd
  opened = true
  const file = process.env.HPC_ANNEX_TRACE
  if (!file) return undefined
  try {
    fd = openSync(file, 'a', 0o600)
    process.once('exit', () => closeSync(fd!))
  } catch {
    // A trace that cannot be written is no reason to fail the run.
    fd = undefined
  }
  return fd
}

/** Whether events are being recorded (to skip building costly ones). */
export function tracing(): boolean {
  return traceFd() !== undefined
}

/** Records one event. */
export function trace(event: string): void {
  const out = traceFd()
  if (out === undefined) return
  writeSync(out, `${performance.now().toFixed(1).padStart(9)} ms  ${event.replace(/\s+/g, ' ')}\n`)
}

/**
 * Records when PROMISE starts and settles, as `label` and `label: done (N ms)`,
 * and returns it. `label` may be a function, called only when tracing.
 */
export function traced<T>(label: string | (() => string), promise: Promise<T>): Promise<T> {
  if (!tracing()) return promise
  const what = typeof label === 'function' ? label() : label
  const start = performance.now()
  trace(what)
  const done = (how: string) => trace(`${what}: ${how} (${(performance.now() - start).toFixed(1)} ms)`)
  promise.then(
    () => done('done'),
    () => done('failed'),
  )
  return promise
}
