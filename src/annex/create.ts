import {rm, stat} from 'node:fs/promises'
import {basename} from 'node:path'
import {Transform, type Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'

import {Listr, type ListrTaskWrapper} from 'listr2'

import type {Plan} from '../catalog/plan.js'
import {
  annexCollector,
  fetchToken,
  queryJobs,
  readAnnexConfig,
  removeJobs,
  requireAnnexEnabled,
  tokenDomain,
  type AnnexConfig,
  type LoginOverrides,
} from '../condor/index.js'
import {AnnexError, oneLine, systemError, userError} from '../errors.js'
import {BACKEND_FAILURES, type ApContext} from '../render/context.js'
import {classadString, shellQuote} from '../render/quote.js'
import type {Interaction, LoginTarget, Transport} from '../ssh/transport.js'
import type {BundleInputs, RenderedFile} from '../staging/index.js'
import {describeCleanup, CleanupStack} from './cleanup.js'
import {BackendOutputParser, CoalescingWriter} from './control.js'
import {annexQueue, checkRequireJob, editJobsForStagedImages, ensurePasswordFile, findScheddName, findSifImages, nameRule, revertImageEdits, type SifImage} from './preflight.js'
import {StallWatchdog} from './stall.js'
import type {ControlAttribute, RequestJob} from './state-job.js'
import {currentUser} from './user.js'

export type CreateVerb = 'create' | 'add'

/** How the task list is shown: live on a terminal, plain lines in logs, nothing under --json. */
export type CreateOutput = 'tty' | 'plain' | 'silent'

export interface CreateRequest {
  verb: CreateVerb
  plan: Plan
  /** Opens the one login (answering 2FA through the interaction); not called for --bundle. */
  transport: () => Transport
  interaction: Interaction
  /** An ssh_config file to resolve the login host with (HPC_ANNEX_SSH_CONFIG). */
  sshConfigFile?: string
  /** --condor-tarball; its sha256 may still be computing, and is awaited only where the bundle needs it. */
  condorTarball?: {path: string; sha256: string | Promise<string>}
  allowUnpinnedDownload?: boolean
  /** Seconds a remote step may make no progress before it fails. */
  stallTimeout: number
  /** Aborted on Ctrl-C: every step stops and what was made is undone. */
  signal: AbortSignal
  output: CreateOutput
  /** --bundle FILE: write a self-service bundle instead of logging in. */
  bundleFile?: string
}

export interface CreateResult {
  verb: CreateVerb
  annexName: string
  system: string
  queue: string
  nodes: number
  lifetime: number
  requestId: string
  stateJobId: string
  batchJobId?: string
  pilotDir?: string
  loginHost?: string
  /** Container images of the annex's jobs; `sent` false when the login node had them cached. */
  images: {name: string; sha256: string; bytes: number; sent: boolean}[]
  /** Bundle bytes sent over the connection. */
  bytesSent: number
  /** Commands run on the login node after the login (a create needs one). */
  remoteCommands: number
  /** What the back-end warned about (e.g. an annex collector the login node cannot reach); the request went ahead. */
  warnings: string[]
  /** --bundle: the file written. */
  bundleFile?: string
}

/**
 * Templates (Handlebars), tar and the state job's code, needed only after the
 * checks: they load once the login has started, while the Access Point answers.
 */
function later(work: Work) {
  work.later ??= Promise.all([import('../staging/index.js'), import('./state-job.js')]).then(([staging, stateJob]) => ({staging, stateJob}))
  return work.later
}

/** Runs one titled step of the task list. */
type RunStep = (title: string, body: (task: ListrTaskWrapper<unknown, never, never>) => Promise<void>) => Promise<void>

/** What the steps share as they go. */
interface Work {
  later?: Promise<{staging: typeof import('../staging/index.js'); stateJob: typeof import('./state-job.js')}>
  config?: AnnexConfig
  collector?: string
  scheddName?: string
  sifs: SifImage[]
  images: {name: string; sha256: string; path: string; bytes: number}[]
  /** The --condor-tarball, checksummed. */
  tarball?: {path: string; sha256: string; bytes: number}
  token?: BundleInputs['token']
  password?: BundleInputs['password']
  target?: LoginTarget
  transport?: Transport
  cached: Map<string, number>
  request?: RequestJob
  control: Partial<Record<ControlAttribute, string>>
  bytesSent: number
  remoteCommands: number
  warnings: string[]
  removeToken?: () => void
}

const MiB = 1024 * 1024

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 1 : 0)} MiB`
}

function message(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error))
}

/**
 * create and add: the checks on the Access Point (the one login starts
 * beside them), the token, the state job, the one channel that answers the
 * cache question, stages and submits, and the job edits. Every step
 * registers its undo before it makes anything; a failure or Ctrl-C unwinds
 * them and the error says which step failed and what was undone.
 */
export async function createAnnex(request: CreateRequest): Promise<CreateResult> {
  const {plan} = request
  const cleanup = new CleanupStack()
  // condor_config_val first: while it runs, the SSH code loads.
  const configuring = readAnnexConfig(plan.system.key)
  configuring.catch(() => undefined)
  const work: Work = {sifs: [], images: [], cached: new Map(), control: {}, bytesSent: 0, remoteCommands: 0, warnings: []}
  if (request.bundleFile === undefined) {
    work.transport = request.transport()
    // The machine file's login target, unless the configuration overrides it.
    work.transport.expect?.(loginTarget(request))
  }
  let step = 'Checking the Access Point'
  // What runs beside the login; it must be finished before its undos run.
  let background: Promise<unknown> = Promise.resolve()
  // The login starts as soon as its target is known and runs beside the
  // remaining checks; its questions (2FA, an unknown host key) wait for
  // them, so a request the checks refuse asks nothing and is logged out.
  let login: {connecting: Promise<void>; held: HeldInteraction} | undefined
  const run: RunStep = async (title, body) => {
    step = title
    request.signal.throwIfAborted()
    await new Listr([{title, task: async (_ctx, task) => body(task as never)}], {
      renderer: request.output === 'tty' ? 'default' : request.output === 'plain' ? 'simple' : 'silent',
      fallbackRenderer: 'simple',
      registerSignalListeners: false,
      exitOnError: true,
      rendererOptions: {collapseErrors: true},
    }).run()
    request.signal.throwIfAborted()
  }

  try {
    await run('Checking the Access Point', async (task) => {
      const config = await configuring
      requireAnnexEnabled(config)
      work.config = config
      work.collector = annexCollector(config, plan.pool)
      work.target = loginTarget(request, config.loginOverrides)
      if (work.transport) login = startLogin(request, work, cleanup)
      later(work).catch(() => undefined)
      // Independent questions, asked at once.
      const [queue, scheddName] = await Promise.all([annexQueue(plan.annexName), findScheddName(work.collector)])
      nameRule(request.verb, plan.annexName, queue.nameTaken)
      checkRequireJob(config.requireJob, plan.annexName, queue.jobs)
      work.scheddName = scheddName
      work.sifs = findSifImages(queue.jobs)
      const passwordFile = plan.passwordFile ?? config.passwordFile
      ensurePasswordFile(passwordFile)
      work.password = {path: passwordFile}
      task.title = `Checked the Access Point: annex collector ${work.collector}, schedd ${work.scheddName}`
    })

    // The token and the state job are made while the login (and its 2FA) happens.
    const tokenStep = 'Minting the annex token'
    const stateStep = `Submitting the state job for ${plan.annexName}`
    const digests = [
      ...(work.sifs.length > 0 ? [`${work.sifs.length} container image(s)`] : []),
      ...(request.condorTarball ? ['the HTCondor tarball'] : []),
    ]
    const digestStep = `Checksumming ${digests.join(' and ')}`
    const digesting = Promise.all([digestImages(work), checksummedTarball(request)]).then(([images, tarball]) => {
      work.images = images
      if (tarball) work.tarball = tarball
    })
    const minting = mintToken(request, work, cleanup)
    const submitting = submitRequestJob(request, work, cleanup, () => step)
    background = Promise.allSettled([digesting, minting, submitting])
    const settle = async (title: string, promise: Promise<void>) => {
      await run(title, async (task) => {
        await promise
        if (title === stateStep) task.title = `Submitted the state job ${work.request!.jobId} (request ${work.request!.requestId})`
      })
    }

    if (request.bundleFile !== undefined) {
      if (digests.length > 0) await settle(digestStep, digesting)
      await settle(tokenStep, minting)
      await settle(stateStep, submitting)
      return await selfService(request, work, cleanup, run)
    }

    // The bundle is rendered while the login is still under way; failures above are reported by their own steps.
    const preparing = Promise.all([digesting, minting, submitting]).then(() => prepareStaging(request, work))
    preparing.catch(() => undefined)

    step = `Logging in to ${work.target!.host}`
    login!.held.open()
    await abortable(login!.connecting, request.signal)
    if (digests.length > 0) await settle(digestStep, digesting)
    await settle(tokenStep, minting)
    await settle(stateStep, submitting)

    await pointJobsAtImages(work, cleanup, run)

    await run(`Staging and submitting the ${plan.system.batch === 'slurm' ? 'SLURM' : 'HTCondor'} job on ${work.target!.host}`, async (task) => {
      await stageAndSubmit(request, work, cleanup, await preparing, (text) => (task.output = text))
      task.title = `Submitted batch job ${work.control.JOB_ID} on ${work.target!.host}`
    })
  } catch (error) {
    login?.held.refuse(error)
    await background
    const report = await cleanup.unwind()
    const undone = describeCleanup(report)
    const interrupted = request.signal.aborted
    const reason = interrupted ? 'interrupted' : message(error)
    const text = `${step} failed: ${reason}${undone ? ` (${undone})` : ''}`
    if (interrupted) throw new AnnexError(text, {exit: 130, cause: error})
    throw new AnnexError(text, {exit: error instanceof AnnexError ? error.exitCode : 2, cause: error, ...(error instanceof AnnexError && error.hint ? {hint: error.hint} : {})})
  }

  // Success: nothing to undo; the connection closes and the local token goes.
  cleanup.dismiss()
  await work.transport?.close()
  work.removeToken?.()
  return result(request, work)
}

/** Where to log in: the flags, else the configuration's overrides, else the machine file. */
function loginTarget(request: CreateRequest, overrides: LoginOverrides = {}): LoginTarget {
  const {login} = request.plan
  const host = login.hostFromFlag ? login.host : (overrides.host ?? login.host)
  const user = login.user ?? overrides.user
  return {host, ...(user === undefined ? {} : {user}), ...(request.sshConfigFile === undefined ? {} : {configFile: request.sshConfigFile})}
}

/** An Interaction whose questions and messages wait until open(); refuse() turns the questions down. */
interface HeldInteraction {
  interaction: Interaction
  open(): void
  refuse(reason: unknown): void
}

function holdInteraction(inner: Interaction): HeldInteraction {
  let release!: () => void
  let refuse!: (reason: unknown) => void
  const gate = new Promise<void>((resolve, reject) => {
    release = resolve
    refuse = reject
  })
  gate.catch(() => undefined)
  let opened = false
  const waiting: string[] = []
  return {
    interaction: {
      answer: async (prompts, instructions, name) => {
        await gate
        return inner.answer(prompts, instructions, name)
      },
      progress: (text) => {
        if (opened) inner.progress?.(text)
        else waiting.push(text)
      },
      ...(inner.interactive === undefined ? {} : {interactive: inner.interactive}),
    },
    open: () => {
      opened = true
      for (const text of waiting.splice(0)) inner.progress?.(text)
      release()
    },
    refuse: (reason) => refuse(reason),
  }
}

/** Opens the one connection, its undo registered first; the login's questions are held until the checks pass. */
function startLogin(request: CreateRequest, work: Work, cleanup: CleanupStack): {connecting: Promise<void>; held: HeldInteraction} {
  const target = work.target!
  const held = holdInteraction(request.interaction)
  const transport = work.transport!
  cleanup.register(`closed the connection to ${target.host}`, () => transport.close())
  held.interaction.progress?.(`Logging in to ${target.user ? `${target.user}@` : ''}${target.host} ...`)
  const connecting = transport.connect(target, held.interaction)
  // Awaited once the checks pass; a failure before then is reported by the checks' own error.
  connecting.catch(() => undefined)
  return {connecting, held}
}

/** The annex token: --token_file, or a fresh one whose local copy is deleted when the command ends. */
async function mintToken(request: CreateRequest, work: Work, cleanup: CleanupStack): Promise<void> {
  const {plan} = request
  if (plan.tokenFile !== undefined) {
    await readablePrivateFile(plan.tokenFile)
    work.token = {path: plan.tokenFile}
    return
  }
  const config = work.config!
  const token = await fetchToken({
    type: plan.annexName,
    user: currentUser(),
    domain: tokenDomain(config),
    keyName: config.tokenKeyName,
    lifetime: config.tokenLifetime,
    directory: config.tokenDirectory,
    timeout: config.timeouts.tokenFetch,
  })
  // The pilots get their copy through the bundle; the local file never outlives this command.
  work.removeToken = () => token.remove()
  cleanup.register('deleted the local token', async () => token.remove())
  work.token = {path: token.path}
}

/** The state job, with its undo registered first (it finds the job even if condor_submit was cut short). */
async function submitRequestJob(request: CreateRequest, work: Work, cleanup: CleanupStack, failedStep: () => string): Promise<void> {
  const {plan} = request
  const since = Math.floor(Date.now() / 1000) - 1
  cleanup.register('removed the state job', async () => {
    const reason = `hpc-annex ${request.verb} failed at: ${failedStep()}`
    if (work.request) return removeJobs(work.request.jobId, reason)
    const strays = await queryJobs({
      constraint: `hpc_annex_name == ${classadString(plan.annexName)} && QDate >= ${since} && hpc_annex_JOB_ID =?= undefined`,
      attributes: ['ClusterId', 'ProcId'],
    })
    for (const job of strays) await removeJobs(`${String(job.ClusterId)}.${String(job.ProcId)}`, reason)
  })
  const {stateJob} = await later(work)
  work.request = await stateJob.submitStateJob(plan, {collector: work.collector!, login: work.target!})
}

function result(request: CreateRequest, work: Work, extra: Partial<CreateResult> = {}): CreateResult {
  const {plan} = request
  return {
    verb: request.verb,
    annexName: plan.annexName,
    system: plan.system.key,
    queue: plan.queue.name,
    nodes: plan.nodes,
    lifetime: plan.lifetime,
    requestId: work.request!.requestId,
    stateJobId: work.request!.jobId,
    ...(work.control.JOB_ID === undefined ? {} : {batchJobId: work.control.JOB_ID}),
    ...(work.control.PILOT_DIR === undefined ? {} : {pilotDir: work.control.PILOT_DIR}),
    ...(work.target === undefined || request.bundleFile !== undefined ? {} : {loginHost: work.target.host}),
    images: work.images.map((i) => ({name: i.name, sha256: i.sha256, bytes: i.bytes, sent: !work.cached.has(i.sha256)})),
    bytesSent: work.bytesSent,
    remoteCommands: work.remoteCommands,
    warnings: work.warnings,
    ...extra,
  }
}

/** The --condor-tarball with its sha256 (computing since the command started) and size. */
async function checksummedTarball(request: CreateRequest): Promise<Work['tarball']> {
  if (!request.condorTarball) return undefined
  const {path} = request.condorTarball
  const [sha256, info] = await Promise.all([request.condorTarball.sha256, stat(path)])
  return {path, sha256, bytes: info.size}
}

/** The sha256 of each distinct image file (jobs often share one), named as the jobs will see it. */
async function digestImages(work: Work): Promise<Work['images']> {
  const {sifs} = work
  if (sifs.length === 0) return []
  const {sha256File, sifEntryName} = (await later(work)).staging
  const byPath = new Map<string, Work['images'][number]>()
  const names = new Map<string, string>()
  for (const sif of sifs) {
    const name = sifEntryName(sif.basename)
    if (!byPath.has(sif.path)) {
      const bytes = (await stat(sif.path)).size
      byPath.set(sif.path, {name, sha256: await sha256File(sif.path), path: sif.path, bytes})
    }
    const earlier = names.get(name)
    if (earlier !== undefined && earlier !== sif.path) {
      throw userError(`Two different container images are both named '${name}' (${earlier} and ${sif.path}); rename one.`)
    }
    names.set(name, sif.path)
  }
  return [...byPath.values()]
}

/** A --token_file must exist, be readable, and be the user's secret. */
async function readablePrivateFile(path: string): Promise<void> {
  let mode: number
  try {
    mode = (await stat(path)).mode
  } catch (error) {
    throw userError(`Cannot read the token file '${path}' (${message(error)}); change --token_file.`)
  }
  if ((mode & 0o077) !== 0) throw userError(`The token file '${path}' is readable by others; run chmod 600 on it.`)
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  return lines.at(-1) ?? ''
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

async function remote(work: Work, command: string, signal: AbortSignal, options: Parameters<Transport['exec']>[1] = {}) {
  work.remoteCommands += 1
  return work.transport!.exec(command, {signal, ...options})
}

/** What the Access Point adds to the Plan for rendering, once the state job exists. */
function apContext(request: CreateRequest, work: Work): ApContext {
  return {
    requestId: work.request!.requestId,
    collector: work.collector!,
    scheddName: work.scheddName!,
    images: work.images.map((i) => ({name: i.name, sha256: i.sha256})),
    ...(work.tarball ? {stagedTarballSha256: work.tarball.sha256, stagedTarballName: basename(work.tarball.path)} : {}),
    ...(request.allowUnpinnedDownload ? {allowUnpinnedDownload: true} : {}),
  }
}

/** The command that cancels this request's batch job on the login node. */
function cancelCommand(plan: Plan, jobId: string): string {
  return plan.system.batch === 'slurm' ? `scancel -- ${shellQuote(jobId)}` : `condor_rm ${shellQuote(jobId)}`
}

/** What the one channel sends: the rendered files, the secrets, and the objects the login node may have cached. */
interface Staging {
  files: RenderedFile[]
  inputs: BundleInputs
  /** sha256 → size here, of each image and tarball; the back-end says which it has, first, on the same channel. */
  objects: Map<string, number>
}

/** Renders the bundle once the state job exists (its id is in the files); needs no connection. */
async function prepareStaging(request: CreateRequest, work: Work): Promise<Staging> {
  const {renderFiles} = (await later(work)).staging
  const inputs: BundleInputs = {
    token: work.token!,
    password: work.password!,
    sifs: work.images.map((i) => ({sha256: i.sha256, path: i.path})),
    ...(work.tarball ? {condorTarball: {path: work.tarball.path, sha256: work.tarball.sha256}} : {}),
  }
  const objects = new Map(work.images.map((i) => [i.sha256, i.bytes] as const))
  if (work.tarball) objects.set(work.tarball.sha256, work.tarball.bytes)
  return {files: renderFiles(request.plan, apContext(request, work)), inputs, objects}
}

/**
 * The one channel that matters: the bundle (only what the login node lacks)
 * streams in as the back-end's stdin; its control lines go to the state job
 * as they arrive, its progress lines to the task list.
 */
async function stageAndSubmit(request: CreateRequest, work: Work, cleanup: CleanupStack, staging: Staging, progress: (text: string) => void): Promise<void> {
  const {plan} = request
  const {files, inputs, objects} = staging
  const {staging: {bootstrapCommand, bundleStream, parseCachedObject}, stateJob: {recordControlValues}} = await later(work)
  const offered = new Map<string, number>()
  let answer!: (cached: Map<string, number>) => void
  const cached = new Promise<Map<string, number>>((resolve) => (answer = resolve))
  let bulk = 0
  const cacheAnswered = () => {
    for (const [digest, size] of offered) if (objects.get(digest) === size) work.cached.set(digest, size)
    bulk = [...objects].reduce((sum, [digest, size]) => sum + (work.cached.has(digest) ? 0 : size), 0)
    if (objects.size > 0) progress(`The login node has ${work.cached.size} of ${objects.size} objects cached`)
    answer(work.cached)
  }
  if (objects.size === 0) cacheAnswered()

  // Registered before the back-end can submit anything.
  cleanup.register('cancelled the batch job', async () => {
    const jobId = work.control.JOB_ID
    if (jobId === undefined) return false
    const result = await work.transport!.exec(cancelCommand(plan, jobId))
    if (result.code !== 0) throw new Error(`${cancelCommand(plan, jobId)} exited with status ${result.code}: ${lastLine(result.stderr)}`)
  })

  const watchdog = new StallWatchdog(`Staging on ${work.target!.host}`, request.stallTimeout * 1000)
  const local = new AbortController()
  const signal = AbortSignal.any([request.signal, watchdog.signal, local.signal])
  let lastShown = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      work.bytesSent += chunk.length
      watchdog.progress()
      const now = Date.now()
      if (bulk > MiB && now - lastShown > (request.output === 'tty' ? 200 : 10_000)) {
        lastShown = now
        progress(`Sent ${mib(Math.min(work.bytesSent, bulk))} of ${mib(bulk)}`)
      }
      callback(null, chunk)
    },
  })
  const bundle: Readable = bundleStream(files, inputs, {cached})
  bundle.on('error', (error) => local.abort(systemError(`Cannot read what is to be staged: ${message(error)}`)))
  bundle.pipe(counter)

  const parser = new BackendOutputParser()
  const decoder = new StringDecoder('utf8')
  // The state job always shows the latest values; what arrives during a condor_qedit goes in the next.
  const recorder = new CoalescingWriter<ControlAttribute>((values) => recordControlValues(work.request!, values))
  const handle = (events: ReturnType<BackendOutputParser['push']>) => {
    for (const event of events) {
      if (event.kind === 'progress') progress(event.text)
      else if (event.kind === 'control' && event.attribute === 'CACHED') {
        const object = parseCachedObject(event.value)
        if (object) offered.set(...object)
      } else if (event.kind === 'control' && event.attribute === 'CACHE_END') cacheAnswered()
      else if (event.kind === 'control' && event.attribute === 'WARNING') work.warnings.push(event.value)
      else if (event.kind === 'control' && ['PID', 'PILOT_DIR', 'JOB_ID'].includes(event.attribute)) {
        const attribute = event.attribute as ControlAttribute
        work.control[attribute] = event.value
        recorder.set(attribute, event.value)
      } else if (event.kind === 'output') progress(event.line)
    }
  }
  let stderr = ''
  let result
  try {
    result = await remote(work, bootstrapCommand([...objects.keys()], {unpackTarball: plan.system.batch === 'slurm'}), signal, {
      stdin: counter,
      collect: false,
      onStdout: (chunk) => {
        watchdog.progress()
        handle(parser.push(decoder.write(chunk)))
      },
      onStderr: (chunk) => {
        watchdog.progress()
        stderr = (stderr + chunk.toString('utf8')).slice(-4000)
      },
    })
  } catch (error) {
    throw signal.aborted && !request.signal.aborted ? signal.reason : error
  } finally {
    // A back-end that ended before answering leaves nothing to wait for.
    answer(work.cached)
    watchdog.stop()
    bundle.unpipe(counter)
    bundle.destroy()
  }
  handle(parser.push(decoder.end()))
  handle(parser.end())
  await recorder.flush()
  if (result.code !== 0) {
    const what = result.code === null ? `was killed (${result.signal ?? 'signal'})` : (BACKEND_FAILURES[result.code] ?? `exited with status ${result.code}`)
    const detail = lastLine(stderr).replace(/^hpc-annex back-end: /, '')
    throw systemError(`${what}${detail ? `: ${detail}` : ''}`)
  }
  if (recorder.error !== undefined) throw recorder.error
  if (work.control.JOB_ID === undefined) throw systemError('the back-end finished but reported no batch job id')
}

/**
 * Points the annex's jobs at their staged images before any pilot can start
 * (a pilot may match a job at once), with an undo that puts back what it changed.
 */
async function pointJobsAtImages(work: Work, cleanup: CleanupStack, run: RunStep): Promise<void> {
  if (work.sifs.length === 0) return
  const applied: SifImage[] = []
  cleanup.register("restored the jobs' container images", async () => {
    if (applied.length === 0) return false
    await revertImageEdits(applied)
  })
  await run(`Pointing ${work.sifs.length} job(s) at their staged images`, () => editJobsForStagedImages(work.sifs, applied))
}

/** --bundle: everything a create sends, written to a file the user carries to the login node. */
async function selfService(
  request: CreateRequest,
  work: Work,
  cleanup: CleanupStack,
  run: RunStep,
): Promise<CreateResult> {
  const {plan} = request
  const file = request.bundleFile!
  const {renderFiles, writeBundle} = (await later(work)).staging
  await run(`Writing the self-service bundle ${file}`, async () => {
    const ap = apContext(request, work)
    cleanup.register(`removed ${file}`, () => rm(file, {force: true}))
    await writeBundle(file, renderFiles(plan, ap, {setup: true}), {
      token: work.token!,
      password: work.password!,
      sifs: work.images.map((i) => ({sha256: i.sha256, path: i.path})),
      ...(work.tarball ? {condorTarball: {path: work.tarball.path, sha256: work.tarball.sha256}} : {}),
    }, {prefix: `hpc-annex-${plan.annexName}`})
  })
  await pointJobsAtImages(work, cleanup, run)
  // The bundle is the result; the local token copy goes.
  cleanup.dismiss()
  work.removeToken?.()
  return result(request, work, {bundleFile: file})
}
