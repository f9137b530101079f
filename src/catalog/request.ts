import {userError} from '../errors.js'

/** The flags of `create`/`add` as the user typed them (strings), before any check. */
export interface RequestInput {
  name: string
  /** QUEUE@SYSTEM */
  target: string
  nodes?: string
  lifetime?: string
  project?: string
  cpus?: string
  memMb?: string
  gpus?: string
  gpuType?: string
  idleTime?: string
  loginName?: string
  loginHost?: string
  pool?: string
  tokenFile?: string
  passwordFile?: string
  tmpDir?: string
  /** Comma-separated user names. */
  owners?: string
  /** Extra batch directives, KEY=VALUE or KEY (--batch-option, repeatable). */
  batchOptions?: string[]
}

/** A request whose every field has the right form; limits are checked later, against the queue. */
export interface Request {
  name: string
  queue: string
  system: string
  nodes: number
  lifetime: number
  idleTime: number
  project?: string
  cpus?: number
  memMb?: number
  gpus?: number
  gpuType?: string
  /** The flag that gave the GPU type, for messages: --gpu-type, or --gpus TYPE:N. */
  gpuTypeFrom?: '--gpu-type' | '--gpus'
  loginName?: string
  loginHost?: string
  pool?: string
  tokenFile?: string
  passwordFile?: string
  tmpDir?: string
  owners?: string[]
}

export const DEFAULT_NODES = 1
export const DEFAULT_LIFETIME = 3600
export const DEFAULT_IDLE_TIME = 300

export const ANNEX_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const USER_NAME = /^[A-Za-z_][A-Za-z0-9._-]{0,63}$/
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const PROJECT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
// A collector address: host[:port][?sock=...] or a sinful string <ip:port?...>.
const COLLECTOR = /^[A-Za-z0-9._:?=&%<>[\]#/+-]{1,512}$/
const GPU_TYPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Checks an annex name; used by every verb that takes one. */
export function checkAnnexName(name: string): string {
  if (!ANNEX_NAME.test(name)) {
    throw userError(`The annex name '${printable(name)}' is not allowed: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.`)
  }
  return name
}

/** Shows a rejected value without letting it break the one-line error. */
function printable(value: string): string {
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value
  return JSON.stringify(shown).slice(1, -1)
}

/**
 * A count or a duration: a positive whole number. What is wrong with the value
 * is said as it is: not a number, zero, or more than any queue allows.
 */
function positiveInteger(flag: string, value: string | undefined, system?: string): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (!/^\d+$/.test(text)) throw userError(`${flag} must be a positive whole number, not '${printable(value)}'; change ${flag}.`)
  const number = Number(text)
  if (number === 0) throw userError(`${flag} must be at least 1, not '${printable(value)}'; change ${flag}.`)
  if (!Number.isSafeInteger(number)) {
    const limits = system === undefined ? 'hpc-annex systems lists the limits' : `hpc-annex systems ${system} lists the limits`
    throw userError(`${flag} ${printable(text)} is larger than any queue allows; change ${flag} (${limits}).`)
  }
  return number
}

function matching(flag: string, value: string | undefined, pattern: RegExp, what: string): string | undefined {
  if (value === undefined) return undefined
  if (!pattern.test(value)) throw userError(`${flag} '${printable(value)}' is not ${what}; change ${flag}.`)
  return value
}

function localPath(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (value === '' || /[\u0000-\u001f]/.test(value)) throw userError(`${flag} must be a file path; change ${flag}.`)
  return value
}

/** Splits QUEUE@SYSTEM; what a missing '@' means is for the catalog to explain. */
export function splitTarget(target: string): {queue: string; system: string} | undefined {
  const at = target.lastIndexOf('@')
  if (at <= 0 || at === target.length - 1) return undefined
  return {queue: target.slice(0, at), system: target.slice(at + 1)}
}

const GPUS_FORM = 'of the form N or TYPE:N (e.g. 4 or v100-32:4)'

