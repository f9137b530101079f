import {randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {createReadStream, type Stats} from 'node:fs'
import {chmod, lstat, mkdir, open, rename, rm, stat, writeFile, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {promisify} from 'node:util'
import {gzip} from 'node:zlib'

import {Header, Pack, ReadEntry} from 'tar'

import {HEX_SHA256} from '../catalog/download.js'
import {userError} from '../errors.js'
import {shellQuote} from '../quote.js'
import {cacheEnforceCommand, type CacheLimit} from './cache.js'
import {SECRET_MODE, type RenderedFile} from './files.js'
import {CONTROL, CONTROL_MARK, TAR_RECORD_BYTES} from './protocol.js'
import {PICK_SHA256, SHA256_FUNCTION} from './sha256.js'

/** Secrets travel as bytes or as a local file; either way they are never printed. */
export type SecretSource = Buffer | {path: string}

export interface BundleInputs {
  /** The annex's HTCondor token (becomes the pilots' tokens.d entry). */
  token: SecretSource
  /** The annex password file (becomes the pilots' passwords.d/POOL). */
  password: SecretSource
  /**
   * Container images the login node's cache lacks, staged as sif/<sha256>
   * (the back-end learns their names from ApContext.images).
   */
  sifs?: {sha256: string; path: string}[]
  /** A local HTCondor tarball (--condor-tarball), staged as condor/<sha256>. */
  condorTarball?: {path: string; sha256: string}
}

export interface BundleOptions {
  /** A directory every entry is put under (the self-service bundle's top directory). */
  prefix?: string
  /**
   * What the receiver already holds (sha256 → bytes): images and tarballs
   * among them, at the same size, are left out. It may be answered late: the
   * rendered files and secrets go first, and only the large objects wait.
   */
  cached?: Promise<Map<string, number>>
  /**
   * The rendered files and secrets as one entry, FILES_ENTRY (a gzipped tar
   * of them), ahead of the objects: the login node's tar then starts one
   * command for them all instead of one each (~3 ms each), and the ~55 KiB of
   * scripts go as ~15 KiB, within what a new TCP connection may send in its
   * first round trip (slow start: over a 100 ms link, each further round of
   * it costs 100 ms). FILLER_ENTRY follows it, so the back-end can start
   * once they are in and receive the objects itself. For the bootstrap
   * only; a self-service bundle is unpacked by hand.
   */
  filesAsOneEntry?: boolean
}

/** The entry that holds the rendered files and secrets, with filesAsOneEntry. */
export const FILES_ENTRY = 'files.tar.gz'

/**
 * With filesAsOneEntry, the entry after FILES_ENTRY: zeros that end the two
 * on a whole tar record (TAR_RECORD_BYTES), so the objects that follow start
 * on one. The bootstrap's tar reads up to there; the back-end's own tar reads
 * the rest, whole records at a time, while the back-end goes on.
 */
export const FILLER_ENTRY = 'files.filler'

const TAR_BLOCK_BYTES = 512

const gzipped = promisify(gzip)

/** One entry as it goes into the tar: what, where and with which mode. */
export interface BundleEntry {
  path: string
  mode: number
  type: 'File' | 'Directory'
  content?: Buffer
  /** A local file streamed into the tar, never read whole. */
  source?: string
  /** Large objects (images, tarballs) and their directories: the receiver may have them cached. */
  object?: {sha256?: string}
}

// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/

/**
 * The name a job's .sif image is staged under. It comes from a job ad (the
 * user's), so it is only ever a tar entry name below sif/, never shell or
 * configuration text; still, anything that is not a plain file name is refused.
 */
export function sifEntryName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || CONTROL_CHARACTER.test(name) || Buffer.byteLength(name) > 255) {
    throw userError(`The container image name '${JSON.stringify(name).slice(1, -1)}' cannot be staged; rename the .sif file.`)
  }
  return name
}

