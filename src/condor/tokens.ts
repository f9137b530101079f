import {randomBytes} from 'node:crypto'
import {chmodSync, lstatSync, readdirSync, rmSync, statSync} from 'node:fs'
import {hostname} from 'node:os'
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

/** This machine, as a token file name says it: the first label of its host name. */
function hostTag(): string {
  return hostname().split('.')[0]!.replace(/[^A-Za-z0-9-]/g, '') || 'host'
}

/**
 * The token's file name in SEC_TOKEN_DIRECTORY, one per run:
 * `<type>.<user>@<domain>.<host>.<pid>.<12 hex digits>`. Runs that overlap
 * (two `status`, a `create` and an `add` of one name) each have their own,
 * and the end of one never deletes another's. The host and pid say whose it
 * is, for sweepTokens.
 */
export function tokenName(type: string, user: string, domain: string, run = `${hostTag()}.${process.pid}.${randomBytes(6).toString('hex')}`): string {
  const name = `${type}.${user}@${domain}.${run}`
  if (!SAFE.test(name) || name.includes('..')) throw new TypeError(`unusable token name ${JSON.stringify(name)}`)
  return name
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/**
 * Deletes the tokens that runs of this user on this machine left behind when
 * they were killed outright (kill -9, a crash): files named by tokenName whose
 * process is gone. Tokens of runs on other machines (a shared home) and of
 * live runs stay. Returns the names removed.
 */
export function sweepTokens(directory: string, user: string, domain: string): string[] {
  const mine = new RegExp(`^.+\\.${escape(`${user}@${domain}.${hostTag()}.`)}(\\d+)\\.[0-9a-f]{12}$`)
  const removed: string[] = []
  let names: string[]
  try {
    names = readdirSync(directory)
  } catch {
    return removed
  }
  for (const name of names) {
    const pid = Number(mine.exec(name)?.[1] ?? Number.NaN)
    if (!Number.isSafeInteger(pid) || pid === process.pid || running(pid)) continue
    try {
      rmSync(join(directory, name), {force: true})
      removed.push(name)
    } catch {
      // Not ours to remove after all; left alone.
    }
  }
  return removed
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

/** Whether nothing is at `path` (not even a dangling link). */
function absent(path: string): boolean {
  try {
    lstatSync(path)
    return false
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw error
  }
}

/**
 * Mints a token with condor_token_fetch (exact authz list and lifetime) into a
 * file of this run's own (tokenName), which condor_token_fetch creates with
 * mode 0600; checks it is a private regular file of this user, and arranges
 * for it to be deleted when the run ends. Tokens that killed runs left on this
 * machine are swept first. The token itself never passes through hpc-annex's
 * output or any command line.
 */
export async function fetchToken(request: TokenRequest): Promise<TokenFile> {
  if (!Number.isSafeInteger(request.lifetime) || request.lifetime <= 0) throw new TypeError(`token lifetime must be a positive integer, not ${request.lifetime}`)
  let name = tokenName(request.type, request.user, request.domain)
  sweepTokens(request.directory, request.user, request.domain)
  // A fresh name (48 random bits): never a file that is already there.
  while (!absent(join(request.directory, name))) name = tokenName(request.type, request.user, request.domain)
  const args = ['-lifetime', String(request.lifetime), '-token', name, '-key', request.keyName, ...TOKEN_AUTHZ.flatMap((authz) => ['-authz', authz])]
  const path = join(request.directory, name)
  hookExit()
  live.add(path)
  try {
    await runTool('condor_token_fetch', args, {timeout: request.timeout, timeoutName: 'ANNEX_TOKEN_FETCH_TIMEOUT'})
    if (absent(path)) throw systemError(`condor_token_fetch succeeded but wrote no token at ${path}; check SEC_TOKEN_DIRECTORY.`)
    const info = lstatSync(path)
    const uid = process.getuid?.()
    if (!info.isFile() || (uid !== undefined && info.uid !== uid)) throw systemError(`The token file ${path} is not a file of yours; check SEC_TOKEN_DIRECTORY.`)
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
