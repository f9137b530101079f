import {rm, stat} from 'node:fs/promises'
import {basename} from 'node:path'

import {Listr, type ListrTaskWrapper} from '../vendor/listr2.js'

import {checkUrlBase, parsePins, resolveDownload, TARBALL_URL_BASE_KNOB} from '../catalog/index.js'
import type {Plan, PlanHTCondor} from '../catalog/plan.js'
import {
  accessPointVersion,
  annexCollector,
  editJobs,
  fetchToken,
  queryJobs,
  readAnnexConfig,
  removeJobs,
  requireAnnexEnabled,
  tokenDomain,
  type AnnexConfig,
  type LoginOverrides,
} from '../condor/index.js'
import type {BackendInputs, BackendResult, BundleInputs} from '../backend/index.js'
import {CoalescingWriter, type RecordedControl} from '../backend/protocol.js'
import {removePilotDirLines} from '../backend/pilot-dir.js'
import {batchSystem} from '../batch/index.js'
import type {SubmitEstimate} from '../batch/slurm-live.js'
import {AnnexError, lastLine, oneLine, userError} from '../errors.js'
import type {ApContext} from '../render/context.js'
import {classadString} from '../quote.js'
import type {Interaction, LoginTarget, Transport} from '../ssh/transport.js'
import {describeCleanup, CleanupStack} from './cleanup.js'
import {thisRun} from './creator.js'
import {sweepOrphanedRequests} from './orphans.js'
import {loginTarget} from './login-target.js'
import {listrOptions, type ProgressOutput} from './progress.js'
import {annexQueue, checkRequireJob, editJobsForStagedImages, ensurePasswordFile, findScheddName, findSifImages, nameRule, revertImageEdits, type SifImage} from './preflight.js'
import type {RequestJob} from './state-job.js'
import {currentUser} from './user.js'
import {trace, traced} from '../trace.js'

export type CreateVerb = 'create' | 'add'

/** How the task list is shown: live on a terminal, plain lines (on stderr) in logs, nothing under --json. */
export type CreateOutput = ProgressOutput

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
  /** What was done on the user's behalf that they should know of (what killed runs had left was swept). */
  notices: string[]
  /** --bundle: the file written. */
  bundleFile?: string
  /** SLURM's start estimate, asked just before the batch job was submitted. */
  estimate?: SubmitEstimate
  /** The pilots' HTCondor as resolved on the Access Point. */
  htcondor: PlanHTCondor
  /** --condor-tarball: its file name. */
  stagedTarball?: string
}


/**
 * Templates (Handlebars), tar, the back-end's protocol and the state job's
 * code, needed only after the checks: they load once the login has started,
 * while the Access Point answers.
 */
type Later = {backend: typeof import('../backend/index.js'); stateJob: typeof import('./state-job.js')}
let loading: Promise<Later> | undefined
function later(): Promise<Later> {
  loading ??= Promise.all([import('../backend/index.js'), import('./state-job.js')]).then(([backend, stateJob]) => ({backend, stateJob}))
  return loading
}

/** Runs one titled step of the task list and returns what its body returns. */
type RunStep = <T>(title: string, body: (task: ListrTaskWrapper<unknown, never, never>) => Promise<T>) => Promise<T>

/** What the Access Point's checks found. */
interface Checked {
  config: AnnexConfig
  collector: string
  scheddName: string
  target: LoginTarget
  sifs: SifImage[]
  password: {path: string}
  /** The pilots' HTCondor, its version and download resolved (not used with --condor-tarball). */
  htcondor: PlanHTCondor
}

type Image = {name: string; sha256: string; path: string; bytes: number}
type Tarball = {path: string; sha256: string; bytes: number}

/** The secrets the pilots get, and the local token's removal (none for --token_file). */
interface Secrets {
  token: BundleInputs['token']
  removeLocalToken?: () => void
}

function message(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error))
}

/**
 * create and add: the checks on the Access Point (the one login starts
 * beside them), the token, the state job, the job edits, and the one channel
 * that answers the cache question, stages and submits. Every step registers
 * its undo before it makes anything; a failure or Ctrl-C unwinds them and the
 * error says which step failed and what was undone.
 */
