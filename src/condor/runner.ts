import {execa} from '../vendor/execa.js'

import {oneLine, systemError, type AnnexError} from '../errors.js'
import {traced} from '../trace.js'

/** The HTCondor tools hpc-annex runs on the Access Point. */
export type CondorTool =
  | 'condor_config_val'
  | 'condor_submit'
  | 'condor_q'
  | 'condor_qedit'
  | 'condor_rm'
  | 'condor_status'
  | 'condor_token_fetch'
  | 'condor_off'
  | 'condor_version'

/** Seconds a query or edit may take when no ANNEX_*_TIMEOUT governs it. */
export const CONDOR_TOOL_TIMEOUT = 60

export interface RunOptions {
  /** Written to the tool's stdin (a submit description). */
  input?: string
  /** Seconds before the tool is killed. */
  timeout?: number
  /** The configuration knob the timeout came from, named in the error. */
  timeoutName?: string
  /** Extra environment variables (added to ours). */
  env?: Record<string, string>
  /** Exit statuses that are not failures (the caller reads stderr itself). */
  okExitCodes?: number[]
}

export interface RunResult {
  stdout: string
  stderr: string
  exitCode: number
}

/** The last few lines of a tool's stderr, as one line for an error message. */
function stderrSummary(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter(Boolean)
  return oneLine(lines.slice(-3).join(' '))
}

/**
 * Runs one HTCondor tool: no shell, a timeout, stderr kept for the error,
 * exit status checked. A missing tool, a timeout and a failure are each a
 * one-line system error (exit 2) that names the tool.
 */
export async function runTool(tool: CondorTool, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeout = options.timeout ?? CONDOR_TOOL_TIMEOUT
  const result = await traced(() => `${tool} ${args.join(' ').slice(0, 100)}`, execa(tool, args, {
    reject: false,
    timeout: timeout * 1000,
    forceKillAfterDelay: 2000,
    stripFinalNewline: false,
    ...(options.input === undefined ? {stdin: 'ignore' as const} : {input: options.input}),
    ...(options.env ? {env: options.env} : {}),
  }))
  const stdout = String(result.stdout ?? '')
  const stderr = String(result.stderr ?? '')
  if (result.timedOut) {
    const knob = options.timeoutName ? ` (${options.timeoutName})` : ''
    throw systemError(`${tool} did not finish within ${timeout} seconds${knob}.`)
  }
  if ((result as {code?: string}).code === 'ENOENT') {
    throw systemError(`${tool} was not found: hpc-annex runs on an HTCondor Access Point, with the HTCondor tools on PATH.`, {
      hint: `check that 'command -v ${tool}' finds it, or set PATH to include HTCondor's bin directory`,
    })
  }
  const exitCode = result.exitCode
  if (exitCode === undefined) {
    const signal = result.signal ? ` (killed by ${result.signal})` : ''
    throw systemError(`${tool} could not be run${signal}: ${oneLine(result.message ?? 'no reason given')}`)
  }
  if (exitCode !== 0 && !(options.okExitCodes ?? []).includes(exitCode)) throw toolFailure(tool, {stdout, stderr, exitCode})
  return {stdout, stderr, exitCode}
}

/** The error of a tool that exited with a failure status: its status and the end of its stderr. */
export function toolFailure(tool: CondorTool, result: RunResult): AnnexError {
  const detail = stderrSummary(result.stderr)
  return systemError(`${tool} failed (exit status ${result.exitCode})${detail ? `: ${detail}` : '.'}`)
}
