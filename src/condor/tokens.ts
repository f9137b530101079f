import {chmodSync, existsSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {systemError} from '../errors.js'
import {runTool} from './runner.js'

/** What an annex token allows: report to the annex collector and attach to the schedd. */
export const TOKEN_AUTHZ = ['READ', 'ADVERTISE_STARTD', 'ADVERTISE_MASTER', 'WRITE'] as const

export interface TokenRequest {
  /** The annex name for create/add; 'status' or 'shutdown' for those verbs. */
  type: string
  user: string
  domain: string
  keyName: string
  /** Seconds (ANNEX_TOKEN_LIFETIME). */
  lifetime: number
  /** SEC_TOKEN_DIRECTORY. */
  directory: string
  /** Seconds (ANNEX_TOKEN_FETCH_TIMEOUT). */
  timeout: number
}

export interface TokenFile {
  /** Where the token is; its content is never read into hpc-annex's output. */
  path: string
  name: string
  /** Deletes the file now (also done when the process exits). */
  remove(): void
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/

/** `<type>.<user>@<domain>`, the token's file name in SEC_TOKEN_DIRECTORY. */
export function tokenName(type: string, user: string, domain: string): string {
  const name = `${type}.${user}@${domain}`
  if (!SAFE.test(name) || name.includes('..')) throw new TypeError(`unusable token name ${JSON.stringify(name)}`)
  return name
}

const live = new Set<string>()
let hooked = false

function removeAll(): void {
  for (const path of live) rmSync(path, {force: true})
  live.clear()
}

function hookExit(): void {
  if (hooked) return
  hooked = true
  // Signals end the process through process.exit (src/cli/interrupt.ts), which runs this too.
  process.on('exit', removeAll)
}

/**
 * Mints a token with condor_token_fetch (exact authz list and lifetime),
 * checks it landed with mode 0600, and arranges for it to be deleted when the
 * process ends. The token itself never passes through hpc-annex's output or
 * any command line.
 */
export async function fetchToken(request: TokenRequest): Promise<TokenFile> {
  const name = tokenName(request.type, request.user, request.domain)
  if (!Number.isSafeInteger(request.lifetime) || request.lifetime <= 0) throw new TypeError(`token lifetime must be a positive integer, not ${request.lifetime}`)
  const args = ['-lifetime', String(request.lifetime), '-token', name, '-key', request.keyName, ...TOKEN_AUTHZ.flatMap((authz) => ['-authz', authz])]
  const path = join(request.directory, name)
  hookExit()
  live.add(path)
  try {
    await runTool('condor_token_fetch', args, {timeout: request.timeout, timeoutName: 'ANNEX_TOKEN_FETCH_TIMEOUT'})
    if (!existsSync(path)) throw systemError(`condor_token_fetch succeeded but wrote no token at ${path}; check SEC_TOKEN_DIRECTORY.`)
    chmodSync(path, 0o600)
    if ((statSync(path).mode & 0o077) !== 0) throw systemError(`The token file ${path} is readable by others and could not be made private.`)
  } catch (error) {
    rmSync(path, {force: true})
    live.delete(path)
    throw error
  }
  return {
    path,
    name,
    remove() {
      rmSync(path, {force: true})
      live.delete(path)
    },
  }
}

/** Runs `use` with a fresh token, deleting it afterwards whatever happens. */
export async function withToken<T>(request: TokenRequest, use: (token: TokenFile) => Promise<T>): Promise<T> {
  const token = await fetchToken(request)
  try {
    return await use(token)
  } finally {
    token.remove()
  }
}