export async function createAnnex(input: CreateRequest): Promise<CreateResult> {
  // Its plan gains the pilots' HTCondor release once the Access Point has been asked.
  trace('create starts')
  let request = input
  const {plan} = request
  const cleanup = new CleanupStack()
  // The login's way first (`ssh -G`, then the TCP connection): on a distant login node it is the longest wait.
  const transport = request.bundleFile === undefined ? request.transport() : undefined
  // The machine file's login target, unless the configuration overrides it.
  transport?.expect?.(requestTarget(request))
  // condor_config_val beside it: while it runs, the SSH code loads.
  const configuring = readAnnexConfig(plan.system.key)
  configuring.catch(() => undefined)
  // Beside it, the state jobs that killed runs left go (before the name check, which they would fail).
  const sweeping = sweepOrphanedRequests()
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
    let value!: Awaited<ReturnType<typeof body>>
    await new Listr([{title, task: async (_ctx, task) => void (value = await traced(`step ${title}`, body(task as never)))}], {
      ...listrOptions(request.output),
      registerSignalListeners: false,
      exitOnError: true,
    }).run()
    request.signal.throwIfAborted()
    return value
  }

  let secrets: Secrets | undefined
  try {
    const checked = await run('Checking the Access Point', async (task) => {
      const found = await checkAccessPoint(request, configuring, sweeping, (target) => {
        if (transport) login = startLogin(request, transport, target, cleanup)
        later().catch(() => undefined)
      })
      const release = found.htcondor.version === undefined || request.condorTarball ? '' : `, pilots' HTCondor ${found.htcondor.version}`
      task.title = `Checked the Access Point: annex collector ${found.collector}, schedd ${found.scheddName}${release}`
      return found
    })
    request = {...request, plan: {...plan, htcondor: checked.htcondor}}

    // The token and the state job are made while the login (and its 2FA) happens.
    const tokenStep = 'Minting the annex token'
    const stateStep = `Submitting the state job for ${plan.annexName}`
    const digests = [
      ...(checked.sifs.length > 0 ? [`${checked.sifs.length} container image(s)`] : []),
      ...(request.condorTarball ? ['the HTCondor tarball'] : []),
    ]
    const digestStep = `Checksumming ${digests.join(' and ')}`
    const digesting = Promise.all([digestImages(checked.sifs), checksummedTarball(request)])
    const minting = mintToken(request, checked.config, cleanup).then((minted) => (secrets = minted))
    const submitting = submitRequestJob(request, checked, cleanup, () => step)
    background = Promise.allSettled([digesting, minting, submitting])
    const settle = async () => {
      const [images, tarball] = digests.length > 0 ? await run(digestStep, () => digesting) : await digesting
      const token = await run(tokenStep, () => minting)
      const stateJob = await run(stateStep, async (task) => {
        const job = await submitting
        task.title = `Submitted the state job ${job.jobId} (request ${job.requestId})`
        return job
      })
      return {images, tarball, token, stateJob}
    }

    if (request.bundleFile !== undefined) {
      const made = await settle()
      const file = await selfService(request, {...made, checked}, cleanup, run)
      // The bundle is the result; the local token copy goes.
      cleanup.dismiss()
      secrets?.removeLocalToken?.()
      return result(request, {...made, checked}, {bundleFile: file, swept: await sweeping})
    }

    // The bundle is rendered while the login is still under way; failures above are reported by their own steps.
    const preparing = Promise.all([digesting, minting, submitting]).then(([[images, tarball], token, stateJob]) => prepareStaging(request, {checked, images, tarball, token, stateJob}))
    preparing.catch(() => undefined)

    step = `Logging in to ${checked.target.host}`
    login!.held.open()
    await abortable(login!.connecting, request.signal)
    const made = await settle()

    await pointJobsAtImages(checked.sifs, cleanup, run)

    const batch = batchSystem(plan.system.batch)
    const backend = await run(`Staging and submitting the ${batch.label} job on ${checked.target.host}`, async (task) => {
      const submitted = await submitBatchJob(request, transport!, checked.target.host, made.stateJob, await preparing, cleanup, (text) => (task.output = text))
      task.title = `Submitted batch job ${submitted.jobId} on ${checked.target.host}`
      return submitted
    })

    // Success: nothing to undo; the connection closes and the local token goes.
    cleanup.dismiss()
    await transport!.close()
    secrets?.removeLocalToken?.()
    return result(request, {...made, checked}, {backend, swept: await sweeping})
  } catch (error) {
    login?.held.refuse(error)
    await background
    const report = await cleanup.unwind()
    const undone = describeCleanup(report)
    if (request.signal.aborted) {
      // A signal: its reason says which ("interrupted", "terminated (SIGTERM)", ...) and the exit status (128 + its number).
      const signal: unknown = request.signal.reason
      const why = signal instanceof AnnexError ? signal : undefined
      const text = `${step} failed: ${why ? message(why) : 'interrupted'}${undone ? ` (${undone})` : ''}`
      throw new AnnexError(text, {exit: why && why.exitCode > 2 ? why.exitCode : 130, cause: error})
    }
    const text = `${step} failed: ${message(error)}${undone ? ` (${undone})` : ''}`
    throw new AnnexError(text, {exit: error instanceof AnnexError ? error.exitCode : 2, cause: error, ...(error instanceof AnnexError && error.hint ? {hint: error.hint} : {})})
  }
}

