import type {CacheResult} from '../annex/cache.js'
import type {CacheEntry} from '../backend/cache.js'
import {userError} from '../errors.js'
import {formatTable} from './table.js'

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 1536 → "1.5 KiB"; under 1 KiB, bytes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`
}

/** How long ago, roughly: "40 s ago", "12 min ago", "5 h ago", "3 days ago". */
export function formatAgo(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 90) return `${s} s ago`
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`
  const days = Math.round(s / 86400)
  return `${days} ${days === 1 ? 'day' : 'days'} ago`
}

/** --keep-bytes: a count of bytes, or with K, M, G or T (powers of 1024). */
export function parseByteCount(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i.exec(text.trim())
  const unit = match ? 1024 ** (['', 'K', 'M', 'G', 'T', 'P'].indexOf(match[2]!.toUpperCase())) : 0
  const value = match ? Math.floor(Number(match[1]) * unit) : NaN
  if (!Number.isSafeInteger(value) || (match![2] === '' && match![1]!.includes('.'))) {
    throw userError(`${flag} '${text}' is not a number of bytes (e.g. 50000000000, 500M or 20G); change ${flag}.`)
  }
  return value
}

/** --older-than: days, 0 or more (a fraction allowed). */
export function parseDays(text: string, flag: string): number {
  const value = Number(text.trim())
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) throw userError(`${flag} '${text}' is not a number of days (e.g. 30 or 0.5); change ${flag}.`)
  return value
}

/** What an entry is, for people: "image analysis.sif (sha256 0a4b2a02b045)". */
export function describeEntry(entry: CacheEntry): string {
  const digest = /^[0-9a-f]{64}/.exec(entry.name)?.[0]
  switch (entry.kind) {
    case 'image':
      return `image${entry.label ? ` ${entry.label}` : ''} (sha256 ${digest?.slice(0, 12) ?? entry.name})`
    case 'tarball':
    case 'release': {
      const what = entry.kind === 'tarball' ? 'HTCondor tarball' : 'HTCondor release, unpacked'
      return `${what} (${entry.label ? `${entry.label}, ` : ''}sha256 ${digest?.slice(0, 12) ?? entry.name})`
    }
    case 'object':
      return `object sha256 ${digest?.slice(0, 12) ?? entry.name}`
    case 'temporary':
      return `temporary ${entry.name}`
    default:
      return `${entry.name} (not hpc-annex's)`
  }
}

function inUse(entry: CacheEntry): string {
  if (entry.usedBy.length > 0) return `${entry.usedBy.length} pilot dir${entry.usedBy.length === 1 ? '' : 's'}`
  if (entry.links > 1) return 'linked'
  return '-'
}

/** The annexes that used an entry, newest first: three, then how many more (--json has them all). */
function annexes(entry: CacheEntry): string {
  if (entry.annexes.length === 0) return '-'
  const more = entry.annexes.length - 3
  return `${entry.annexes.slice(0, 3).join(',')}${more > 0 ? ` +${more}` : ''}`
}

function why(entry: CacheEntry, result: CacheResult): string {
  const prune = result.prune
  switch (entry.reason) {
    case 'in-use':
      return `in use by ${entry.usedBy.map((u) => `${u.pilotDir} (annex ${u.annex})`).join(', ')}`
    case 'linked':
      return `in use: ${entry.links - 1} other hard link${entry.links === 2 ? '' : 's'} to it (a pilot directory's)`
    case 'recent':
      return `used ${formatAgo(result.now - entry.lastUse)}, within --older-than ${prune?.olderThanDays} day${prune?.olderThanDays === 1 ? '' : 's'}`
    case 'within-limit':
      return `the cache is within --keep-bytes ${formatBytes(prune?.keepBytes ?? 0)} without removing it`
    case 'temporary':
      return 'a create may be writing it (the back-end removes those left a day)'
    case 'other':
      return "not one of hpc-annex's objects: never removed"
    default:
      return ''
  }
}

function spaceLines(result: CacheResult): string[] {
  const lines: string[] = []
  if (result.quota.length > 0) lines.push('Quota (quota -s):', ...result.quota.map((line) => `    ${line}`))
  const fs = result.fileSystem
  if (fs) {
    lines.push(`File system ${fs.name} (on ${fs.mountedOn}): ${formatBytes(fs.usedBytes)} used of ${formatBytes(fs.bytes)}, ${formatBytes(fs.availableBytes)} available (df).`)
  }
  return lines
}

/** `hpc-annex cache SYSTEM`: a table, least recently used first, the total, and the space left. */
export function formatCacheList(result: CacheResult): string {
  const lines = [`The cache of ${result.system} on ${result.login}: ${result.cacheDir}`]
  if (!result.exists) lines.push('It does not exist yet: no create has staged anything there.')
  if (result.entries.length > 0) {
    const rows = result.entries.map((entry) => [formatBytes(entry.bytes), formatAgo(result.now - entry.lastUse), inUse(entry), annexes(entry), describeEntry(entry)])
    lines.push(formatTable(['SIZE', 'LAST USED', 'IN USE', 'ANNEXES', 'OBJECT'], rows))
  }
  const count = result.entries.length
  lines.push(`Total: ${formatBytes(result.totalBytes)} in ${count} entr${count === 1 ? 'y' : 'ies'}.`)
  const used = result.entries.filter((entry) => entry.usedBy.length > 0)
  if (used.length > 0) {
    lines.push('In use by pilot directories that still exist (never pruned):')
    for (const entry of used) lines.push(`    ${describeEntry(entry)}: ${entry.usedBy.map((u) => `${u.pilotDir} (annex ${u.annex})`).join(', ')}`)
  }
  lines.push(...spaceLines(result))
  return lines.join('\n')
}

/** `hpc-annex cache SYSTEM --prune`: what went (or would go), what stayed and why, and the total after. */
export function formatCachePrune(result: CacheResult): string {
  const prune = result.prune!
  const dry = prune.dryRun
  const lines: string[] = []
  const what = `${prune.removed} entr${prune.removed === 1 ? 'y' : 'ies'} (${formatBytes(prune.removedBytes)})`
  lines.push(
    dry
      ? `Would remove ${what} from the cache of ${result.system} on ${result.login} (${result.cacheDir}); nothing was removed (--dry-run).`
      : `Removed ${what} from the cache of ${result.system} on ${result.login} (${result.cacheDir}).`,
  )
  for (const entry of result.entries) {
    const ago = formatAgo(result.now - entry.lastUse)
    if (entry.decision === 'removed' || entry.decision === 'would-remove') {
      lines.push(`    ${dry ? 'would remove' : 'removed'}  ${describeEntry(entry)}, ${formatBytes(entry.bytes)}, last used ${ago}`)
    } else if (entry.decision === 'failed') {
      lines.push(`    not removed  ${describeEntry(entry)}, ${formatBytes(entry.bytes)}: removing it failed (check its permissions)`)
    } else {
      lines.push(`    kept  ${describeEntry(entry)}, ${formatBytes(entry.bytes)}: ${why(entry, result)}`)
    }
  }
  lines.push(`The cache ${dry ? 'would hold' : 'holds'} ${formatBytes(prune.totalBytesAfter)} (it held ${formatBytes(result.totalBytes)}).`)
  lines.push(...spaceLines(result))
  return lines.join('\n')
}
