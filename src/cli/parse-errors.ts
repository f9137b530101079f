import {oneLine} from '../errors.js'
import {nearest} from './suggest.js'

/** What a parse error is read against: the command as the user typed it, its flags and arguments. */
export interface CommandShape {
  /** As typed: 'create', 'admin check'. */
  id: string
  bin: string
  flags: Record<string, {helpValue?: string | string[]; description?: string; aliases?: string[]; char?: string; hidden?: boolean; options?: readonly string[]}>
  args: Record<string, {description?: string}>
}

// eslint-disable-next-line no-control-regex -- oclif colours some of its messages
const ANSI = /\u001b\[[0-9;]*m/g

/** A flag's description as a clause: "the annex the jobs will run on". */
function clause(description: string | undefined): string {
  if (!description) return ''
  const text = oneLine(description).replace(/\s*\[default:[^\]]*\]/, '').replace(/\.$/, '')
  return text.charAt(0).toLowerCase() + text.slice(1)
}

function valueName(shape: CommandShape, flag: string): string {
  const help = shape.flags[flag]?.helpValue
  return (Array.isArray(help) ? help.join('|') : help) ?? 'VALUE'
}

function list(names: string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
}

/** One reason of oclif's "The following error(s) occurred", as hpc-annex says it. */
function reason(text: string, shape: CommandShape): string {
  let m = /^Missing required flag (\S+)$/.exec(text)
  if (m) {
    const flag = m[1]!
    const what = clause(shape.flags[flag]?.description)
    return `--${flag} is required: add --${flag} ${valueName(shape, flag)}${what ? ` (${what})` : ''}.`
  }
  m = /^--([^\s=]+)(?:=\S*)? cannot also be provided when using --(\S+)$/.exec(text)
  if (m) return `--${m[2]} and --${m[1]} cannot be used together; drop one of them.`
  m = /^All of the following must be provided when using --(\S+): (.*)$/.exec(text)
  if (m) {
    const needed = m[2]!.split(/,\s*/)
    return `--${m[1]} goes with ${list(needed)}; add ${list(needed)}, or drop --${m[1]}.`
  }
  return /[.!?]$/.test(text) ? text : `${text}.`
}

/** What oclif says about a value it could not parse (Flags.integer and friends). */
function flagValue(flag: string, inner: string, shape: CommandShape): string {
  const seconds = valueName(shape, flag) === 'SECONDS'
  let m = /^Expected an integer but received: (.*)$/.exec(inner)
  if (m) return `--${flag} must be a whole number${seconds ? ' of seconds' : ''}, not '${m[1]}'; change --${flag}.`
  m = /^Expected an integer (greater|less) than or equal to (-?\d+) but received: (.*)$/.exec(inner)
  if (m) return `--${flag} must be at ${m[1] === 'greater' ? 'least' : 'most'} ${m[2]}${seconds ? ' seconds' : ''}, not '${m[3]}'; change --${flag}.`
  return `--${flag}: ${inner.replace(/[.]$/, '')}; change --${flag}.`
}

function usage(shape: CommandShape): string {
  return [shape.bin, shape.id, ...Object.keys(shape.args).map((name) => name.toUpperCase())].join(' ')
}

/**
 * oclif's own parse errors (an unknown flag, a missing argument, flags that
 * exclude each other, a value that is not a number) as one line in
 * hpc-annex's words, naming the flag and what to change; undefined for an
 * error this does not know.
 */
export function parseErrorMessage(error: unknown, shape: CommandShape): string | undefined {
  const err = error as {message?: unknown; flags?: unknown; args?: unknown}
  if (typeof err?.message !== 'string') return undefined
  const lines = err.message.replace(ANSI, '').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !/^See more help/.test(line))
  const first = lines[0] ?? ''
  const command = `${shape.bin} ${shape.id}`
  let m: RegExpExecArray | null

  if (/^Nonexistent flags?:/.test(first) && Array.isArray(err.flags)) {
    const known = Object.entries(shape.flags).filter(([, f]) => !f.hidden).flatMap(([name, f]) => [name, ...(f.aliases ?? [])])
    const unknown = (err.flags as string[]).map((flag) => {
      const guess = flag.startsWith('--') ? nearest(flag.slice(2).replace(/=.*$/, ''), known) : undefined
      return guess === undefined ? flag : `${flag} (did you mean --${guess}?)`
    })
    return `${unknown.length === 1 ? 'Unknown flag' : 'Unknown flags'} ${unknown.join(', ')} for ${command}; see ${command} --help.`
  }
  if ((m = /^Unexpected arguments?: (.*)$/.exec(first))) {
    const extra = (Array.isArray(err.args) ? (err.args as unknown[]).map(String) : m[1]!.split(', ')).map((arg) => `'${arg}'`)
    return `Unexpected argument${extra.length === 1 ? '' : 's'} ${extra.join(', ')}: ${command} takes ${usage(shape).slice(command.length + 1) || 'no arguments'}; quote a value that holds spaces, or see ${command} --help.`
  }
  if (/^Missing \d+ required args?/.test(first) && Array.isArray(err.args)) {
    const missing = (err.args as {name?: string; description?: string}[]).map((arg) => {
      const what = clause(arg.description)
      return `${(arg.name ?? '').toUpperCase()}${what ? ` (${what})` : ''}`
    })
    return `${command} needs ${list(missing)}: ${usage(shape)}.`
  }
  if (/^The following errors? occurred:/.test(first)) {
    const reasons = lines.slice(1)
    // The reason may share the first line ("The following error occurred: ...").
    const inline = first.replace(/^The following errors? occurred:\s*/, '')
    return [...(inline ? [inline] : []), ...reasons].map((text) => reason(text, shape)).join(' ')
  }
  if ((m = /^Parsing --(\S+)\s*$/.exec(first)) && lines[1] !== undefined) return flagValue(m[1]!, lines[1], shape)
  if ((m = /^Flag --(\S+) expects a value$/.exec(first))) return `--${m[1]} needs a value: --${m[1]} ${valueName(shape, m[1]!)}.`
  if ((m = /^Flag --(\S+) expects one of these values: (.*)$/.exec(first))) return `--${m[1]} needs a value, one of: ${m[2]}.`
  if ((m = /^Expected --([^=\s]+)=(.*) to be one of: (.*)$/.exec(first))) return `--${m[1]} '${m[2]}' is not one of ${m[3]}; change --${m[1]}.`
  if ((m = /^Flag --(\S+) can only be specified once$/.exec(first))) return `--${m[1]} was given more than once; give it once.`
  return undefined
}
