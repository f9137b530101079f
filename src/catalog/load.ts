import {existsSync, readdirSync, readFileSync, realpathSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {basename, dirname, isAbsolute, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import TOML from '../vendor/toml.js'

import {userError} from '../errors.js'
import {projectPath} from '../paths.js'
import {lineOf, keyLines} from './locate.js'
import {machineSchema, type MachineFile} from './schema.js'

/** A machine definition as loaded: the file's data plus where it came from. */
export interface Machine extends MachineFile {
  /** The system key: the file name without .toml, lower case (e.g. 'anvil'). */
  key: string
  source: string
}

/** A machine file that could not be used. */
export interface CatalogProblem {
  file: string
  line?: number
  /** The system key the file would have defined. */
  system: string
  /** The dotted key path the problem is about ('' for the whole file). */
  key: string
  message: string
  /** The file was not read: another user could have written it (see untrusted). */
  untrusted?: boolean
}

export function formatProblem(problem: CatalogProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`
  return `${where}: ${problem.key ? `${problem.key}: ` : ''}${problem.message}`
}

/** Every problem of one file, as one line: the first as formatProblem says it, the others after it. */
function formatFileProblems(problems: CatalogProblem[]): string {
  const [first, ...rest] = problems
  if (first === undefined) return ''
  const more = rest.map((p) => `${p.line === undefined ? '' : `line ${p.line}: `}${p.key ? `${p.key}: ` : ''}${p.message}`)
  return [formatProblem(first), ...more].join('; ')
}

/** The problems grouped by file, in the order the files were read. */
function byFile(problems: CatalogProblem[]): CatalogProblem[][] {
  const files = new Map<string, CatalogProblem[]>()
  for (const problem of problems) files.set(problem.file, [...(files.get(problem.file) ?? []), problem])
  return [...files.values()]
}

/** One warning per machine file that was skipped, whatever is wrong with it and however many times (but none for `exceptSystem`'s). */
export function catalogWarnings(catalog: Catalog, exceptSystem?: string): string[] {
  return byFile(catalog.problems.filter((problem) => exceptSystem === undefined || problem.system !== exceptSystem)).map((problems) => `skipped ${problems[0]!.untrusted ? 'an untrusted' : 'an invalid'} machine file: ${formatFileProblems(problems)}`)
}

/**
 * The system a user names, or an error that says why there is none: its
 * machine file was refused (another user could have written it) or is
 * invalid (the file and what is wrong, even when an earlier definition of the
 * system exists, since a request for it would be refused), or no system has
 * that name (the ones that exist, and the nearest).
 */
export function requireSystem(catalog: Catalog, word: string, change = ''): Machine {
  const key = word.toLowerCase()
  const problems = catalog.problems.filter((problem) => problem.system === key || problem.system === findSystem(catalog, word)?.key)
  if (problems.some((problem) => problem.untrusted)) {
    throw userError(`Refusing the machine file for '${problems[0]!.system}': ${formatFileProblems(problems.filter((problem) => problem.untrusted))}.`)
  }
  if (problems.length > 0) throw userError(`The machine file for '${problems[0]!.system}' is invalid: ${formatFileProblems(problems)}; fix the file or remove it.`)
  const machine = findSystem(catalog, word)
  if (!machine) throw userError(`Unknown system '${word}'; systems: ${[...catalog.systems.keys()].join(', ')}.${change ? ` ${change}` : ''}`)
  return machine
}

export interface Catalog {
  /** Systems by key, in key order. */
  systems: Map<string, Machine>
  problems: CatalogProblem[]
}

/**
 * Where machine files are read, lowest precedence first: the built-in
 * backends/, the site's /etc/hpc-annex/machines, the user's
 * ~/.config/hpc-annex/machines, then each directory of $HPC_ANNEX_MACHINES
 * (colon-separated; the first listed wins). A later definition of a system
 * key replaces an earlier one.
 */
export function machineDirectories(env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.HPC_ANNEX_MACHINES ?? '').split(':').filter((dir) => dir !== '')
  // A relative entry would be read from whatever directory hpc-annex runs in.
  const relative = fromEnv.find((dir) => !isAbsolute(dir))
  if (relative !== undefined) {
    throw userError(`$HPC_ANNEX_MACHINES lists '${relative}', which is not an absolute path; machine files are read only from absolute directories.`)
  }
  // XDG: a relative XDG_CONFIG_HOME is ignored.
  const configHome = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config')
  return [projectPath('backends'), '/etc/hpc-annex/machines', join(configHome, 'hpc-annex', 'machines'), ...fromEnv.reverse()]
}

/**
 * Why a machine file or directory cannot be trusted, or undefined: another
 * user could change it (it is group- or world-writable, or owned by someone
 * other than this user or root). A machine file's fragments run on the login
 * node and in the pilots, as the user. Says it of `it`, e.g. "it is writable
 * by its group (chmod go-w /x)".
 */
export function untrusted(path: string, it = 'it'): string | undefined {
  const uid = process.getuid?.()
  if (uid === undefined) return undefined
  const info = statSync(path)
  if (info.uid !== uid && info.uid !== 0) return `${it} belongs to another user (uid ${info.uid}), not to you or root`
  if ((info.mode & 0o022) !== 0) return `${it} is writable by ${(info.mode & 0o002) !== 0 ? 'every user' : 'its group'} (chmod go-w ${path})`
  return undefined
}

/** untrusted() for a machine file: the file, and the directory a symbolic link leads to. */
function untrustedFile(file: string, directory: string): string | undefined {
  const real = realpathSync(file)
  const realDirectory = dirname(real)
  return untrusted(real) ?? (realDirectory === realpathSync(directory) ? undefined : untrusted(realDirectory, `its directory ${realDirectory}`))
}

const KEY = /^[a-z0-9][a-z0-9_-]*$/

/** Where `npm run build` keeps the built-in machine files as parsed (see builtMachines). */
export const BUILT_MACHINES = fileURLToPath(new URL('built-machines.json', import.meta.url))

let built: Map<string, MachineFile> | undefined

/**
 * The built-in machine files as `npm run build` parsed and checked them, by
 * their text: parsing them again took ~20 ms of every start. Used only for a
 * file whose text is exactly one of these; empty when there is no such record
 * (running from src).
 */
function builtMachines(): Map<string, MachineFile> {
  if (!built) {
    built = new Map()
    try {
      const records = JSON.parse(readFileSync(BUILT_MACHINES, 'utf8')) as {text: string; machine: MachineFile}[]
      for (const {text, machine} of records) built.set(text, machine)
    } catch {
      // No record: every file is parsed.
    }
  }
  return built
}

/** Parses and checks one machine file. */
export function parseMachineFile(file: string, text: string): {machine?: Machine; problems: CatalogProblem[]} {
  const system = basename(file, '.toml').toLowerCase()
  if (!KEY.test(system)) {
    return {problems: [{file, system, key: '', message: 'the file name must be <system key>.toml, with a key of lower-case letters, digits, "-" and "_"'}]}
  }
  const parsed = builtMachines().get(text)
  if (parsed) return {machine: {...structuredClone(parsed), key: system, source: file}, problems: []}
  let data: unknown
  try {
    data = TOML.parse(text)
  } catch (error) {
    const err = error as {line?: number; col?: number; message?: string}
    // The parser's first line ends "at row R, col C, pos P:" before an excerpt of the file: the line goes where every problem's goes.
    const first = (String(err.message ?? error).split('\n')[0] ?? '').replace(/\s*at row \d+, col \d+, pos \d+:?\s*$/, '').trim() || 'cannot be parsed'
    const column = typeof err.col === 'number' ? ` (column ${err.col + 1})` : ''
    return {problems: [{file, system, key: '', message: `invalid TOML: ${first}${column}`, ...(typeof err.line === 'number' ? {line: err.line + 1} : {})}]}
  }
  const result = machineSchema.safeParse(data)
  if (!result.success) {
    const lines = keyLines(text)
    const problems = result.error.issues.map((issue): CatalogProblem => {
      let path = issue.path
      let message = issue.message
      if (issue.code === 'unrecognized_keys') {
        path = [...issue.path, issue.keys[0] ?? '']
        message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`
      } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
        message = 'is required'
      }
      const line = lineOf(lines, path)
      return {file, system, key: path.join('.'), message, ...(line === undefined ? {} : {line})}
    })
    return {problems}
  }
  return {machine: {...result.data, key: system, source: file}, problems: []}
}

