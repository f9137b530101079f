/**
 * hpc-annex as a library: `import {plan, create, status} from 'hpc-annex'`.
 * Each function does what its verb does under --json and resolves to exactly
 * that payload (the types of ./json/schemas.ts, published in docs/json/); a
 * failure rejects with an AnnexError whose exitCode is the CLI's exit status.
 * Nothing is printed. Values are checked by the same code as the flags, so an
 * error names the flag (--nodes, --batch-option) the option stands for.
 */
import type {z} from 'zod/v4'

import type {RequestInput} from '../catalog/index.js'
import {AnnexError, oneLine} from '../errors.js'
import type {TransportKind} from '../ssh/transport.js'
import {runRequestInput, type DeliveryValues, type RequestIo} from './annex-request.js'
import type {applyJson, dryRunJson, logsJson, requestResultJson, shutdownJson, statusJson} from './json/schemas.js'
import {loginOptions} from './login.js'

export {AnnexError, type ExitCode} from '../errors.js'

/** What `create --dry-run --json` prints. */
export type PlanResult = z.infer<typeof dryRunJson>
/** What `create --json` and `add --json` print. */
export type RequestResult = z.infer<typeof requestResultJson>
export type StatusResult = z.infer<typeof statusJson>
export type ShutdownResult = z.infer<typeof shutdownJson>
export type LogsResult = z.infer<typeof logsJson>
export type ApplyResult = z.infer<typeof applyJson>

/** A request, as the flags of create and add give it. */
export interface AnnexRequest {
  /** The annex name. */
  name: string
  /** QUEUE@SYSTEM, e.g. 'wholenode@anvil'. */
  target: string
  nodes?: number
  /** Seconds. */
  lifetime?: number
  project?: string
  cpus?: number
  memMb?: number
  /** N, or 'TYPE:N'. */
  gpus?: number | string
  gpuType?: string
  /** Seconds a pilot may run no job before it shuts down. */
  idleTime?: number
  loginName?: string
  loginHost?: string
  pool?: string
  tokenFile?: string
  passwordFile?: string
  tmpDir?: string
  owners?: string[]
  /** Extra batch directives: ['reservation=myres'], or {reservation: 'myres', exclusive: true}. */
  batchOptions?: string[] | Record<string, string | true>
}

/** How a real create or add is carried out (its --condor-tarball, --ssh, ... flags). */
export interface DeliveryOptions {
  condorTarball?: string
  /** The HTCondor version the pilots run (default: the machine file's, else the Access Point's own). */
  condorVersion?: string
  allowUnpinnedDownload?: boolean
  /** Refuse, before any login, a request that can charge more than this, in the system's unit. */
  maxCharge?: number
  /** Write a self-service bundle to this file instead of logging in. */
  bundle?: string
  ssh?: TransportKind
  /** Seconds a remote step may make no progress (default 120). */
  stallTimeout?: number
}

/** The request in the catalog's terms: the same text the flags would carry. */
export function requestInput(request: AnnexRequest): RequestInput {
  const text = (value: number | string | undefined) => (value === undefined ? undefined : String(value))
  const fields: Partial<Record<keyof RequestInput, string | undefined>> = {
    nodes: text(request.nodes),
    lifetime: text(request.lifetime),
    project: request.project,
    cpus: text(request.cpus),
    memMb: text(request.memMb),
    gpus: text(request.gpus),
    gpuType: request.gpuType,
    idleTime: text(request.idleTime),
    loginName: request.loginName,
    loginHost: request.loginHost,
    pool: request.pool,
    tokenFile: request.tokenFile,
    passwordFile: request.passwordFile,
    tmpDir: request.tmpDir,
    owners: request.owners?.join(','),
  }
  const input: RequestInput = {name: request.name, target: request.target}
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) (input as unknown as Record<string, string>)[key] = value
  const options = request.batchOptions
  if (options !== undefined) {
    input.batchOptions = Array.isArray(options) ? options : Object.entries(options).map(([key, value]) => (value === true ? key : `${key}=${value}`))
  }
  return input
}

/** Every failure as the one error type, with the CLI's exit status (anything unexpected: 2). */
async function asAnnexError<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof AnnexError) throw error
    throw new AnnexError(oneLine(error instanceof Error ? error.message : String(error)), {exit: 2, cause: error})
  }
}

const quiet: RequestIo = {log: () => undefined, json: true}

