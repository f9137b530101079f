import {createHash, createHmac, randomBytes} from 'node:crypto'
import {appendFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import {dirname} from 'node:path'

import {systemError, userError} from '../errors.js'
import {shellQuote} from '../quote.js'
import type {CertificateCheck} from './host-cert.js'
import type {Interaction} from './transport.js'

/**
 * Host key checking as OpenSSH does it with StrictHostKeyChecking=ask:
 * known_hosts lines `[marker] patterns keytype base64 [comment]`, where the
 * patterns are a comma list of host names or `[host]:port` (wildcards `*`
 * `?`, negation `!`), or one hashed `|1|salt|hmac` name. `@revoked` lines
 * name keys that are refused wherever they appear. `@cert-authority` lines
 * name CAs whose host certificates are trusted for the hosts they match:
 * a certificate the server showed is checked in host-cert.ts and handed to
 * verifyHostKey.
 */

/** The name a host is written under in known_hosts: `host`, or `[host]:port` off port 22. */
export function knownHostName(host: string, port: number): string {
  const name = host.toLowerCase()
  return port === 22 ? name : `[${name}]:${port}`
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function keyType(key: Buffer): string {
  if (key.length < 4) return 'unknown'
  const length = key.readUInt32BE(0)
  if (length > key.length - 4) return 'unknown'
  return key.subarray(4, 4 + length).toString('latin1')
}

function wildcard(pattern: string, text: string): boolean {
  // OpenSSH's match_pattern: * any run, ? one character, case-insensitive for host names.
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i')
  return regex.test(text)
}

/** Does a known_hosts host field match one of `names`? */
export function hostFieldMatches(field: string, names: string[]): boolean {
  if (field.startsWith('|')) {
    const parts = field.split('|')
    // '', '1', salt, hash
    if (parts.length !== 4 || parts[1] !== '1') return false
    const salt = Buffer.from(parts[2] ?? '', 'base64')
    const wanted = parts[3] ?? ''
    return names.some((name) => createHmac('sha1', salt).update(name).digest('base64') === wanted)
  }
  let matched = false
  for (const pattern of field.split(',')) {
    if (pattern === '') continue
    if (pattern.startsWith('!')) {
      if (names.some((name) => wildcard(pattern.slice(1), name))) return false
    } else if (names.some((name) => wildcard(pattern, name))) {
      matched = true
    }
  }
  return matched
}

export interface KnownHostEntry {
  file: string
  line: number
  marker?: string
  hosts: string
  type: string
  key: Buffer
}

/** The entries of one known_hosts text (comments, blank and malformed lines skipped). */
export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const fields = line.split(/\s+/)
    let marker: string | undefined
    if (fields[0]?.startsWith('@')) marker = fields.shift()
    const [hosts, type, base64] = fields
    if (!hosts || !type || !base64 || !/^[A-Za-z0-9+/]+=*$/.test(base64)) return
    entries.push({file, line: index + 1, ...(marker ? {marker} : {}), hosts, type, key: Buffer.from(base64, 'base64')})
  })
  return entries
}

export type HostKeyCheck =
  | {status: 'known'; entry: KnownHostEntry}
  | {status: 'unknown'}
  /** The host is known with other keys: a changed key, or a key of a type never seen for it. */
  | {status: 'changed'; entry: KnownHostEntry}
  | {status: 'revoked'; entry: KnownHostEntry}

/** The entries of the known_hosts `files`, in order (missing files are empty). */
export function readKnownHosts(files: string[]): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    entries.push(...parseKnownHosts(text, file))
  }
  return entries
}

/** The key types known for a host, so a client can ask the server for a key it can check. */
export function knownKeyTypes(files: string[], host: string, port: number): string[] {
  const names = [knownHostName(host, port)]
  const types = readKnownHosts(files)
    .filter((entry) => entry.marker === undefined && hostFieldMatches(entry.hosts, names))
    .map((entry) => entry.type)
  return [...new Set(types)]
}

/** Looks `key` up for `host`:`port` in `files` (missing files are empty). */
export function checkHostKey(files: string[], host: string, port: number, key: Buffer): HostKeyCheck {
  const entries = readKnownHosts(files)
  const revoked = entries.find((entry) => entry.marker === '@revoked' && entry.key.equals(key))
  if (revoked) return {status: 'revoked', entry: revoked}
  const names = [knownHostName(host, port)]
  const forHost = entries.filter((entry) => entry.marker === undefined && hostFieldMatches(entry.hosts, names))
  const match = forHost.find((entry) => entry.key.equals(key))
  if (match) return {status: 'known', entry: match}
  const other = forHost[0]
  if (other) return {status: 'changed', entry: other}
  return {status: 'unknown'}
}