/** `--gpus N` or `--gpus TYPE:N`, reconciled with `--gpu-type`. */
function parseGpus(gpus: string | undefined, gpuType: string | undefined, system: string): {gpus?: number; gpuType?: string; gpuTypeFrom?: '--gpu-type' | '--gpus'} {
  const type = matching('--gpu-type', gpuType, GPU_TYPE, 'a GPU type')
  const fromFlag = type === undefined ? {} : {gpuType: type, gpuTypeFrom: '--gpu-type' as const}
  if (gpus === undefined) return fromFlag
  const text = gpus.trim()
  const typed = /^([^:]*):(.*)$/.exec(text)
  if (!typed) {
    if (!/^\d+$/.test(text)) throw userError(`--gpus '${printable(gpus)}' is not ${GPUS_FORM}; change --gpus.`)
    const count = positiveInteger('--gpus', text, system)
    return {...(count === undefined ? {} : {gpus: count}), ...fromFlag}
  }
  const [, inlineType = '', countText = ''] = typed
  if (!/^\d+$/.test(countText)) {
    // The count first, the type second: the form the other way round.
    if (/^\d+$/.test(inlineType) && GPU_TYPE.test(countText)) {
      throw userError(`--gpus '${printable(gpus)}' is not ${GPUS_FORM}: the type comes first; did you mean --gpus ${countText}:${inlineType}?`)
    }
    throw userError(`--gpus '${printable(gpus)}' is not ${GPUS_FORM}; change --gpus.`)
  }
  if (!GPU_TYPE.test(inlineType)) throw userError(`--gpus '${printable(gpus)}' is not ${GPUS_FORM}; change --gpus.`)
  if (type !== undefined && type !== inlineType) {
    throw userError(`--gpus says the GPU type is '${inlineType}' but --gpu-type says '${type}'; give the type once.`)
  }
  const count = positiveInteger('--gpus', countText, system)
  return {...(count === undefined ? {} : {gpus: count}), gpuType: inlineType, gpuTypeFrom: type === undefined ? '--gpus' : '--gpu-type'}
}

/**
 * Checks the form of every field (numbers are positive integers, names and
 * hosts match conservative patterns) without looking at any queue.
 * `target` must already be split (see splitTarget).
 */
export function parseRequest(input: RequestInput, target: {queue: string; system: string}): Request {
  checkAnnexName(input.name)
  const owners = input.owners?.split(',').map((owner) => owner.trim()).filter((owner) => owner !== '')
  if (input.owners !== undefined && owners?.length === 0) throw userError('--owners must list at least one user name; change --owners.')
  for (const owner of owners ?? []) matching('--owners', owner, USER_NAME, 'a user name')
  const gpus = parseGpus(input.gpus, input.gpuType, target.system)
  const request: Request = {
    name: input.name,
    queue: target.queue,
    system: target.system,
    nodes: positiveInteger('--nodes', input.nodes, target.system) ?? DEFAULT_NODES,
    lifetime: positiveInteger('--lifetime', input.lifetime, target.system) ?? DEFAULT_LIFETIME,
    idleTime: positiveInteger('--idle-time', input.idleTime, target.system) ?? DEFAULT_IDLE_TIME,
    ...gpus,
  }
  const optional: Partial<Request> = {
    project: matching('--project', input.project, PROJECT, 'a project (allocation) name'),
    cpus: positiveInteger('--cpus', input.cpus, target.system),
    memMb: positiveInteger('--mem_mb', input.memMb, target.system),
    loginName: matching('--login-name', input.loginName, USER_NAME, 'a login name'),
    loginHost: matching('--login-host', input.loginHost, HOST_NAME, 'a host name'),
    pool: matching('--pool', input.pool, COLLECTOR, 'a collector address'),
    tokenFile: localPath('--token_file', input.tokenFile),
    passwordFile: localPath('--password_file', input.passwordFile),
    tmpDir: localPath('--tmp_dir', input.tmpDir),
    owners,
  }
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (request as unknown as Record<string, unknown>)[key] = value
  }
  return request
}