/** The entries of a bundle, in order: directories first, then files; secrets 0600, scripts 0700. */
export function bundleEntries(files: RenderedFile[], inputs: BundleInputs, options: BundleOptions = {}): BundleEntry[] {
  const under = (path: string) => (options.prefix ? `${options.prefix}/${path}` : path)
  const entries: BundleEntry[] = []
  if (options.prefix) entries.push({path: `${options.prefix}/`, mode: 0o700, type: 'Directory'})
  for (const file of files) entries.push({path: under(file.path), mode: file.mode, type: 'File', content: Buffer.from(file.content, 'utf8')})
  for (const [name, secret] of [['token', inputs.token], ['password', inputs.password]] as const) {
    entries.push({path: under(name), mode: SECRET_MODE, type: 'File', ...(Buffer.isBuffer(secret) ? {content: secret} : {source: secret.path})})
  }
  const sifs = inputs.sifs ?? []
  if (sifs.length > 0) {
    entries.push({path: under('sif/'), mode: 0o700, type: 'Directory', object: {}})
    const seen = new Set<string>()
    for (const sif of sifs) {
      if (!HEX_SHA256.test(sif.sha256)) throw new TypeError('a staged image needs a hex sha256')
      if (seen.has(sif.sha256)) continue
      seen.add(sif.sha256)
      entries.push({path: under(`sif/${sif.sha256}`), mode: SECRET_MODE, type: 'File', source: sif.path, object: {sha256: sif.sha256}})
    }
  }
  if (inputs.condorTarball) {
    if (!HEX_SHA256.test(inputs.condorTarball.sha256)) throw new TypeError('the staged tarball needs a hex sha256')
    entries.push({path: under('condor/'), mode: 0o700, type: 'Directory', object: {}})
    entries.push({path: under(`condor/${inputs.condorTarball.sha256}`), mode: SECRET_MODE, type: 'File', source: inputs.condorTarball.path, object: {sha256: inputs.condorTarball.sha256}})
  }
  return entries
}

/**
 * Bytes read from an image or tarball at a time. Node's default (64 KiB)
 * makes each MiB sixteen trips through the tar packer and the connection's
 * stream; at 1 MiB the sender's CPU per byte drops enough that a 1 GiB upload
 * on a fast link ran ~10% faster (both transports), with a few MiB more held.
 */
const SOURCE_CHUNK_BYTES = 1 << 20

async function feed(entry: BundleEntry, target: ReadEntry, size: number): Promise<void> {
  if (entry.content) {
    target.end(entry.content)
    return
  }
  if (!entry.source) {
    target.end()
    return
  }
  let sent = 0
  for await (const chunk of createReadStream(entry.source, {highWaterMark: SOURCE_CHUNK_BYTES}) as AsyncIterable<Buffer>) {
    sent += chunk.length
    if (sent > size) throw new Error(`${entry.source} grew while it was being staged`)
    if (!target.write(chunk)) await once(target, 'drain')
  }
  if (sent !== size) throw new Error(`${entry.source} shrank while it was being staged`)
  target.end()
}

/**
 * The bundle as a tar stream. Entries are fed one after the other as the
 * reader consumes them, so large images and tarballs are never held in memory.
 */
export function bundleStream(files: RenderedFile[], inputs: BundleInputs, options: BundleOptions = {}): Readable {
  const entries = bundleEntries(files, inputs, options)
  const pack = new Pack({portable: true})
  const mtime = new Date()
  const sizeOf = async (entry: BundleEntry) => (entry.type === 'Directory' ? 0 : entry.content ? entry.content.length : (await stat(entry.source!)).size)
  const add = async (into: Pack, entry: BundleEntry, size: number) => {
    const header = new Header({path: entry.path, mode: entry.mode, size, type: entry.type, mtime})
    const target = new ReadEntry(header)
    const consumed = target.emittedEnd ? Promise.resolve() : once(target, 'end')
    into.add(target)
    await feed(entry, target, size)
    // One entry in flight at a time: the next is added once the pack has read this one.
    await consumed
  }
  const produce = async () => {
    const objects = entries.filter((e) => e.object)
    const small = entries.filter((e) => !e.object)
    if (options.filesAsOneEntry) {
      const inner = new Pack({portable: true})
      const packed = Readable.from(inner as AsyncIterable<Buffer>).toArray() as Promise<Buffer[]>
      for (const entry of small) await add(inner, entry, await sizeOf(entry))
      inner.end()
      const content = await gzipped(Buffer.concat(await packed))
      await add(pack, {path: FILES_ENTRY, mode: SECRET_MODE, type: 'File', content}, content.length)
      // The filler makes the scripts end on a whole record, where the back-end's tar takes over the stream.
      const written = TAR_BLOCK_BYTES + Math.ceil(content.length / TAR_BLOCK_BYTES) * TAR_BLOCK_BYTES + TAR_BLOCK_BYTES
      const filler = Buffer.alloc((TAR_RECORD_BYTES - (written % TAR_RECORD_BYTES)) % TAR_RECORD_BYTES)
      await add(pack, {path: FILLER_ENTRY, mode: SECRET_MODE, type: 'File', content: filler}, filler.length)
    } else for (const entry of small) await add(pack, entry, await sizeOf(entry))
    const cached = objects.length > 0 && options.cached ? await options.cached : new Map<string, number>()
    const sending: [BundleEntry, number][] = []
    for (const entry of objects) {
      const size = await sizeOf(entry)
      const sha256 = entry.object!.sha256
      if (sha256 === undefined || cached.get(sha256) !== size) sending.push([entry, size])
    }
    // A directory goes only with something in it.
    const kept = sending.filter(([entry]) => entry.type === 'File' || sending.some(([f]) => f.type === 'File' && f.path.startsWith(entry.path)))
    for (const [entry, size] of kept) await add(pack, entry, size)
    pack.end()
  }
  const out = Readable.from(pack as AsyncIterable<Buffer>, {objectMode: false})
  produce().catch((error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))))
  return out
}

