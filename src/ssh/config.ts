import {existsSync, readFileSync} from 'node:fs'
import {homedir, hostname, userInfo} from 'node:os'
import {isAbsolute, join} from 'node:path'

import {execa} from '../vendor/execa.js'
import SSHConfig from 'ssh-config'

import {oneLine, userError} from '../errors.js'
import {traced} from '../trace.js'
import type {LoginTarget} from './transport.js'

/** A LoginTarget after the user's OpenSSH configuration has been applied. */
export interface ResolvedTarget {
  /** What the user named (an alias or a host name). */
  alias: string
  /** Where to connect (HostName). */
  host: string
  port: number
  user: string
  /** Private keys to offer, in order; only those that exist. */
  identityFiles: string[]
  identitiesOnly: boolean
  /** known_hosts files to read, user files first; new keys go to the first. */
  knownHostsFiles: string[]
  /** The name the host key is looked up under (HostKeyAlias, else `host`). */
  hostKeyName: string
  hashKnownHosts: boolean
  /** Jump hosts, first hop first, each resolved the same way. */
  jumps: ResolvedTarget[]
  /** ProxyCommand as configured (tokens not expanded); never set together with jumps. */
  proxyCommand?: string
  /** ProxyUseFdpass yes: the ProxyCommand passes back a connected socket. */
  proxyUseFdpass?: boolean
  configFile?: string
  /** How it was resolved. */
  source: 'ssh -G' | 'ssh-config'
}

export interface ResolveOptions {
  /** The OpenSSH client to ask with `ssh -G`; null to use the built-in parser. Default: `ssh` when on PATH. */
  ssh?: string | null
  env?: NodeJS.ProcessEnv
}

/** The order keys are tried in when the configuration names none. */
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa']
/** What `ssh -G` lists when no IdentityFile is configured. */
const OPENSSH_DEFAULT_KEYS = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa']

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir()
}

function expandTilde(path: string, env: NodeJS.ProcessEnv): string {
  if (path === '~') return home(env)
  if (path.startsWith('~/')) return join(home(env), path.slice(2))
  return path
}

let sshOnPath: Promise<string | null> | undefined
/** findSsh's answer once it is known (undefined before). */
let sshFound: string | null | undefined