/** Loads every machine file from `directories` (see machineDirectories). */
export function loadCatalog(directories: string[] = machineDirectories()): Catalog {
  const systems = new Map<string, Machine>()
  const problems: CatalogProblem[] = []
  for (const dir of directories) {
    if (!existsSync(dir)) continue
    let entries: string[]
    let unsafeDirectory: string | undefined
    try {
      entries = readdirSync(dir).filter((entry) => entry.endsWith('.toml')).sort()
      unsafeDirectory = untrusted(realpathSync(dir), `its directory ${dir}`)
    } catch (error) {
      problems.push({file: dir, system: '', key: '', message: `cannot read the directory: ${(error as Error).message}`})
      continue
    }
    for (const entry of entries) {
      const file = join(dir, entry)
      const system = basename(entry, '.toml').toLowerCase()
      let text: string
      try {
        // Refused unread: the system keeps the definition it had before (the built-in one, say), and a request for it fails.
        const refused = unsafeDirectory ?? untrustedFile(file, dir)
        if (refused !== undefined) {
          problems.push({file, system, key: '', message: `not trusted: ${refused}`, untrusted: true})
          continue
        }
        text = readFileSync(file, 'utf8')
      } catch (error) {
        problems.push({file, system, key: '', message: `cannot read the file: ${(error as Error).message}`})
        continue
      }
      const parsed = parseMachineFile(file, text)
      problems.push(...parsed.problems)
      if (parsed.machine) systems.set(parsed.machine.key, parsed.machine)
    }
  }
  return {systems: new Map([...systems].sort(([a], [b]) => a.localeCompare(b))), problems}
}

function normalized(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]/g, '')
}

/** The system a user means: its key in any case, or its name ('Bridges-2', 'bridges-2'). */
export function findSystem(catalog: Catalog, word: string): Machine | undefined {
  const byKey = catalog.systems.get(word.toLowerCase())
  if (byKey) return byKey
  const wanted = normalized(word)
  if (wanted === '') return undefined
  return [...catalog.systems.values()].find((m) => normalized(m.name) === wanted || normalized(m.key) === wanted)
}