/** What is at `path` itself (a symbolic link is not followed); undefined when nothing is. */
async function entryAt(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/**
 * Writes the bundle (it holds the token) where only the user can ever read
 * it: into a new file beside `file`, created exclusively (never one that was
 * there, never through a link) with mode 0600, then renamed onto `file` once
 * complete. Whatever was at `file` is never written into: a regular file of
 * the user's is replaced (who had it open keeps its old contents); a symbolic
 * link, anything but a regular file, or another user's file is refused.
 */
export async function writeBundle(file: string, files: RenderedFile[], inputs: BundleInputs, options: BundleOptions = {}): Promise<void> {
  const there = await entryAt(file)
  if (there?.isSymbolicLink()) throw userError(`--bundle ${file} is a symbolic link; the token is never written through one. Name another file.`)
  if (there && !there.isFile()) throw userError(`--bundle ${file} is not a regular file; name another file.`)
  const uid = process.getuid?.()
  if (there && uid !== undefined && there.uid !== uid) throw userError(`--bundle ${file} belongs to another user; name a file of yours, or a new one.`)
  const dir = dirname(file)
  await mkdir(dir, {recursive: true})
  let temp = ''
  let handle: FileHandle | undefined
  while (handle === undefined) {
    temp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.part`)
    try {
      handle = await open(temp, 'wx', SECRET_MODE)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
  }
  try {
    // The umask may only have narrowed the mode; make it exactly 0600 before a byte is written.
    await handle.chmod(SECRET_MODE)
    await pipeline(bundleStream(files, inputs, options), handle.createWriteStream())
    await rename(temp, file)
  } catch (error) {
    await handle.close().catch(() => undefined)
    await rm(temp, {force: true})
    throw error
  }
}

/** `--emit DIR`: every rendered file, with its mode, for reading and checking. */
export async function emitFiles(dir: string, files: RenderedFile[]): Promise<string[]> {
  const written: string[] = []
  for (const file of files) {
    const path = join(dir, file.path)
    await mkdir(dirname(path), {recursive: true})
    await writeFile(path, file.content, {mode: file.mode})
    await chmod(path, file.mode)
    written.push(path)
  }
  return written
}

/** Where the login node keeps staged objects by sha256 (the back-end reads the same). */
export const REMOTE_CACHE = '${HPC_ANNEX_CACHE:-$HOME/.hpc-annex/cache}'

/**
 * What the login node's tar does with each file of the bundle (GNU tar's
 * --to-command; /bin/sh in the staging directory, the file on stdin): writes
 * it with its mode, or unpacks FILES_ENTRY (the rendered files and secrets, gzipped)
 * with theirs. Images and tarballs are hashed as they arrive, into
 * <file>.sha256 (with the bootstrap's pick of sha256 tool), so the back-end
 * checks them without reading them again.
 */
function receiveFileScript(): string {
  // tee's own status is lost in a POSIX sh pipeline: the size written says whether it wrote everything.
  const whole = '[ "$(stat -c %s -- "$f")" = "$TAR_SIZE" ] || exit 1'
  return [
    // tar runs this with umask 0.
    'umask 077',
    'f=$TAR_FILENAME',
    SHA256_FUNCTION,
    // tar leaves directories to this script.
    'case $f in */*) [ -d "${f%/*}" ] || mkdir -p -- "${f%/*}" || exit 1 ;; esac',
    // The rendered files and secrets, with their modes (-p); the rest of the entry (tar's end padding) is read too.
    `case $f in ${shellQuote(FILES_ENTRY)}) { tar -xzpf - && cat >/dev/null; } || exit 1; exit 0 ;; ${shellQuote(FILLER_ENTRY)}) cat >/dev/null; exit 0 ;; condor/*|sif/*) tee -- "$f" | sha256 > "$f.sha256"; ${whole} ;; *) cat > "$f" || exit 1 ;; esac`,
    '[ "$TAR_MODE" = 0600 ] || chmod -- "$TAR_MODE" "$f"',
  ].join('; ')
}

export interface BootstrapOptions {
  /** The machine's cache_max_bytes: room is made before anything arrives (a failure there never stops the request). */
  cacheLimit?: CacheLimit
  /**
   * Seconds the back-end waits, once it reported the batch job id and the
   * bundle has arrived whole, for JOB_ID_RECORDED on the stdin left after
   * the bundle (padded to whole tar records, see TAR_RECORD_BYTES) before it
   * cancels the job. Without it the back-end awaits nothing.
   */
  ackTimeout?: number
}

