import {PassThrough, Transform, type Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'

import {describeSubmitEstimate, parseEstimateControl, type SubmitEstimate} from '../batch/slurm-live.js'
import type {Plan} from '../catalog/plan.js'
import {lastLine, oneLine, systemError} from '../errors.js'
import type {Transport} from '../ssh/transport.js'
import {trace, traced, tracing} from '../trace.js'
import {bootstrapCommand, bundleStream, parseCachedObject, type BundleInputs} from './bundle.js'
import type {CacheLimit} from './cache.js'
import type {RenderedFile} from './files.js'
import {BACKEND_EXIT, BACKEND_FAILURES, BackendOutputParser, CONTROL, JOB_ID_RECORDED, RECORDED_CONTROLS, TAR_RECORD_BYTES, type RecordedControl} from './protocol.js'
import {StallWatchdog} from './stall.js'

/** What the one channel sends: the rendered files, the secrets, and the objects the login node may have cached. */
export interface BackendInputs {
  files: RenderedFile[]
  inputs: BundleInputs
  /** sha256 → size here, of each image and tarball; the back-end says which it has, first, on the same channel. */
  objects: Map<string, number>
}

export interface BackendOptions {
  /** Aborts the run (Ctrl-C). */
  signal: AbortSignal
  /** Seconds the run may make no progress (no byte sent, no line read) before it fails. */
  stallTimeout: number
  /** The login node, for messages. */
  host: string
  /** Progress for the user: the back-end's steps, bytes sent. */
  onProgress(text: string): void
  /** Milliseconds between "Sent x of y" lines. */
  progressEvery: number
  /**
   * A control value the state job records, as it arrives. For the batch job's
   * id it returns a promise that settles once the state job holds it: then the
   * back-end is told (JOB_ID_RECORDED) and keeps the job; if it rejects, or
   * never settles, the back-end cancels the job itself.
   */
  onControl(name: RecordedControl, value: string): void | Promise<void>
  /** The back-end, failing, cancelled the job it reported and removed its pilot directory: nothing of it is left to undo. */
  onWithdrawn?(): void
}

export interface BackendResult {
  jobId: string
  pilotDir?: string
  /** Objects the login node had (sha256 → size): they were not sent. */
  cached: Map<string, number>
  bytesSent: number
  /** What the back-end warned about (not failures). */
  warnings: string[]
  /** What it did on the user's behalf that they should know of (it swept what killed runs left). */
  notices: string[]
  /** SLURM's answer to sbatch --test-only with the script, just before it was submitted (SLURM only). */
  estimate?: SubmitEstimate
}

const MiB = 1024 * 1024

/** What the request brings to the login node's cache: the objects it may send, and the machine file's pinned tarballs (a download's size is not known). */
function cacheLimit(plan: Plan, objects: Map<string, number>): CacheLimit {
  const all = new Map(objects)
  for (const tarball of plan.htcondor.tarballs) if (tarball.sha256 !== undefined && !all.has(tarball.sha256)) all.set(tarball.sha256, 0)
  return {maxBytes: plan.system.cacheMaxBytes!, system: plan.system.key, objects: all}
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`
}

/**
 * The one exec channel of a create: the bundle (only what the login node
 * lacks) streams in as the back-end's stdin, while its stdout answers the
 * cache question and reports control values and progress. Its failures are
 * one-line errors: the exit code's meaning, then its last words on stderr.
 */
export async function runBackend(transport: Transport, plan: Plan, staging: BackendInputs, options: BackendOptions): Promise<BackendResult> {
  const {files, inputs, objects} = staging
  const cached = new Map<string, number>()
  const offered = new Map<string, number>()
  const warnings: string[] = []
  const notices: string[] = []
  let estimate: SubmitEstimate | undefined
  const control: Partial<Record<RecordedControl, string>> = {}
  let bytesSent = 0
  let answer!: (cached: Map<string, number>) => void
  const answered = new Promise<Map<string, number>>((resolve) => (answer = resolve))
  let bulk = 0
  const cacheAnswered = () => {
    for (const [digest, size] of offered) if (objects.get(digest) === size) cached.set(digest, size)
    bulk = [...objects].reduce((sum, [digest, size]) => sum + (cached.has(digest) ? 0 : size), 0)
    if (objects.size > 0) options.onProgress(`The login node has ${cached.size} of ${objects.size} objects cached`)
    answer(cached)
  }
  if (objects.size === 0) cacheAnswered()

  const watchdog = new StallWatchdog(`Staging on ${options.host}`, options.stallTimeout * 1000)
  const local = new AbortController()
  const signal = AbortSignal.any([options.signal, watchdog.signal, local.signal])
  let lastShown = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytesSent += chunk.length
      watchdog.progress()
      const now = Date.now()
      if (bulk > MiB && now - lastShown > options.progressEvery) {
        lastShown = now
        options.onProgress(`Sent ${mib(Math.min(bytesSent, bulk))} of ${mib(bulk)}`)
      }
      callback(null, chunk)
    },
  })
  const bundle: Readable = bundleStream(files, inputs, {cached: answered, filesAsOneEntry: true})
  bundle.on('error', (error) => local.abort(systemError(`Cannot read what is to be staged: ${oneLine(error.message)}`)))
  // The remote stdin: the bundle, padded to whole tar records, then (once the
  // state job holds the job id) JOB_ID_RECORDED, then its end.
  const stdin = new PassThrough()
  // The back-end may report the job id while objects still arrive: the answer follows the bundle's end.
  const bundleSent = new Promise<void>((resolve) =>
    counter.on('end', () => {
      trace(`bundle sent: ${bytesSent} bytes`)
      const padding = (TAR_RECORD_BYTES - (bytesSent % TAR_RECORD_BYTES)) % TAR_RECORD_BYTES
      if (!stdin.writableEnded) stdin.write(Buffer.alloc(padding))
      resolve()
    }),
  )
  bundle.pipe(counter).pipe(stdin, {end: false})
  // Why the job id was not recorded, when recording it failed.
  let unrecorded: unknown
  const confirm = (recorded: void | Promise<void>) => {
    void Promise.allSettled([recorded, bundleSent]).then(([record]) => {
      if (record.status === 'rejected') unrecorded = record.reason
      if (!stdin.writableEnded) stdin.end(record.status === 'fulfilled' ? `${JOB_ID_RECORDED}\n` : undefined)
    })
  }

  const parser = new BackendOutputParser()
  const decoder = new StringDecoder('utf8')
  const recorded = new Set<string>(RECORDED_CONTROLS)
  let withdrawn = false
  const handle = (events: ReturnType<BackendOutputParser['push']>) => {
    for (const event of events) {
      if (tracing()) trace(`back-end: ${event.kind === 'progress' ? event.text : event.kind === 'output' ? event.line : `${event.attribute} ${event.value}`}`)
      if (event.kind === 'progress' || event.kind === 'output') options.onProgress(event.kind === 'progress' ? event.text : event.line)
      else if (event.attribute === CONTROL.cached) {
        const object = parseCachedObject(event.value)
        if (object) offered.set(...object)
      } else if (event.attribute === CONTROL.cacheEnd) cacheAnswered()
      else if (event.attribute === CONTROL.warning) warnings.push(event.value)
      else if (event.attribute === CONTROL.estimate) {
        estimate = parseEstimateControl(event.value)
        if (estimate) options.onProgress(describeSubmitEstimate(estimate, plan.nodes))
      } else if (event.attribute === CONTROL.notice) {
        notices.push(event.value)
        options.onProgress(event.value)
      }
      // A heartbeat only keeps the watchdog from firing: any output does (see onStdout).
      else if (event.attribute === CONTROL.heartbeat) continue
      else if (event.attribute === CONTROL.withdrawn) withdrawn = true
      else if (recorded.has(event.attribute)) {
        const name = event.attribute as RecordedControl
        control[name] = event.value
        const recorded = options.onControl(name, event.value)
        if (name === CONTROL.jobId) confirm(recorded)
      }
    }
  }
  let stderr = ''
  let result
  try {
    const command = bootstrapCommand([...objects.keys()], {
      ...(plan.system.cacheMaxBytes === undefined ? {} : {cacheLimit: cacheLimit(plan, objects)}),
      ackTimeout: options.stallTimeout,
    })
    result = await traced('back-end session', transport.exec(command, {
      signal,
      stdin,
      collect: false,
      onStdout: (chunk) => {
        watchdog.progress()
        handle(parser.push(decoder.write(chunk)))
      },
      onStderr: (chunk) => {
        watchdog.progress()
        stderr = (stderr + chunk.toString('utf8')).slice(-4000)
      },
    }))
  } catch (error) {
    throw signal.aborted && !options.signal.aborted ? signal.reason : error
  } finally {
    // A back-end that ended before answering leaves nothing to wait for.
    answer(cached)
    watchdog.stop()
    bundle.unpipe(counter)
    bundle.destroy()
    if (!stdin.writableEnded) stdin.end()
  }
  handle(parser.push(decoder.end()))
  handle(parser.end())
  const jobId = control[CONTROL.jobId]
  if (result.code !== 0 && withdrawn) {
    options.onWithdrawn?.()
    // The cause is the record's failure; the back-end undid what it made.
    if (result.code === BACKEND_EXIT.unconfirmed && unrecorded !== undefined) {
      const why = unrecorded instanceof Error ? unrecorded.message : String(unrecorded)
      throw systemError(`${oneLine(why)}; so the back-end cancelled batch job ${jobId ?? '?'} and removed its pilot directory on ${options.host}`, {cause: unrecorded})
    }
  }
  if (result.code !== 0) {
    const what = result.code === null ? `was killed (${result.signal ?? 'signal'})` : (BACKEND_FAILURES[result.code] ?? `exited with status ${result.code}`)
    const detail = lastLine(stderr).replace(/^hpc-annex back-end: /, '')
    const withdrew = withdrawn && jobId !== undefined ? `; the back-end cancelled batch job ${jobId}` : ''
    throw systemError(`${what}${detail ? `: ${detail}` : ''}${withdrew}`)
  }
  if (jobId === undefined) throw systemError('the back-end finished but reported no batch job id')
  return {jobId, ...(control[CONTROL.pilotDir] === undefined ? {} : {pilotDir: control[CONTROL.pilotDir]}), cached, bytesSent, warnings, notices, ...(estimate === undefined ? {} : {estimate})}
}
