import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {HEX_SHA256} from '../catalog/download.js'
import {projectPath} from '../paths.js'
import {shellQuote} from '../quote.js'
import {CONTROL, CONTROL_MARK} from './protocol.js'

/**
 * The login node's cache (~/.hpc-annex/cache): templates/cache.sh lists it,
 * prunes it, and keeps it within a machine's cache_max_bytes before a
 * request's objects arrive. The script is fixed text; every value reaches it
 * as a quoted argument.
 */
let script: string | undefined
function cacheScript(): string {
  script ??= readFileSync(join(projectPath('templates'), 'cache.sh'), 'utf8')
  return script
}

/** Seconds during which an object used by a request is never removed to make room for another (it may be about to use it). */
export const CACHE_RECENT_SECONDS = 600

function command(args: string[]): string {
  return `bash -c ${shellQuote(cacheScript())} hpc-annex-cache ${args.map(shellQuote).join(' ')}`
}

function count(value: number, what: string): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`not ${what}: ${value}`)
  return String(value)
}

/** Lists the cache's objects, with the file system's (and the quota's) figures. */
export function cacheListCommand(): string {
  return command(['list'])
}

export interface PruneOptions {
  /** Show what would go, remove nothing. */
  dryRun: boolean
  /** Keep what was used in the last this many seconds. */
  olderThanSeconds?: number
  /** Stop removing once the cache holds at most this many bytes. */
  keepBytes?: number
}

/** Removes, least recently used first, what no running pilot uses (within the options' bounds). */
export function cachePruneCommand(options: PruneOptions): string {
  return command([
    'prune',
    options.dryRun ? '1' : '0',
    options.olderThanSeconds === undefined ? '' : count(options.olderThanSeconds, 'a number of seconds'),
    options.keepBytes === undefined ? '' : count(options.keepBytes, 'a number of bytes'),
  ])
}

export interface CacheLimit {
  /** The machine's cache_max_bytes. */
  maxBytes: number
  /** The system's key, for the message that names `hpc-annex cache SYSTEM`. */
  system: string
  /** The request's objects (sha256 → bytes; 0 when not known): never removed, and those the cache lacks count as arriving. */
  objects: ReadonlyMap<string, number>
}

/**
 * Makes room before a request's objects arrive: least recently used first,
 * never what a pilot uses, what the request needs, or what was used in the
 * last CACHE_RECENT_SECONDS. A line for the user when it removed something,
 * a WARNING control line when the cache still does not fit.
 */
export function cacheEnforceCommand(limit: CacheLimit): string {
  if (!/^[A-Za-z0-9._-]+$/.test(limit.system)) throw new TypeError(`not a system key: ${JSON.stringify(limit.system)}`)
  const objects: string[] = []
  for (const [digest, bytes] of limit.objects) {
    if (!HEX_SHA256.test(digest)) throw new TypeError(`not a sha256: ${JSON.stringify(digest)}`)
    objects.push(digest, count(bytes, 'a number of bytes'))
  }
  return command(['enforce', CONTROL_MARK, CONTROL.warning, limit.system, count(limit.maxBytes, 'a number of bytes'), String(CACHE_RECENT_SECONDS), ...objects])
}

export type CacheEntryKind = 'tarball' | 'image' | 'object' | 'release' | 'temporary' | 'other'
export type CacheDecision = 'removed' | 'would-remove' | 'kept' | 'failed'
/**
 * Why an entry was kept: in-use (a pilot directory that used it still
 * exists), linked (another hard link to it exists: a pilot directory's),
 * recent (used within --older-than), within-limit (the cache is within
 * --keep-bytes without removing it), temporary (a create may be writing it),
 * other (not hpc-annex's: never touched).
 */
export type CacheKeptReason = 'in-use' | 'linked' | 'recent' | 'within-limit' | 'temporary' | 'other'

export interface CacheEntry {
  /** Its name in the cache directory: a sha256, SHA256.release, or another file's name. */
  name: string
  kind: CacheEntryKind
  bytes: number
  /** Seconds since the epoch (the login node's clock). */
  lastUse: number
  /** What the last request that used it called it: an image's file name, an HTCondor version. */
  label?: string
  /** The annexes that used it, newest first. */
  annexes: string[]
  /** Pilot directories that used it and still exist. */
  usedBy: {annex: string; pilotDir: string}[]
  /** Its hard links (for a release: its condor_master's); more than 1 means a pilot directory links it. */
  links: number
  inUse: boolean
  decision?: CacheDecision
  reason?: CacheKeptReason
}

export interface CacheFileSystem {
  name: string
  bytes: number
  usedBytes: number
  availableBytes: number
  mountedOn: string
}

export interface CacheReport {
  cacheDir: string
  exists: boolean
  /** The login node's clock when it looked (seconds since the epoch). */
  now: number
  /** Least recently used first. */
  entries: CacheEntry[]
  /** What `quota -s` printed there (empty where it is not installed). */
  quota: string[]
  /** `df` of the cache's file system. */
  fileSystem?: CacheFileSystem
}

const KINDS = new Set<string>(['tarball', 'image', 'object', 'release', 'temporary', 'other'])
const DECISIONS = new Set<string>(['removed', 'would-remove', 'kept', 'failed'])
const REASONS = new Set<string>(['in-use', 'linked', 'recent', 'within-limit', 'temporary', 'other'])

function number(text: string | undefined): number {
  const value = Number(text)
  return Number.isFinite(value) && value >= 0 ? value : 0
}

/** The report the script prints (list or prune); lines it does not know are skipped. */
export function parseCacheReport(stdout: string): CacheReport {
  const report: CacheReport = {cacheDir: '', exists: false, now: 0, entries: [], quota: []}
  for (const line of stdout.split('\n')) {
    const [tag, ...fields] = line.split('\t')
    if (tag === 'cache' && fields.length >= 3) {
      report.cacheDir = fields[0]!
      report.exists = fields[1] === '1'
      report.now = number(fields[2])
    } else if (tag === 'entry' && fields.length >= 10) {
      const [name, kind, bytes, lastUse, decision, reason, annexes, live, links, ...label] = fields
      const usedBy = live!.split(' ').filter((pair) => pair.includes(':')).map((pair) => {
        const colon = pair.indexOf(':')
        return {annex: pair.slice(0, colon), pilotDir: pair.slice(colon + 1)}
      })
      const entry: CacheEntry = {
        name: name!,
        kind: (KINDS.has(kind!) ? kind : 'other') as CacheEntryKind,
        bytes: number(bytes),
        lastUse: number(lastUse),
        annexes: annexes === '' ? [] : annexes!.split(','),
        usedBy,
        links: number(links) || 1,
        inUse: usedBy.length > 0 || number(links) > 1,
      }
      const text = label.join(' ')
      if (text !== '') entry.label = text
      if (DECISIONS.has(decision!)) entry.decision = decision as CacheDecision
      if (REASONS.has(reason!)) entry.reason = reason as CacheKeptReason
      report.entries.push(entry)
    } else if (tag === 'quota') {
      report.quota.push(fields.join('\t'))
    } else if (tag === 'df' && fields.length >= 5) {
      report.fileSystem = {name: fields[0]!, bytes: number(fields[1]), usedBytes: number(fields[2]), availableBytes: number(fields[3]), mountedOn: fields.slice(4).join('\t')}
    }
  }
  return report
}