/** Appends `key` for the host, with its name hashed when `hash` is set (as HashKnownHosts). */
export function appendKnownHost(file: string, host: string, port: number, key: Buffer, hash = false): void {
  const name = knownHostName(host, port)
  let field = name
  if (hash) {
    const salt = randomBytes(20)
    field = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
  }
  mkdirSync(dirname(file), {recursive: true, mode: 0o700})
  let prefix = ''
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8')
    if (text !== '' && !text.endsWith('\n')) prefix = '\n'
  }
  appendFileSync(file, `${prefix}${field} ${keyType(key)} ${key.toString('base64')}\n`, {mode: 0o600})
}

export interface VerifyOptions {
  host: string
  port: number
  key: Buffer
  /** Files read, in order (UserKnownHostsFile then the global ones). */
  files: string[]
  /** Where an accepted new key is written: the first user file. */
  appendTo: string
  interaction: Interaction
  /** Can the person at the terminal be asked? Without one, an unknown host is refused. */
  interactive: boolean
  hash?: boolean
  /**
   * What the host's certificate (fetched when an `@cert-authority` line
   * matches the host) was found to be: a valid one for `key` lets the host
   * in; a revoked one keeps it out; an invalid one is said in the refusal.
   */
  certificate?: CertificateCheck
}

/**
 * Resolves when `key` may be trusted for the host; rejects with an AnnexError
 * otherwise. An unknown host is shown with its fingerprint and asked about
 * (when someone can answer), then remembered; a changed or revoked key is
 * always refused.
 */
export async function verifyHostKey(options: VerifyOptions): Promise<void> {
  const {host, port, key, files, appendTo, interaction, certificate} = options
  const name = knownHostName(host, port)
  const check = checkHostKey(files, host, port, key)
  const print = `${keyType(key)} key ${fingerprint(key)}`
  if (check.status === 'revoked') {
    throw systemError(`The host key of ${name} (${print}) is revoked in ${check.entry.file}:${check.entry.line}; refusing to connect.`)
  }
  // As ssh: a certificate is checked first, and one that is revoked is never retried as a plain key.
  let why = ''
  if (certificate?.status === 'revoked') {
    throw systemError(
      `The ${certificate.what === 'CA key' ? `CA (${fingerprint(certificate.cert.caKey)}) that signed the host certificate` : 'host key'} of ${name} ` +
        `is revoked in ${certificate.entry.file}:${certificate.entry.line}; refusing to connect.`,
    )
  }
  if (certificate?.status === 'valid') {
    if (certificate.cert.key.equals(key)) {
      const {authority, cert} = certificate
      interaction.progress?.(`${name} shows a host certificate (${cert.keyId || `serial ${cert.serial}`}) of the CA in ${authority.file}:${authority.line}`)
      return
    }
    why = ` (its host certificate is for another key)`
  } else if (certificate?.status === 'invalid') {
    why = ` (its host certificate was not accepted: ${certificate.reason})`
  }
  switch (check.status) {
    case 'known':
      return
    case 'changed':
      throw systemError(
        `The host key of ${name} has CHANGED (now ${print}; ${check.entry.file}:${check.entry.line} has a different one)${why}: ` +
          `refusing to connect, as this may be an attack; if the site changed its keys, remove that line after checking the new fingerprint with the site.`,
      )
    case 'unknown':
      break
  }
  if (!options.interactive) {
    throw userError(
      `The host key of ${name} is not in ${appendTo} (${print})${why}; refusing to connect without a terminal to confirm it.`,
      `ssh -o UserKnownHostsFile=${shellQuote(appendTo)} -p ${port} ${shellQuote(host)} true (check the fingerprint with the site, then answer yes)`,
    )
  }
  const [answer] = await interaction.answer(
    [{prompt: `Are you sure you want to continue connecting (yes/no)? `, echo: true}],
    `The authenticity of host ${name} can't be established${why}.\n${keyType(key)} key fingerprint is ${fingerprint(key)}.`,
    'Unknown host key',
  )
  if (!/^(yes|y)$/i.test((answer ?? '').trim())) {
    throw userError(`The host key of ${name} (${print}) was not accepted; not connecting.`)
  }
  appendKnownHost(appendTo, host, port, key, options.hash ?? false)
  interaction.progress?.(`Added ${name} (${keyType(key)}) to ${appendTo}`)
}