/** The receiving tar, reading whole records (TAR_RECORD_BYTES) so it stops at the one that ends the archive. */
function receiveCommand(blocking: number, names: string[] = []): string {
  // GNU tar runs the --to-command in its own working directory, whatever -C says.
  const only = names.length > 0 ? ` --occurrence -- ${names.map(shellQuote).join(' ')}` : ''
  return `tar -b ${blocking} -B -xf - --to-command=${shellQuote(receiveFileScript())}${only}`
}

/**
 * The command the login node runs with the bundle (made with
 * filesAsOneEntry) on its stdin. First it answers the cache question for
 * `digests` on stdout (`=-.-= CACHED SHA256 BYTES` for each object it holds,
 * then `=-.-= CACHE_END`), so the sender can leave those out of the same
 * stream (with a cache limit, having first made room in the cache for what it
 * lacks); then it unpacks the rendered files and secrets (FILES_ENTRY, and
 * FILLER_ENTRY after it, read a block at a time so nothing past them is
 * taken) into a fresh private directory under ~/.hpc-annex/tmp (noting in its
 * .owner this host and its own pid), runs the back-end, and removes the
 * directory whatever happens (the back-end moves what it keeps); one left by
 * a run killed outright is swept by a later back-end. The back-end gets the
 * rest of stdin on fd 3 (HPC_ANNEX_BUNDLE_FD), and in HPC_ANNEX_RECEIVE the
 * command (run in the staging directory) that receives the images and
 * tarball still arriving on it, so it can go on meanwhile. A cut-off upload
 * of the files fails tar, so nothing runs. Digests are checked to be hex.
 */
export function bootstrapCommand(digests: string[] = [], options: BootstrapOptions = {}): string {
  for (const digest of digests) if (!HEX_SHA256.test(digest)) throw new TypeError(`not a sha256: ${JSON.stringify(digest)}`)
  const steps = [
    'umask 077',
    'mkdir -p -- "$HOME/.hpc-annex/tmp"',
    'staging=$(mktemp -d "$HOME/.hpc-annex/tmp/bundle.XXXXXXXX")',
    // The removal ignores the hang-ups still reaching the group (the back-end's heartbeat sends one), so no rm dies half-way.
    'unstage() { trap "" HUP INT TERM PIPE; rm -rf -- "$staging"; }',
    `trap unstage EXIT`,
    // Whose it is, for the back-ends that sweep what a run killed outright left (sweep_staging).
    `printf '%s %s\\n' "$(uname -n)" "$$" > "$staging/.owner"`,
    // A lost connection or a kill removes it too, before exiting: a second signal caught between
    // an exit and its EXIT trap (the session's HUP and the heartbeat's) ends the shell without that trap.
    `trap 'unstage; exit 129' HUP INT TERM PIPE`,
    PICK_SHA256,
  ]
  if (options.cacheLimit) steps.push(`{ ${cacheEnforceCommand(options.cacheLimit)} || :; }`)
  if (digests.length > 0) {
    const list = digests.map(shellQuote).join(' ')
    steps.push(
      `(cd "${REMOTE_CACHE}" 2>/dev/null || exit 0; for d in ${list}; do if [ -f "$d" ]; then printf '%s %s %s %s\\n' ${shellQuote(CONTROL_MARK)} ${shellQuote(CONTROL.cached)} "$d" "$(stat -c %s -- "$d")"; fi; done)`,
      `printf '%s %s\\n' ${shellQuote(CONTROL_MARK)} ${shellQuote(CONTROL.cacheEnd)}`,
    )
  }
  const ack = options.ackTimeout === undefined ? '' : `HPC_ANNEX_ACK_FD=3 HPC_ANNEX_ACK_TIMEOUT=${Math.max(1, Math.ceil(options.ackTimeout))} `
  steps.push(
    `(cd -- "$staging" && exec ${receiveCommand(1, [FILES_ENTRY, FILLER_ENTRY])})`,
    // The rest of stdin (objects, then the acknowledgement) on fd 3 only, so nothing the back-end runs reads it by chance.
    `HPC_ANNEX_BUNDLE_FD=3 HPC_ANNEX_RECEIVE=${shellQuote(receiveCommand(TAR_RECORD_BYTES / 512))} ${ack}bash "$staging/backend.sh" 3<&0 </dev/null`,
  )
  return steps.join(' && ')
}

/** The value of a `=-.-= CACHED` line: [sha256, bytes], or undefined when it is not one. */
export function parseCachedObject(value: string): [string, number] | undefined {
  const m = /^([0-9a-f]{64}) (\d+)$/.exec(value.trim())
  return m ? [m[1]!, Number(m[2])] : undefined
}
