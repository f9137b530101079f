import {systemError} from '../errors.js'
import {expandHome} from '../paths.js'
import {runTool} from './runner.js'

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/
/** condor_config_val itself is bounded by this many seconds (no knob governs it). */
export const CONFIG_TIMEOUT = 30

/**
 * Reads configuration values with one condor_config_val call. A name that is
 * not defined comes back undefined (HTCondor prints "Not defined: NAME" on
 * stderr and exits 1; the values of the others are still printed in order).
 */
export async function configValues(names: string[]): Promise<Record<string, string | undefined>> {
  for (const name of names) if (!NAME.test(name)) throw new TypeError(`not an HTCondor configuration name: ${JSON.stringify(name)}`)
  const values: Record<string, string | undefined> = {}
  if (names.length === 0) return values
  const {stdout, stderr, exitCode} = await runTool('condor_config_val', names, {timeout: CONFIG_TIMEOUT, okExitCodes: [1]})
  const missing = new Set<string>()
  const other: string[] = []
  for (const line of stderr.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const m = /^Not defined: (.+)$/.exec(line)
    if (m) missing.add(m[1]!.toLowerCase())
    else other.push(line)
  }
  if (exitCode !== 0 && missing.size === 0) {
    throw systemError(`condor_config_val failed (exit status ${exitCode})${other.length ? `: ${other.slice(-3).join(' ')}` : '.'}`)
  }
  const defined = names.filter((name) => !missing.has(name.toLowerCase()))
  const lines = stdout.endsWith('\n') ? stdout.slice(0, -1).split('\n') : stdout.split('\n')
  if (stdout === '' ? defined.length !== 0 : lines.length !== defined.length) {
    // A value spread over several lines: ask for each defined name alone.
    if (names.length === 1) {
      values[names[0]!] = stdout.replace(/\n$/, '')
      return values
    }
    for (const name of defined) Object.assign(values, await configValues([name]))
    for (const name of names) if (!(name in values)) values[name] = undefined
    return values
  }
  for (const name of names) values[name] = undefined
  defined.forEach((name, i) => {
    values[name] = lines[i]
  })
  return values
}

/** HTCondor's boolean spellings. */
export function configBoolean(value: string | undefined): boolean {
  return value !== undefined && /^\s*(true|t|yes|y|1)\s*$/i.test(value)
}

function configInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback
  if (!/^\s*\d+\s*$/.test(value)) throw systemError(`The HTCondor configuration value ${name} = ${value} is not a whole number of seconds; ask your HTCondor administrator to fix it.`)
  return Number(value)
}

export interface AnnexTimeouts {
  initialConnection: number
  remoteCleanup: number
  remoteMkdir: number
  remotePopulate: number
  tokenFetch: number
}

/** The Access Point's annex configuration, with HTCondor's defaults. */
export interface AnnexConfig {
  enabled: boolean
  /** ANNEX_COLLECTOR: where pilots report; undefined when the AP defines none. */
  collector?: string
  /** ANNEX_TOKEN_DOMAIN, else UID_DOMAIN. */
  tokenDomain?: string
  tokenKeyName: string
  /** Seconds. */
  tokenLifetime: number
  tokenDirectory: string
  passwordFile: string
  /** False only when HPC_ANNEX_REQUIRE_JOB is the string FALSE (any case). */
  requireJob: boolean
  timeouts: AnnexTimeouts
  /** ANNEX_TARBALL_URL_BASE: the pilots' HTCondor download tree, for every system (src/catalog/download.ts). */
  tarballUrlBase?: string
  /** ANNEX_TARBALL_SHA256: pinned tarball digests, `NAME=HEX ...` (parsed by the catalog). */
  tarballSha256?: string
}

export const ANNEX_CONFIG_NAMES = [
  'HPC_ANNEX_ENABLED',
  'ANNEX_COLLECTOR',
  'ANNEX_TOKEN_DOMAIN',
  'UID_DOMAIN',
  'ANNEX_TOKEN_KEY_NAME',
  'ANNEX_TOKEN_LIFETIME',
  'SEC_TOKEN_DIRECTORY',
  'SEC_TOKEN_SYSTEM_DIRECTORY',
  'ANNEX_PASSWORD_FILE',
  'ANNEX_TMP_DIR',
  'HPC_ANNEX_REQUIRE_JOB',
  'ANNEX_INITIAL_CONNECTION_TIMEOUT',
  'ANNEX_REMOTE_CLEANUP_TIMEOUT',
  'ANNEX_REMOTE_MKDIR_TIMEOUT',
  'ANNEX_REMOTE_POPULATE_TIMEOUT',
  'ANNEX_TOKEN_FETCH_TIMEOUT',
  'ANNEX_TARBALL_URL_BASE',
  'ANNEX_TARBALL_SHA256',
] as const

