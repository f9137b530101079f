import {randomBytes} from 'node:crypto'
import {mkdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {dirname, isAbsolute, join, resolve} from 'node:path'
import {Worker} from 'node:worker_threads'

import {HEX_SHA256} from '../catalog/download.js'

// Runs in a worker thread: a release tarball or an image is tens of MiB to
// GiBs, and hashing it on the main thread would stall the checks and the login
// beside it (and be stalled by them).
const HASH_FILE = `
const {createHash} = require('node:crypto')
const {closeSync, openSync, readSync} = require('node:fs')
const {parentPort, workerData} = require('node:worker_threads')
const hash = createHash('sha256')
const chunk = Buffer.allocUnsafe(1 << 20)
const fd = openSync(workerData, 'r')
try {
  for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n))
} finally {
  closeSync(fd)
}
parentPort.postMessage(hash.digest('hex'))
`

function hashInWorker(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(HASH_FILE, {eval: true, workerData: path})
    worker.once('message', (digest: string) => resolve(digest))
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`hashing ${path} stopped (status ${code})`)))
  })
}

/**
 * What stat says of a file, as the digest cache compares it: the same device,
 * inode, size, modification and change times (ns) mean the same contents. The
 * change time cannot be set by anyone; every write moves it.
 */
interface Seen {
  dev: string
  ino: string
  size: string
  mtimeNs: string
  ctimeNs: string
}

interface Remembered extends Seen {
  sha256: string
  /** When it was hashed (ms since the epoch): the oldest go first. */
  hashed: number
}

/** Most files the cache remembers (a few tarballs and images per user). */
const MOST_REMEMBERED = 256
/**
 * A file changed this close to the moment it was read may change again
 * within the same timestamp (coarse file-system clocks, NFS): its digest is
 * not remembered.
 */
const RACY_NS = 2_000_000_000n

/** The digest cache of the user running hpc-annex: $XDG_CACHE_HOME/hpc-annex/digests.json, or ~/.cache/... */
export function digestCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  // XDG: a relative XDG_CACHE_HOME is ignored.
  const cacheHome = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(env.HOME || homedir(), '.cache')
  return join(cacheHome, 'hpc-annex', 'digests.json')
}

export interface DigestOptions {
  /** Where digests are remembered; null: neither read nor written. Default: digestCacheFile(). */
  cache?: string | null
  /** The wall clock in ns (tests move it). */
  nowNs?: () => bigint
}

function seen(info: {dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint}): Seen {
  return {dev: String(info.dev), ino: String(info.ino), size: String(info.size), mtimeNs: String(info.mtimeNs), ctimeNs: String(info.ctimeNs)}
}

function same(a: Seen, b: Seen): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs
}

async function readCache(file: string): Promise<Record<string, Remembered>> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'))
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, Remembered>) : {}
  } catch {
    // None yet, or unreadable: nothing is remembered.
    return {}
  }
}

/** Rewrites the cache with `path` remembered: a new file renamed over the old one, so a reader sees one or the other whole. */
async function remember(file: string, path: string, entry: Remembered): Promise<void> {
  const entries = {...(await readCache(file)), [path]: entry}
  const kept = Object.entries(entries)
    .sort(([, a], [, b]) => (Number(b.hashed) || 0) - (Number(a.hashed) || 0))
    .slice(0, MOST_REMEMBERED)
  await mkdir(dirname(file), {recursive: true, mode: 0o700})
  const temp = `${file}.${randomBytes(6).toString('hex')}`
  try {
    await writeFile(temp, JSON.stringify(Object.fromEntries(kept)), {mode: 0o600, flag: 'wx'})
    await rename(temp, file)
  } catch {
    await rm(temp, {force: true})
  }
}

/**
 * Hex sha256 of a local file, read in a worker thread, or remembered from an
 * earlier run while stat says the file has not changed since (a 1 GiB image
 * hashed once, not at every create). Its own module: a create digests its
 * tarball before it needs tar or the templates.
 */
export async function sha256File(path: string, options: DigestOptions = {}): Promise<string> {
  const cache = options.cache === undefined ? digestCacheFile() : options.cache
  const nowNs = options.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n)
  const key = resolve(path)
  const before = seen(await stat(path, {bigint: true}))
  const known = cache === null ? undefined : (await readCache(cache))[key]
  if (known !== undefined && HEX_SHA256.test(String(known.sha256)) && same(known, before)) return known.sha256
  const started = nowNs()
  const digest = await hashInWorker(path)
  if (cache !== null && BigInt(before.ctimeNs) + RACY_NS < started) {
    const after = seen(await stat(path, {bigint: true}))
    // Unchanged while it was read, and last changed well before.
    if (same(before, after)) await remember(cache, key, {...before, sha256: digest, hashed: Date.now()}).catch(() => undefined)
  }
  return digest
}