/** The checks on the Access Point; `onTarget` is told the login target as soon as it is known. */
async function checkAccessPoint(
  request: CreateRequest,
  configuring: Promise<AnnexConfig & {loginOverrides: LoginOverrides}>,
  sweeping: Promise<unknown>,
  onTarget: (target: LoginTarget) => void,
): Promise<Checked> {
  const {plan} = request
  const config = await configuring
  requireAnnexEnabled(config)
  const collector = annexCollector(config, plan.pool)
  const target = requestTarget(request, config.loginOverrides)
  onTarget(target)
  // Independent questions, asked at once.
  const [queue, scheddName, htcondor] = await Promise.all([
    sweeping.then(() => annexQueue(plan.annexName)),
    findScheddName(collector),
    pilotsRelease(request, config),
  ])
  nameRule(request.verb, plan.annexName, queue.nameTaken)
  checkRequireJob(config.requireJob, plan.annexName, queue.jobs)
  const sifs = findSifImages(queue.jobs)
  const passwordFile = plan.passwordFile ?? config.passwordFile
  ensurePasswordFile(passwordFile)
  return {config, collector, scheddName, target, sifs, password: {path: passwordFile}, htcondor}
}

/**
 * The pilots' HTCondor: the version the plan pins, else the Access Point's
 * own (condor_version); the download tree and pinned digests from the
 * Access Point's configuration. A staged --condor-tarball needs none of it.
 */
async function pilotsRelease(request: CreateRequest, config: AnnexConfig): Promise<PlanHTCondor> {
  const {htcondor} = request.plan
  if (request.condorTarball) return htcondor
  const urlBase = config.tarballUrlBase === undefined ? undefined : checkUrlBase(config.tarballUrlBase, TARBALL_URL_BASE_KNOB)
  const pins = parsePins(config.tarballSha256)
  const apVersion = htcondor.version === undefined ? await accessPointVersion() : undefined
  return resolveDownload(htcondor, {...(apVersion === undefined ? {} : {apVersion}), ...(urlBase === undefined ? {} : {urlBase}), pins})
}