function delivery(options: DeliveryOptions & {dryRun?: boolean; emit?: string}): DeliveryValues {
  return {
    'stall-timeout': options.stallTimeout ?? 120,
    ...(options.dryRun ? {'dry-run': true} : {}),
    ...(options.emit === undefined ? {} : {emit: options.emit}),
    ...(options.bundle === undefined ? {} : {bundle: options.bundle}),
    ...(options.condorTarball === undefined ? {} : {'condor-tarball': options.condorTarball}),
    ...(options.condorVersion === undefined ? {} : {'condor-version': options.condorVersion}),
    ...(options.allowUnpinnedDownload ? {'allow-unpinned-download': true} : {}),
    ...(options.maxCharge === undefined ? {} : {'max-charge': String(options.maxCharge)}),
    ...(options.ssh === undefined ? {} : {ssh: options.ssh}),
  }
}

/** `create --dry-run --json` (or `add`): validates the request against the machine files and says what would be asked for; touches no network. */
export function plan(request: AnnexRequest, options: {verb?: 'create' | 'add'; emit?: string} = {}): Promise<PlanResult> {
  return asAnnexError(async () => {
    const out = await runRequestInput(options.verb ?? 'create', requestInput(request), delivery({dryRun: true, ...(options.emit === undefined ? {} : {emit: options.emit})}), quiet)
    return {...out, warnings: 'warnings' in out ? out.warnings : []} as PlanResult
  })
}

/** Checks a request and resolves to its plan, or rejects with the AnnexError (exit 1) that names what to change: plan() for create. */
export function validate(request: AnnexRequest): Promise<PlanResult> {
  return plan(request)
}

async function request(verb: 'create' | 'add', annex: AnnexRequest, options: DeliveryOptions): Promise<RequestResult> {
  return asAnnexError(async () => (await runRequestInput(verb, requestInput(annex), delivery(options), quiet)) as RequestResult)
}

/** `create --json`: a new annex (the name must not be in use). */
export function create(annex: AnnexRequest, options: DeliveryOptions = {}): Promise<RequestResult> {
  return request('create', annex, options)
}

/** `add --json`: another request for an existing annex. */
export function add(annex: AnnexRequest, options: DeliveryOptions = {}): Promise<RequestResult> {
  return request('add', annex, options)
}

/** `status [NAME] --json`. */
export function status(options: {name?: string; pool?: string} = {}): Promise<StatusResult> {
  return asAnnexError(async () => {
    const [{collectStatus}, {statusJson}] = await Promise.all([import('../annex/status.js'), import('./json/project.js')])
    return {...statusJson(await collectStatus(options)), warnings: []} as StatusResult
  })
}

/**
 * `shutdown NAME --json`; with cancelPending, also logs in and cancels the
 * batch jobs of requests that have not joined. As under --json, a request
 * that could not be cancelled is reported in `pending`, not thrown.
 */
export function shutdown(options: {name: string; pool?: string; cancelPending?: boolean; ssh?: TransportKind; tmpDir?: string}): Promise<ShutdownResult> {
  return asAnnexError(async () => {
    const {shutdownAnnex} = await import('../annex/shutdown.js')
    const result = await shutdownAnnex({
      name: options.name,
      ...(options.pool === undefined ? {} : {pool: options.pool}),
      ...(options.cancelPending ? {cancelPending: loginOptions(options.ssh, true, options.tmpDir)} : {}),
    })
    return {...result, warnings: []} as ShutdownResult
  })
}

/** `logs NAME --json`: each request's files, their text in `output`. */
export function logs(options: {name: string; request?: string; node?: string; lines?: number; ssh?: TransportKind; tmpDir?: string}): Promise<LogsResult> {
  return asAnnexError(async () => {
    const {showLogs} = await import('../annex/logs.js')
    let output = ''
    const result = await showLogs({
      name: options.name,
      ...(options.request === undefined ? {} : {request: options.request}),
      ...(options.node === undefined ? {} : {node: options.node}),
      lines: options.lines ?? 100,
      login: loginOptions(options.ssh, true, options.tmpDir),
      write: (chunk) => (output += chunk),
    })
    return {...result, output, warnings: []} as LogsResult
  })
}

/**
 * `apply FILE --json`: makes the requests of a request file the annex lacks.
 * As under --json, a request that fails is reported in its `outcome`, not
 * thrown; a file that cannot be used rejects.
 */
export function apply(file: string, options: Omit<DeliveryOptions, 'bundle'> & {dryRun?: boolean} = {}): Promise<ApplyResult> {
  return asAnnexError(async () => {
    const {runApply} = await import('./apply.js')
    const flags = delivery(options)
    const exitCode = process.exitCode
    try {
      return await runApply(file, flags, {log: () => undefined, json: true})
    } finally {
      // The CLI's exit status for a failed request is the result's to say here, not the host process's.
      process.exitCode = exitCode
    }
  })
}
