import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {createReadStream, createWriteStream} from 'node:fs'
import {chmod, mkdir, stat, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {Header, Pack, ReadEntry} from 'tar'

import {userError} from '../errors.js'
import {shellQuote} from '../render/quote.js'
import {SECRET_MODE, type RenderedFile} from './files.js'

/** Secrets travel as bytes or as a local file; either way they are never printed. */
export type SecretSource = Buffer | {path: string}

export interface BundleInputs {
  /** The annex's HTCondor token (becomes the pilots' tokens.d entry). */
  token: SecretSource
  /** The annex password file (becomes the pilots' passwords.d/POOL). */
  password: SecretSource
  /** Container images of queued jobs, staged as sif/<name>. */
  sifs?: {name: string; path: string}[]
  /** A local HTCondor tarball (--condor-tarball), staged as condor/<sha256>. */
  condorTarball?: {path: string; sha256: string}
}

export interface BundleOptions {
  /** A directory every entry is put under (the self-service bundle's top directory). */
  prefix?: string
}

/** One entry as it goes into the tar: what, where and with which mode. */
export interface BundleEntry {
  path: string
  mode: number
  type: 'File' | 'Directory'
  content?: Buffer
  /** A local file streamed into the tar, never read whole. */
  source?: string
}

// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * The name a job's .sif image is staged under. It comes from a job ad (the
 * user's), so it is only ever a tar entry name below sif/, never shell or
 * configuration text; still, anything that is not a plain file name is refused.
 */
export function sifEntryName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || CONTROL.test(name) || Buffer.byteLength(name) > 255) {
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
    entries.push({path: under('sif/'), mode: 0o700, type: 'Directory'})
    const seen = new Set<string>()
    for (const sif of sifs) {
      const name = sifEntryName(sif.name)
      if (seen.has(name)) throw userError(`Two container images would both be staged as '${name}'; rename one.`)
      seen.add(name)
      entries.push({path: under(`sif/${name}`), mode: SECRET_MODE, type: 'File', source: sif.path})
    }
  }
  if (inputs.condorTarball) {
    if (!/^[0-9a-f]{64}$/.test(inputs.condorTarball.sha256)) throw new TypeError('the staged tarball needs a hex sha256')
    entries.push({path: under('condor/'), mode: 0o700, type: 'Directory'})
    entries.push({path: under(`condor/${inputs.condorTarball.sha256}`), mode: SECRET_MODE, type: 'File', source: inputs.condorTarball.path})
  }
  return entries
}

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
  for await (const chunk of createReadStream(entry.source) as AsyncIterable<Buffer>) {
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
  const produce = async () => {
    for (const entry of entries) {
      const size = entry.type === 'Directory' ? 0 : entry.content ? entry.content.length : (await stat(entry.source!)).size
      const header = new Header({path: entry.path, mode: entry.mode, size, type: entry.type, mtime})
      const target = new ReadEntry(header)
      const consumed = target.emittedEnd ? Promise.resolve() : once(target, 'end')
      pack.add(target)
      await feed(entry, target, size)
      // One entry in flight at a time: the next is added once the pack has read this one.
      await consumed
    }
    pack.end()
  }
  const out = Readable.from(pack as AsyncIterable<Buffer>, {objectMode: false})
  produce().catch((error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))))
  return out
}

/** Writes the bundle to a file only the user can read (it holds the token). */
export async function writeBundle(file: string, files: RenderedFile[], inputs: BundleInputs, options: BundleOptions = {}): Promise<void> {
  await mkdir(dirname(file), {recursive: true})
  const sink = createWriteStream(file, {mode: SECRET_MODE})
  await pipeline(bundleStream(files, inputs, options), sink)
  await chmod(file, SECRET_MODE)
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

/** Hex sha256 of a local file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/**
 * The command the login node runs with the bundle on its stdin: unpack into
 * DIR (relative paths are relative to the login home), then run the back-end.
 */
export function bootstrapCommand(remoteDir: string): string {
  const dir = shellQuote(remoteDir)
  return `umask 077 && mkdir -p -- ${dir} && tar -xf - -C ${dir} && exec bash ${shellQuote(`${remoteDir}/backend.sh`)}`
}