/** The OpenSSH client when one is installed (`ssh -V` runs), else null. */
export function findSsh(): Promise<string | null> {
  sshOnPath ??= execa('ssh', ['-V'], {reject: false, stdin: 'ignore'}).then(
    (result) => (sshFound = result.exitCode === 0 && /OpenSSH/i.test(`${result.stderr}${result.stdout}`) ? 'ssh' : null),
    () => (sshFound = null),
  )
  return sshOnPath
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]`, as ProxyJump writes hops. */
export function parseHop(spec: string): {host: string; user?: string; port?: number} {
  let text = spec.trim().replace(/^ssh:\/\//, '')
  let user: string | undefined
  const at = text.lastIndexOf('@')
  if (at >= 0) {
    user = text.slice(0, at)
    text = text.slice(at + 1)
  }
  let port: number | undefined
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  if (bracket) {
    text = bracket[1] ?? ''
    if (bracket[2]) port = Number(bracket[2])
  } else {
    const colon = /^([^:]+):(\d+)$/.exec(text)
    if (colon) {
      text = colon[1] ?? ''
      port = Number(colon[2])
    }
  }
  return {host: text, ...(user ? {user} : {}), ...(port ? {port} : {})}
}

/** Keys of `ssh -G` output, lower case, each with every value it was given. */
export function parseSshG(text: string): Map<string, string[]> {
  const options = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim())
    if (!match) continue
    const key = (match[1] ?? '').toLowerCase()
    options.set(key, [...(options.get(key) ?? []), match[2] ?? ''])
  }
  return options
}

function sshGArgs(target: LoginTarget, extra: string[] = []): string[] {
  return [
    '-G',
    ...(target.configFile ? ['-F', target.configFile] : []),
    ...(target.port ? ['-p', String(target.port)] : []),
    ...(target.user ? ['-l', target.user] : []),
    ...extra,
    '--',
    target.host,
  ]
}

/** Runs `ssh -G` for the target and returns its options. */
export async function sshG(ssh: string, target: LoginTarget, extra: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Map<string, string[]>> {
  const result = await traced(`ssh -G ${target.host}`, execa(ssh, sshGArgs(target, extra), {reject: false, stdin: 'ignore', env, extendEnv: false}))
  if (result.exitCode !== 0) {
    throw userError(`Cannot read the OpenSSH configuration for ${target.host}: ${oneLine(String(result.stderr)) || `ssh -G exited ${result.exitCode}`}`)
  }
  return parseSshG(String(result.stdout))
}

function existing(paths: string[]): string[] {
  return [...new Set(paths)].filter((path) => existsSync(path))
}

function identityList(configured: string[], target: LoginTarget, env: NodeJS.ProcessEnv): string[] {
  const sshDir = join(home(env), '.ssh')
  const isDefault =
    configured.length === OPENSSH_DEFAULT_KEYS.length &&
    configured.every((path, i) => expandTilde(path, env) === join(sshDir, OPENSSH_DEFAULT_KEYS[i] ?? ''))
  const list = configured.length === 0 || isDefault ? DEFAULT_KEYS.map((key) => join(sshDir, key)) : configured.map((path) => expandTilde(path, env))
  return existing([...(target.identityFile ? [expandTilde(target.identityFile, env)] : []), ...list])
}

function jumpList(value: string | undefined): string[] {
  if (!value || value.toLowerCase() === 'none') return []
  return value.split(',').map((hop) => hop.trim()).filter(Boolean)
}

/** ProxyCommand and ProxyUseFdpass, when there are no jump hosts (ProxyJump and ProxyCommand exclude each other). */
function proxyCommand(first: (key: string) => string | undefined, jumps: ResolvedTarget[]): {proxyCommand?: string; proxyUseFdpass?: boolean} {
  const command = first('proxycommand')
  if (jumps.length > 0 || !command || command.toLowerCase() === 'none') return {}
  return {proxyCommand: command, ...(first('proxyusefdpass')?.toLowerCase() === 'yes' ? {proxyUseFdpass: true} : {})}
}

async function resolveWithSshG(ssh: string, target: LoginTarget, env: NodeJS.ProcessEnv, depth: number): Promise<ResolvedTarget> {
  const options = await sshG(ssh, target, [], env)
  const first = (key: string): string | undefined => options.get(key)?.[0]
  const host = first('hostname') ?? target.host
  const port = Number(first('port') ?? target.port ?? 22)
  const user = first('user') ?? target.user ?? userInfo().username
  const knownHostsFiles = [
    ...(target.knownHostsFile ? [target.knownHostsFile] : (first('userknownhostsfile') ?? '').split(/\s+/).filter(Boolean).map((p) => expandTilde(p, env))),
    ...(target.knownHostsFile ? [] : (first('globalknownhostsfile') ?? '').split(/\s+/).filter(Boolean)),
  ]
  const jumps: ResolvedTarget[] = []
  for (const hop of jumpList(first('proxyjump'))) {
    if (depth > 8) throw userError(`ProxyJump for ${target.host} loops or nests more than 8 hops deep; check the ssh configuration.`)
    jumps.push(...(await resolveHop(hop, target, env, depth, (t) => resolveWithSshG(ssh, t, env, depth + 1))))
  }
  return {
    alias: target.host,
    host,
    port,
    user,
    identityFiles: identityList(options.get('identityfile') ?? [], target, env),
    identitiesOnly: first('identitiesonly') === 'yes',
    knownHostsFiles,
    hostKeyName: first('hostkeyalias') ?? host,
    hashKnownHosts: first('hashknownhosts') === 'yes',
    jumps,
    ...proxyCommand(first, jumps),
    ...(target.configFile ? {configFile: target.configFile} : {}),
    source: 'ssh -G',
  }
}

async function resolveHop(
  spec: string,
  target: LoginTarget,
  _env: NodeJS.ProcessEnv,
  _depth: number,
  resolve: (t: LoginTarget) => Promise<ResolvedTarget>,
): Promise<ResolvedTarget[]> {
  const hop = parseHop(spec)
  const resolved = await resolve({
    host: hop.host,
    ...(hop.user ? {user: hop.user} : {}),
    ...(hop.port ? {port: hop.port} : {}),
    ...(target.configFile ? {configFile: target.configFile} : {}),
    ...(target.knownHostsFile ? {knownHostsFile: target.knownHostsFile} : {}),
  })
  // A hop's own jumps come before it.
  return [...resolved.jumps, {...resolved, jumps: []}]
}

function expandTokens(value: string, tokens: Record<string, string>, env: NodeJS.ProcessEnv): string {
  return expandTilde(value, env).replace(/%([%hpurdlLnCi])/g, (whole, token: string) => (token === '%' ? '%' : (tokens[token] ?? whole)))
}

async function resolveWithParser(target: LoginTarget, env: NodeJS.ProcessEnv, depth: number): Promise<ResolvedTarget> {
  const file = target.configFile ?? join(home(env), '.ssh', 'config')
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if (target.configFile) throw userError(`Cannot read the ssh configuration ${file}: ${(error as Error).message}`)
  }
  const computed = SSHConfig.parse(text).compute(target.host)
  const options = new Map<string, string[]>()
  for (const [key, value] of Object.entries(computed)) options.set(key.toLowerCase(), Array.isArray(value) ? value : [value])
  const first = (key: string): string | undefined => options.get(key)?.[0]
  const host = (first('hostname') ?? target.host).replace(/%h/g, target.host)
  const port = Number(target.port ?? first('port') ?? 22)
  const user = target.user ?? first('user') ?? userInfo().username
  const tokens: Record<string, string> = {
    h: host,
    p: String(port),
    r: user,
    u: userInfo().username,
    d: home(env),
    l: hostname().split('.')[0] ?? '',
    L: hostname(),
    n: target.host,
    i: String(userInfo().uid),
  }
  const expandList = (key: string): string[] =>
    (options.get(key) ?? []).flatMap((value) => value.split(/\s+/)).filter(Boolean).map((path) => expandTokens(path, tokens, env))
  const userKnown = expandList('userknownhostsfile')
  const knownHostsFiles = target.knownHostsFile
    ? [target.knownHostsFile]
    : [
        ...(userKnown.length ? userKnown : [join(home(env), '.ssh', 'known_hosts'), join(home(env), '.ssh', 'known_hosts2')]),
        ...(expandList('globalknownhostsfile').length ? expandList('globalknownhostsfile') : ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
      ]
  const identities = (options.get('identityfile') ?? []).map((path) => expandTokens(path, tokens, env)).map((path) => (isAbsolute(path) ? path : join(home(env), path)))
  const jumps: ResolvedTarget[] = []
  for (const hop of jumpList(first('proxyjump'))) {
    if (depth > 8) throw userError(`ProxyJump for ${target.host} loops or nests more than 8 hops deep; check the ssh configuration.`)
    jumps.push(...(await resolveHop(hop, target, env, depth, (t) => resolveWithParser(t, env, depth + 1))))
  }
  return {
    alias: target.host,
    host,
    port,
    user,
    identityFiles: identityList(identities, target, env),
    identitiesOnly: first('identitiesonly')?.toLowerCase() === 'yes',
    knownHostsFiles,
    hostKeyName: first('hostkeyalias') ?? host,
    hashKnownHosts: first('hashknownhosts')?.toLowerCase() === 'yes',
    jumps,
    ...proxyCommand(first, jumps),
    ...(target.configFile ? {configFile: target.configFile} : {}),
    source: 'ssh-config',
  }
}

/** A target as one comparable string. */
function targetKey(target: LoginTarget): string {
  // Where the master socket lives does not change what ssh -G says.
  return JSON.stringify(Object.entries(target).filter(([key, value]) => value !== undefined && key !== 'controlDir').sort(([a], [b]) => a.localeCompare(b)))
}

let early: {key: string; options: ResolveOptions; resolving: Promise<ResolvedTarget>} | undefined

/**
 * Starts resolving a target a login will probably ask for soon (`ssh -G` is a
 * process start): the next resolveTarget of the same target, with the same
 * options, takes this answer, once.
 */
export function resolveEarly(target: LoginTarget, options: ResolveOptions = {}): Promise<ResolvedTarget> {
  const resolving = resolveTarget(target, options)
  // Its failure is reported to the resolveTarget that takes it, if one does.
  resolving.catch(() => undefined)
  early = {key: targetKey(target), options, resolving}
  return resolving
}

/**
 * Applies the user's OpenSSH configuration to a target, as `ssh` would:
 * with `ssh -G` when an OpenSSH client is installed (every feature of the
 * config file, Match and Include included), otherwise with the ssh-config
 * parser (Host blocks). Flags in the target win over the file.
 */
export async function resolveTarget(target: LoginTarget, options: ResolveOptions = {}): Promise<ResolvedTarget> {
  if (early !== undefined && early.key === targetKey(target) && early.options.ssh === options.ssh && early.options.env === options.env) {
    const {resolving} = early
    early = undefined
    return resolving
  }
  const env = options.env ?? process.env
  if (options.ssh !== undefined) return options.ssh ? resolveWithSshG(options.ssh, target, env, 0) : resolveWithParser(target, env, 0)
  if (sshFound === null) return resolveWithParser(target, env, 0)
  // `ssh -G` runs beside the check that `ssh` is OpenSSH; its answer is used only when it is.
  const answered = resolveWithSshG('ssh', target, env, 0)
  answered.catch(() => undefined)
  return (await findSsh()) ? answered : resolveWithParser(target, env, 0)
}