/** Where this request logs in: the flags, else the admin's overrides, else the machine file (and --tmp_dir, else ANNEX_TMP_DIR, for the control socket). */
function requestTarget(request: CreateRequest, overrides: LoginOverrides = {}): LoginTarget {
  const {login} = request.plan
  const flags = {
    ...(login.hostFromFlag ? {host: login.host} : {}),
    ...(login.user === undefined ? {} : {user: login.user}),
    ...(request.plan.tmpDir === undefined ? {} : {controlDir: request.plan.tmpDir}),
  }
  return loginTarget(login.host, {flags, overrides}, request.sshConfigFile)
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
function startLogin(request: CreateRequest, transport: Transport, target: LoginTarget, cleanup: CleanupStack): {connecting: Promise<void>; held: HeldInteraction} {
  const held = holdInteraction(request.interaction)
  let connected = false
  // Closing a login that never got through is not worth a mention.
  cleanup.register(`closed the connection to ${target.host}`, async () => {
    await transport.close()
    return connected
  })
  held.interaction.progress?.(`Logging in to ${target.user ? `${target.user}@` : ''}${target.host} ...`)
  const connecting = traced(`login to ${target.host}`, transport.connect(target, held.interaction))
  // Awaited once the checks pass; a failure before then is reported by the checks' own error.
  connecting.then(() => (connected = true), () => undefined)
  return {connecting, held}
}

/** The annex token: --token_file, or a fresh one whose local copy is deleted when the command ends. */
async function mintToken(request: CreateRequest, config: AnnexConfig, cleanup: CleanupStack): Promise<Secrets> {
  const {plan} = request
  if (plan.tokenFile !== undefined) {
    await readablePrivateFile(plan.tokenFile)
    return {token: {path: plan.tokenFile}}
  }
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
  cleanup.register('deleted the local token', async () => token.remove())
  return {token: {path: token.path}, removeLocalToken: () => token.remove()}
}

/**
 * The state job, with its undo registered first. It records this run
 * (hpc_annex_creator, creator.ts): the undo finds by it the job a condor_submit
 * cut short may have made, this run's alone, never another run's of the same
 * name. Two creates of one name may both pass the name check; each then looks
 * at the state jobs of that name, and the one whose job is not the oldest
 * withdraws (its undo removes its own job only).
 */
async function submitRequestJob(request: CreateRequest, checked: Checked, cleanup: CleanupStack, failedStep: () => string): Promise<RequestJob> {
  const {plan} = request
  const creator = thisRun()
  const submitted: {job?: RequestJob} = {}
  cleanup.register('removed the state job', async () => {
    const reason = `hpc-annex ${request.verb} failed at: ${failedStep()}`
    if (submitted.job) return removeJobs(submitted.job.jobId, reason)
    const strays = await queryJobs({constraint: `hpc_annex_creator == ${classadString(creator)}`, attributes: ['ClusterId', 'ProcId']})
    for (const job of strays) await removeJobs(`${String(job.ClusterId)}.${String(job.ProcId)}`, reason)
    return strays.length > 0
  })
  const {stateJob} = await later()
  submitted.job = await stateJob.submitStateJob(plan, {collector: checked.collector, login: checked.target, creator})
  if (request.verb === 'create' && submitted.job.firstOfName !== submitted.job.jobId) {
    throw userError(
      `Another create of annex '${plan.annexName}' ran at the same time and submitted its state job (${submitted.job.firstOfName}) first; this one withdrew.`,
      `hpc-annex add ${plan.annexName} ${plan.queue.name}@${plan.system.key} to request more resources for it`,
    )
  }
  return submitted.job
}

/** What the steps made, on the Access Point. */
interface Made {
  checked: Checked
  images: Image[]
  tarball: Tarball | undefined
  token: Secrets
  stateJob: RequestJob
}

function result(request: CreateRequest, made: Made, extra: {backend?: BackendResult; bundleFile?: string; swept: string | undefined}): CreateResult {
  const {plan} = request
  const {backend} = extra
  return {
    verb: request.verb,
    annexName: plan.annexName,
    system: plan.system.key,
    queue: plan.queue.name,
    nodes: plan.nodes,
    lifetime: plan.lifetime,
    requestId: made.stateJob.requestId,
    stateJobId: made.stateJob.jobId,
    ...(backend === undefined ? {} : {batchJobId: backend.jobId}),
    ...(backend?.pilotDir === undefined ? {} : {pilotDir: backend.pilotDir}),
    ...(extra.bundleFile === undefined ? {loginHost: made.checked.target.host} : {}),
    images: made.images.map((i) => ({name: i.name, sha256: i.sha256, bytes: i.bytes, sent: !backend?.cached.has(i.sha256)})),
    bytesSent: backend?.bytesSent ?? 0,
    remoteCommands: backend === undefined ? 0 : 1,
    warnings: backend?.warnings ?? [],
    notices: [...(extra.swept === undefined ? [] : [extra.swept]), ...(backend?.notices ?? [])],
    ...(extra.bundleFile === undefined ? {} : {bundleFile: extra.bundleFile}),
    ...(backend?.estimate === undefined ? {} : {estimate: backend.estimate}),
    htcondor: plan.htcondor,
    ...(request.condorTarball ? {stagedTarball: basename(request.condorTarball.path)} : {}),
  }
}

/** The --condor-tarball with its sha256 (computing since the command started) and size. */
async function checksummedTarball(request: CreateRequest): Promise<Tarball | undefined> {
  if (!request.condorTarball) return undefined
  const {path} = request.condorTarball
  const [sha256, info] = await Promise.all([request.condorTarball.sha256, stat(path)])
  return {path, sha256, bytes: info.size}
}

/** The sha256 of each distinct image file (jobs often share one), named as the jobs will see it. */
async function digestImages(sifs: SifImage[]): Promise<Image[]> {
  if (sifs.length === 0) return []
  const {sha256File, sifEntryName} = (await later()).backend
  const byPath = new Map<string, Image>()
  const names = new Map<string, string>()
  for (const sif of sifs) {
    const name = sifEntryName(sif.basename)
    if (!byPath.has(sif.path)) {
      try {
        const bytes = (await stat(sif.path)).size
        byPath.set(sif.path, {name, sha256: await sha256File(sif.path), path: sif.path, bytes})
      } catch (error) {
        // Found by the checks, then not readable to its end (a directory, a file gone or unreadable meanwhile).
        throw userError(`Cannot read the container image '${sif.path}' of job ${sif.jobId} (${message(error)}).`, `fix or remove job ${sif.jobId} (condor_rm ${sif.jobId}), then try again`)
      }
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

/** What the Access Point adds to the Plan for rendering, once the state job exists. */
function apContext(request: CreateRequest, made: Made): ApContext {
  return {
    requestId: made.stateJob.requestId,
    collector: made.checked.collector,
    scheddName: made.checked.scheddName,
    images: made.images.map((i) => ({name: i.name, sha256: i.sha256})),
    ...(made.tarball ? {stagedTarballSha256: made.tarball.sha256, stagedTarballName: basename(made.tarball.path)} : {}),
    ...(request.allowUnpinnedDownload ? {allowUnpinnedDownload: true} : {}),
  }
}

/** The secrets and large objects the bundle carries. */
function bundleInputs(made: Made): BundleInputs {
  return {
    token: made.token.token,
    password: made.checked.password,
    sifs: made.images.map((i) => ({sha256: i.sha256, path: i.path})),
    ...(made.tarball ? {condorTarball: {path: made.tarball.path, sha256: made.tarball.sha256}} : {}),
  }
}

/** Renders the bundle once the state job exists (its id is in the files); needs no connection. */
async function prepareStaging(request: CreateRequest, made: Made): Promise<BackendInputs> {
  const {renderFiles} = (await later()).backend
  const objects = new Map(made.images.map((i) => [i.sha256, i.bytes] as const))
  if (made.tarball) objects.set(made.tarball.sha256, made.tarball.bytes)
  return {files: renderFiles(request.plan, apContext(request, made)), inputs: bundleInputs(made), objects}
}

/**
 * Runs the back-end over the one channel, its undo (cancelling the batch job
 * it reports) registered first; the control values go to the state job as
 * they arrive, its progress to the task list.
 */
async function submitBatchJob(
  request: CreateRequest,
  transport: Transport,
  host: string,
  stateJob: RequestJob,
  staging: BackendInputs,
  cleanup: CleanupStack,
  progress: (text: string) => void,
): Promise<BackendResult> {
  const {plan} = request
  const batch = batchSystem(plan.system.batch)
  const {backend: {runBackend}, stateJob: {recordControlValues}} = await later()
  const control: Partial<Record<RecordedControl, string>> = {}
  // Registered before the back-end can submit anything. Once the batch job is
  // submitted the back-end leaves the pilot directory (and the token and
  // password in it) to it, and a job cancelled before it ran never removes
  // it: the undo cancels the job, then removes the directory the back-end
  // reported, if it is one the back-end made, once the job has left the
  // batch system (until then its processes may still write there). A back-end that failed before
  // that removed its directory itself: then there is nothing to undo here.
  cleanup.register('cancelled the batch job', async () => {
    const {JOB_ID: jobId, PILOT_DIR: pilotDir} = control
    const lines = [
      ...(jobId === undefined ? [] : [`${batch.cancelJob(jobId)} || exit 4`, ...batch.awaitJobGone(jobId)]),
      ...(pilotDir === undefined ? [] : removePilotDirLines(batch, pilotDir, {withLogs: true})),
    ]
    if (lines.length === 0) return false
    const result = await transport.exec(lines.join('\n'))
    if (result.code !== 0) throw new Error(`${result.code === 4 ? batch.tools.cancel : 'the clean-up'} on ${host} exited with status ${result.code}: ${lastLine(result.stderr)}`)
    const removed = /^removed-pilot-dir$/m.test(result.stdout)
    const dir = `the pilot directory ${pilotDir} on ${host}`
    if (jobId === undefined) return removed ? `removed ${dir}` : false
    return `cancelled the batch job ${jobId}${removed ? ` and removed ${dir}` : ''}`
  })
  // The state job always shows the latest values; what arrives during a condor_qedit goes in the next.
  const recorder = new CoalescingWriter<RecordedControl>((values) => recordControlValues(stateJob, values))
  let outcome: BackendResult
  try {
    outcome = await runBackend(transport, plan, staging, {
      signal: request.signal,
      stallTimeout: request.stallTimeout,
      host,
      progressEvery: request.output === 'tty' ? 200 : 10_000,
      onProgress: progress,
      onControl: (name, value) => {
        control[name] = value
        recorder.set(name, value)
        // The back-end keeps its job only once the state job holds its id.
        if (name !== 'JOB_ID') return
        return recorder.flush().then(() => {
          if (recorder.error !== undefined) throw recorder.error
        })
      },
      onWithdrawn: () => {
        delete control.JOB_ID
        delete control.PILOT_DIR
      },
    })
  } finally {
    // What was reported reaches the state job even when the back-end then failed.
    await recorder.flush()
  }
  if (recorder.error !== undefined) throw recorder.error
  return outcome
}

/**
 * Points the annex's jobs at their staged images before any pilot can start
 * (a pilot may match a job at once), with an undo that puts back what it changed.
 */
async function pointJobsAtImages(sifs: SifImage[], cleanup: CleanupStack, run: RunStep): Promise<void> {
  if (sifs.length === 0) return
  const applied: SifImage[] = []
  cleanup.register("restored the jobs' container images", async () => {
    if (applied.length === 0) return false
    await revertImageEdits(applied)
  })
  await run(`Pointing ${sifs.length} job(s) at their staged images`, () => editJobsForStagedImages(sifs, applied))
}

/** --bundle: everything a create sends, written to a file the user carries to the login node; returns its name. */
async function selfService(request: CreateRequest, made: Made, cleanup: CleanupStack, run: RunStep): Promise<string> {
  const {plan} = request
  const file = request.bundleFile!
  const {renderFiles, writeBundle} = (await later()).backend
  let written = false
  await run(`Writing the self-service bundle ${file}`, async () => {
    cleanup.register(`removed ${file}`, async () => {
      if (!written) return false
      await rm(file, {force: true})
    })
    await writeBundle(file, renderFiles(plan, apContext(request, made), {setup: true}), bundleInputs(made), {prefix: `hpc-annex-${plan.annexName}`})
    written = true
    // This request gets no batch job id on the state job (its user submits by hand): the run's end is marked instead.
    await editJobs(made.stateJob.jobId, {hpc_annex_creator: null})
  })
  await pointJobsAtImages(made.checked.sifs, cleanup, run)
  return file
}