/**
 * Interprets the values of ANNEX_CONFIG_NAMES (pure; for tests and callers
 * that already hold them). `root`: whether the tools run as root, whose
 * condor_token_fetch writes to SEC_TOKEN_SYSTEM_DIRECTORY when
 * SEC_TOKEN_DIRECTORY is not set (seen with HTCondor 25.13).
 */
export function annexConfigFrom(v: Record<string, string | undefined>, root = process.getuid?.() === 0): AnnexConfig {
  const text = (name: string) => {
    const value = v[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const config: AnnexConfig = {
    enabled: configBoolean(v.HPC_ANNEX_ENABLED),
    tokenKeyName: text('ANNEX_TOKEN_KEY_NAME') ?? 'hpcannex-key',
    tokenLifetime: configInteger('ANNEX_TOKEN_LIFETIME', v.ANNEX_TOKEN_LIFETIME, 60 * 60 * 24 * 90),
    tokenDirectory: expandHome(text('SEC_TOKEN_DIRECTORY') ?? (root ? (text('SEC_TOKEN_SYSTEM_DIRECTORY') ?? '/etc/condor/tokens.d') : '~/.condor/tokens.d')),
    passwordFile: expandHome(text('ANNEX_PASSWORD_FILE') ?? '~/.condor/annex_password_file'),
    requireJob: text('HPC_ANNEX_REQUIRE_JOB')?.toUpperCase() !== 'FALSE',
    timeouts: {
      initialConnection: configInteger('ANNEX_INITIAL_CONNECTION_TIMEOUT', v.ANNEX_INITIAL_CONNECTION_TIMEOUT, 180),
      remoteCleanup: configInteger('ANNEX_REMOTE_CLEANUP_TIMEOUT', v.ANNEX_REMOTE_CLEANUP_TIMEOUT, 60),
      remoteMkdir: configInteger('ANNEX_REMOTE_MKDIR_TIMEOUT', v.ANNEX_REMOTE_MKDIR_TIMEOUT, 30),
      remotePopulate: configInteger('ANNEX_REMOTE_POPULATE_TIMEOUT', v.ANNEX_REMOTE_POPULATE_TIMEOUT, 60),
      tokenFetch: configInteger('ANNEX_TOKEN_FETCH_TIMEOUT', v.ANNEX_TOKEN_FETCH_TIMEOUT, 20),
    },
  }
  const collector = text('ANNEX_COLLECTOR')
  const domain = text('ANNEX_TOKEN_DOMAIN') ?? text('UID_DOMAIN')
  if (collector !== undefined) config.collector = collector
  if (domain !== undefined) config.tokenDomain = domain
  const urlBase = text('ANNEX_TARBALL_URL_BASE')
  const sha256 = text('ANNEX_TARBALL_SHA256')
  if (urlBase !== undefined) config.tarballUrlBase = urlBase
  if (sha256 !== undefined) config.tarballSha256 = sha256
  return config
}

/** Reads the annex configuration in one condor_config_val call (with a system's login overrides when one is named). */
export async function readAnnexConfig(system?: string): Promise<AnnexConfig & {loginOverrides: LoginOverrides}> {
  const names = system === undefined ? [] : loginOverrideNames(system)
  const values = await configValues([...new Set([...ANNEX_CONFIG_NAMES, ...names])])
  return {...annexConfigFrom(values), loginOverrides: system === undefined ? {} : overridesFrom(values, system)}
}

/** HTCondor's own refusal, plus what to do about it. */
export function requireAnnexEnabled(config: Pick<AnnexConfig, 'enabled'>): void {
  if (!config.enabled) {
    throw systemError('HPC Annex functionality has not been enabled by your HTCondor administrator.', {
      hint: "ask your HTCondor administrator to run 'hpc-annex admin check' on this Access Point",
    })
  }
}

/** Where HTCondor's own tool sends pilots when ANNEX_COLLECTOR is not set: the CHTC's annex collector. */
export const HTCONDOR_DEFAULT_ANNEX_COLLECTOR = 'htcondor-cm-hpcannex.osgdev.chtc.io'

/**
 * The annex collector: --pool if given, else ANNEX_COLLECTOR. Without either,
 * hpc-annex does not fall back to HTCondor's default (someone else's
 * collector): the error names the knob and the flag.
 */
export function annexCollector(config: Pick<AnnexConfig, 'collector'>, pool?: string): string {
  const collector = pool ?? config.collector
  if (collector === undefined) {
    throw systemError(
      'ANNEX_COLLECTOR is not set in this Access Point\'s HTCondor configuration, so there is no annex collector to use ' +
        `(HTCondor's own tool would fall back to ${HTCONDOR_DEFAULT_ANNEX_COLLECTOR}, the CHTC's); ` +
        'give one with --pool HOST[:PORT], or have the administrator set ANNEX_COLLECTOR.',
      {hint: "hpc-annex admin check (it reports 'MISSING  The annex collector is defined', with the fix)"},
    )
  }
  return collector
}

/** The token domain (ANNEX_TOKEN_DOMAIN or UID_DOMAIN), which pilots' identities carry. */
export function tokenDomain(config: Pick<AnnexConfig, 'tokenDomain'>): string {
  if (config.tokenDomain === undefined) {
    throw systemError('Neither ANNEX_TOKEN_DOMAIN nor UID_DOMAIN is defined on this Access Point.', {
      hint: "ask your HTCondor administrator to run 'hpc-annex admin check'",
    })
  }
  return config.tokenDomain
}

export interface LoginOverrides {
  user?: string
  host?: string
  /** ANNEX_TMP_DIR: the directory of the SSH control sockets (`<dir>/master-%C`), `~` expanded; undefined when not set. */
  controlDir?: string
}

/** HPC_ANNEX_<SYSTEM>_USER_NAME and _HOST_NAME (the admin's per-system login overrides), and ANNEX_TMP_DIR. */
function loginOverrideNames(system: string): [string, string, string] {
  const key = system.toUpperCase().replace(/[^A-Z0-9_]/g, '_')
  return [`HPC_ANNEX_${key}_USER_NAME`, `HPC_ANNEX_${key}_HOST_NAME`, 'ANNEX_TMP_DIR']
}

function overridesFrom(values: Record<string, string | undefined>, system: string): LoginOverrides {
  const [user, host, tmp] = loginOverrideNames(system)
  const controlDir = values[tmp]?.trim()
  return {
    ...(values[user] ? {user: values[user]} : {}),
    ...(values[host] ? {host: values[host]} : {}),
    ...(controlDir ? {controlDir: expandHome(controlDir)} : {}),
  }
}

export async function loginOverrides(system: string): Promise<LoginOverrides> {
  return overridesFrom(await configValues(loginOverrideNames(system)), system)
}

/**
 * The body of `use CATEGORY:NAME` in this HTCondor (condor_config_val use ...), or undefined when it has none.
 * HTCondor prints `use FEATURE:NAME is` then the body, each line indented by a tab; for a template it
 * lacks it prints `Not defined: use FEATURE:NAME` on stdout and exits 0 (HTCondor 25), so the exit
 * status alone does not tell.
 */
export async function configTemplate(category: string, name: string): Promise<string | undefined> {
  const knob = `${category}:${name}`
  if (!/^[A-Za-z0-9_]+:[A-Za-z0-9_]+$/.test(knob)) throw new TypeError(`not a configuration template: ${JSON.stringify(knob)}`)
  const {stdout, exitCode} = await runTool('condor_config_val', ['use', knob], {timeout: CONFIG_TIMEOUT, okExitCodes: [1]})
  if (exitCode !== 0 || /^\s*Not defined\b/i.test(stdout) || stdout.trim() === '') return undefined
  const [first = '', ...rest] = stdout.split('\n')
  if (!/^use\s+\S+\s+is\s*$/i.test(first)) return stdout
  return rest.map((line) => line.replace(/^\t/, '')).join('\n')
}
