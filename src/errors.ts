/**
 * The one error type of hpc-annex. Every failure the user should see is an
 * AnnexError: a one-line message that names what to change, and an exit code.
 *   1 — the request or the input is wrong (the user can fix it);
 *   2 — something outside failed (network, login node, HTCondor, SLURM);
 *   129, 130, 143 — a signal ended it (HUP: the terminal was closed; INT:
 *         Ctrl-C; TERM), after undoing what was half-made: 128 + the signal's
 *         number, as a shell reports it.
 */
export type ExitCode = 1 | 2 | 129 | 130 | 143

export interface AnnexErrorOptions {
  exit?: ExitCode
  /** A concrete next action, printed after the message ("Try: ..."). */
  hint?: string
  cause?: unknown
}

export class AnnexError extends Error {
  readonly exitCode: ExitCode
  readonly hint?: string

  constructor(message: string, options: AnnexErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'AnnexError'
    this.exitCode = options.exit ?? 1
    if (options.hint !== undefined) this.hint = options.hint
  }
}

/** The user's input is wrong: exit 1. */
export function userError(message: string, hint?: string): AnnexError {
  return new AnnexError(message, hint === undefined ? {exit: 1} : {exit: 1, hint})
}

/** Something outside the user's input failed: exit 2. */
export function systemError(message: string, options: Omit<AnnexErrorOptions, 'exit'> = {}): AnnexError {
  return new AnnexError(message, {...options, exit: 2})
}

/** A signal interrupted the command: by default exit 130, as a shell reports Ctrl-C. */
export function interruptedError(message: string, exit: 129 | 130 | 143 = 130): AnnexError {
  return new AnnexError(message, {exit})
}

/** One line, whatever the message holds: for terminals, logs and job-ad reasons. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim()
}

/** "1 node", "2 nodes"; "1 entry", "3 entries" with the plural given. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

/** The last non-empty line of a command's output (its stderr, say), for a one-line report. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line !== '')
  return oneLine(lines.at(-1) ?? '')
}
