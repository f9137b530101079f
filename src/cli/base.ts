import {AnnexError, oneLine, type ExitCode} from '../errors.js'
import {installInterruptHandler} from './interrupt.js'
import {Command} from './oclif.js'
import type {CommandShape} from './parse-errors.js'

/** What the user sees when a command fails: one line, and an exit code. */
export interface Failure {
  message: string
  exitCode: ExitCode
  hint?: string
}

/**
 * Turns anything thrown into a Failure. AnnexErrors keep their code; oclif's
 * own parse errors (unknown flag, missing argument) are the user's to fix
 * (exit 1), said in hpc-annex's words when the command's shape is known
 * (else their first lines); anything else is a system error.
 */
export function toFailure(error: unknown, explain?: (error: unknown) => string | undefined): Failure {
  if (error instanceof AnnexError) {
    // A flag's own parser threw it: oclif put "Parsing --FLAG" before it and "See more help" after.
    const message = error.message.replace(/^Parsing --\S+\s*\n\t/, '').replace(/\nSee more help with --help$/, '')
    return {message: oneLine(message), exitCode: error.exitCode, ...(error.hint ? {hint: error.hint} : {})}
  }
  const err = error as {message?: unknown; oclif?: {exit?: number}; name?: string}
  const text = typeof err?.message === 'string' ? err.message : String(error)
  if (err?.oclif !== undefined) {
    const rewritten = explain?.(error)
    if (rewritten !== undefined) return {message: rewritten, exitCode: 1}
    // Keep what oclif says about the problem, not its "See more help" trailer.
    const lines = text.split('\n').filter((line) => line.trim() !== '' && !/^See more help/.test(line.trim()))
    return {message: oneLine(lines.join('\n')).replace(/\s+/g, ' '), exitCode: 1}
  }
  return {message: oneLine(text), exitCode: 2}
}

function isOclifExit(error: unknown): boolean {
  return (error as {code?: string})?.code === 'EEXIT'
}

/**
 * Base of every hpc-annex command: `--json` on every verb (oclif prints the
 * value `run()` returns, with the warnings in it), warnings as one line each,
 * and failures as one line `Error: ...` with exit
 * status 1 (user error) or 2 (system error) — never a stack trace, unless
 * HPC_ANNEX_DEBUG is set.
 */
export abstract class AnnexCommand extends Command {
  static override enableJsonFlag = true

  /** What this command warned about, for the --json output. */
  readonly #warnings: string[] = []

  /** A warning: one line `Warning: ...` on stderr, or, under --json, an entry of `warnings`. */
  override warn(input: string | Error): string | Error {
    const text = oneLine(typeof input === 'string' ? input : input.message)
    if (this.jsonEnabled()) this.#warnings.push(text)
    else process.stderr.write(`Warning: ${text}\n`)
    return input
  }

  /** The --json output: the command's result with every warning in `warnings`. */
  protected override toSuccessJson(result: unknown): unknown {
    if (result === null || typeof result !== 'object' || Array.isArray(result)) return result
    const own = (result as {warnings?: unknown}).warnings
    return {...result, warnings: [...(Array.isArray(own) ? (own as string[]) : []), ...this.#warnings]}
  }

  override async init(): Promise<void> {
    installInterruptHandler()
    await super.init()
  }

  /** This command as parse errors are explained against it. */
  private shape(): CommandShape {
    const ctor = this.ctor as unknown as {flags?: CommandShape['flags']; baseFlags?: CommandShape['flags']; args?: CommandShape['args']}
    return {
      id: (this.id ?? '').replaceAll(':', ' '),
      bin: this.config.bin,
      flags: {...ctor.baseFlags, ...ctor.flags},
      args: ctor.args ?? {},
    }
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (isOclifExit(error)) throw error
    // Loaded only for a failure: a command that succeeds starts without it.
    const {parseErrorMessage} = await import('./parse-errors.js')
    const shape = this.shape()
    const failure = toFailure(error, (parseError) => parseErrorMessage(parseError, shape))
    if (this.jsonEnabled()) {
      this.logJson({error: failure, warnings: this.#warnings})
    } else {
      process.stderr.write(`Error: ${failure.message}\n`)
      if (failure.hint) process.stderr.write(`Try: ${failure.hint}\n`)
      if (process.env.HPC_ANNEX_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`)
    }
    return this.exit(failure.exitCode)
  }
}
