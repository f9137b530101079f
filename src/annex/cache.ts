import {cacheListCommand, cachePruneCommand, parseCacheReport, type CacheReport} from '../backend/cache.js'
import {loadCatalog, requireSystem, type Catalog} from '../catalog/index.js'
import {loginOverrides} from '../condor/index.js'
import {oneLine, systemError} from '../errors.js'
import {loginTarget} from './login-target.js'
import {closeLogins, describeTarget, lastLine, openLogins, type LoginGroup, type LoginOptions} from './requests.js'

export interface CachePruneRequest {
  dryRun: boolean
  /** Keep what was used in the last DAYS days. */
  olderThanDays?: number
  /** Stop once the cache holds at most this many bytes. */
  keepBytes?: number
}

export interface CacheOptions {
  /** The system whose login node's cache it is. */
  system: string
  /** --login-name / --login-host: as create takes them (else the admin's overrides, else the machine file). */
  loginName?: string
  loginHost?: string
  prune?: CachePruneRequest
  login: LoginOptions & {sshConfigFile?: string}
  signal?: AbortSignal
  catalog?: Catalog
}

export interface CacheResult extends CacheReport {
  system: string
  /** Where it logged in: user@host. */
  login: string
  /** Bytes the cache held when it was read. */
  totalBytes: number
  prune?: CachePruneRequest & {
    /** Entries removed (or, with dryRun, that would be). */
    removed: number
    removedBytes: number
    kept: number
    /** Entries it could not remove. */
    failed: number
    /** Bytes the cache holds now (with dryRun: would hold). */
    totalBytesAfter: number
  }
}

/** The login target for a system, as every verb finds it: the flags, else the admin's overrides, else the machine file's host. */
async function cacheTarget(options: CacheOptions, catalog: Catalog): Promise<{group: LoginGroup}> {
  // As create: a machine file another user could have written is refused, not replaced by an earlier definition.
  const machine = requireSystem(catalog, options.system)
  // As `login`: the admin's overrides, none when HTCondor cannot be asked (the cache needs no Access Point).
  const overrides = await loginOverrides(machine.key).catch(() => ({}))
  const flags = {
    ...(options.loginHost === undefined ? {} : {host: options.loginHost}),
    ...(options.loginName === undefined ? {} : {user: options.loginName}),
    ...(options.login.controlDir === undefined ? {} : {controlDir: options.login.controlDir}),
  }
  const target = loginTarget(machine.host, {flags, overrides}, options.login.sshConfigFile)
  return {group: {system: machine.key, batch: machine.batch, target, requests: []}}
}

/**
 * Lists (or prunes) the cache on a system's login node: one login, one
 * command. Pruning never removes what a pilot directory that still exists
 * uses; it goes least recently used first.
 */
export async function showCache(options: CacheOptions): Promise<CacheResult> {
  const catalog = options.catalog ?? loadCatalog()
  const {group} = await cacheTarget(options, catalog)
  const where = describeTarget(group.target)
  const prune = options.prune
  const command = prune
    ? cachePruneCommand({
        dryRun: prune.dryRun,
        ...(prune.olderThanDays === undefined ? {} : {olderThanSeconds: Math.round(prune.olderThanDays * 86400)}),
        ...(prune.keepBytes === undefined ? {} : {keepBytes: prune.keepBytes}),
      })
    : cacheListCommand()
  const logins = await openLogins([group], options.login)
  try {
    const login = logins[0]!
    if ('error' in login) throw systemError(`Cannot read the cache of ${group.system}: ${login.error}`)
    let result
    try {
      result = await login.transport.exec(command, {...(options.signal ? {signal: options.signal} : {})})
    } catch (error) {
      throw systemError(`Reading the cache on ${where} failed: ${oneLine(error instanceof Error ? error.message : String(error))}`)
    }
    if (result.code !== 0) {
      const status = result.code === null ? `was killed (${result.signal ?? 'signal'})` : `failed (exit status ${result.code})`
      const detail = lastLine(result.stderr)
      throw systemError(`Reading the cache on ${where} ${status}${detail ? `: ${detail}` : ''}`)
    }
    const report = parseCacheReport(result.stdout)
    if (report.cacheDir === '') throw systemError(`Reading the cache on ${where} printed no report; is bash there?`)
    const totalBytes = report.entries.reduce((sum, entry) => sum + entry.bytes, 0)
    const cache: CacheResult = {system: group.system, login: where, ...report, totalBytes}
    if (prune) {
      const gone = report.entries.filter((entry) => entry.decision === 'removed' || entry.decision === 'would-remove')
      const removedBytes = gone.reduce((sum, entry) => sum + entry.bytes, 0)
      cache.prune = {
        ...prune,
        removed: gone.length,
        removedBytes,
        kept: report.entries.filter((entry) => entry.decision === 'kept').length,
        failed: report.entries.filter((entry) => entry.decision === 'failed').length,
        totalBytesAfter: totalBytes - removedBytes,
      }
    }
    return cache
  } finally {
    await closeLogins(logins)
  }
}
