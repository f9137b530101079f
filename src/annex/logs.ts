import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {PassThrough} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'

import {checkPilotDir} from '../backend/pilot-dir.js'
import {oneLine, systemError} from '../errors.js'
import {projectPath} from '../paths.js'
import {shellQuote} from '../quote.js'
import type {Transport} from '../ssh/transport.js'
import {closeLogins, describeTarget, sentence, findRequests, groupByLogin, lastLine, loginSources, openLogins, type AnnexRequest, type LoginOptions} from './requests.js'

/** The script `logs` runs on the login node (templates/logs.sh); its arguments carry every value. */
const LOGS_SCRIPT = readFileSync(join(projectPath('templates'), 'logs.sh'), 'utf8')

/** The command for one exec: the script and its arguments, each one shell word. */
export function logsCommand(options: {lines: number; follow: boolean; node?: string}, dirs: {prefix: string; dir: string}[]): string {
  if (!Number.isSafeInteger(options.lines) || options.lines < 0) throw new TypeError(`not a line count: ${options.lines}`)
  for (const {dir} of dirs) checkPilotDir(dir)
  const args = [String(options.lines), options.follow ? '1' : '0', options.node ?? '', ...dirs.flatMap(({prefix, dir}) => [prefix, dir])]
  return `bash -c ${shellQuote(LOGS_SCRIPT)} hpc-annex-logs ${args.map(shellQuote).join(' ')}`
}

export interface LogsOptions {
  name: string
  /** One request: its id (GlobalJobID) or its state job id. */
  request?: string
  follow?: boolean
  /** Only this node's logs (its directory name under the pilot directory's hosts/). */
  node?: string
  /** Last lines of each file; 0 for whole files. */
  lines: number
  login: LoginOptions & {sshConfigFile?: string}
  /** Where the logs go, as they arrive. */
  write: (text: string) => void
  /** Stops --follow (Ctrl-C). */
  signal?: AbortSignal
}

export interface RequestLogs {
  requestId: string
  stateJobId: string
  pilotDir?: string
  loginHost?: string
  /** shown: printed; no-pilot-dir: not known yet; refused: not a plain path; gone: no directory or kept logs; failed: login or remote error. */
  outcome: 'shown' | 'no-pilot-dir' | 'refused' | 'gone' | 'failed' | 'unreachable'
  detail?: string
}

export interface LogsResult {
  annexName: string
  requests: RequestLogs[]
  /** With --json: everything that was printed. */
  output?: string
}

/**
 * The logs of an annex's requests over one login per login target: one exec
 * per request, or with follow one exec per login target that follows all of
 * its requests (an exec that never ends holds a session, and login nodes
 * allow few).
 */
export async function showLogs(options: LogsOptions): Promise<LogsResult> {
  const requests = await findRequests(options.name, options.request)
  const result: LogsResult = {annexName: options.name, requests: []}
  if (requests.length === 0) {
    options.write(`Annex '${options.name}' has no requests in the queue.\n`)
    return result
  }
  const reports = new Map<string, RequestLogs>()
  const several = requests.length > 1
  const title = (r: AnnexRequest) => `request ${r.jobId} (${r.requestId})`
  let wrote = false
  const write = (text: string) => {
    if (text !== '') wrote = true
    options.write(text)
  }
  // In order, a blank line between requests; a request's line starts with its state job id.
  const say = (r: RequestLogs, text: string) => write(`${wrote && !options.follow ? '\n' : ''}${several || !options.follow ? `### ${r.stateJobId}: ` : ''}${text}\n`)

  const usable: AnnexRequest[] = []
  for (const request of requests) {
    const report: RequestLogs = {requestId: request.requestId, stateJobId: request.jobId, outcome: 'shown'}
    reports.set(request.requestId, report)
    if (request.pilotDir === undefined) {
      report.outcome = 'no-pilot-dir'
      report.detail = `its pilot directory is not known (the request is ${request.state})`
      continue
    }
    report.pilotDir = request.pilotDir
    try {
      checkPilotDir(request.pilotDir)
    } catch (error) {
      report.outcome = 'refused'
      report.detail = (error as Error).message
      continue
    }
    usable.push(request)
  }
  const {groups, unreachable} = await groupByLogin(usable, loginSources(options.login))
  for (const {request, reason} of unreachable) Object.assign(reports.get(request.requestId)!, {outcome: 'unreachable', detail: `cannot log in for it: ${reason}`})
  const logins = await openLogins(groups, options.login)
  const loginOf = new Map(logins.flatMap((login) => login.group.requests.map((r) => [r.requestId, login] as const)))
  const node = options.node === undefined ? {} : {node: options.node}
  try {
    // What cannot be shown first when following (the rest then streams), else each request in order.
    for (const request of requests) {
      const report = reports.get(request.requestId)!
      const login = loginOf.get(request.requestId)
      if (login !== undefined) {
        report.loginHost = describeTarget(login.group.target)
        if ('error' in login) Object.assign(report, {outcome: 'failed', detail: login.error})
      }
      if (report.outcome !== 'shown') {
        say(report, sentence(`${title(request)}: ${report.detail}`))
        continue
      }
      if (options.follow || login === undefined || 'error' in login) continue
      say(report, `${title(request)}: batch job ${request.batchJobId ?? '(id not known)'} on ${report.loginHost}, pilot directory ${request.pilotDir}`)
      const command = logsCommand({lines: options.lines, follow: false, ...node}, [{prefix: '', dir: request.pilotDir!}])
      Object.assign(report, await runLogs(login.transport, command, false, write, options.signal, login.group.target))
    }
    const following = logins.filter((login) => 'transport' in login)
    if (options.follow && following.length > 0) {
      const count = following.reduce((n, login) => n + login.group.requests.length, 0)
      if (several) write(`Following ${count} request(s) of annex '${options.name}'; Ctrl-C to stop.\n`)
      const merge = new LineMerger(write)
      await Promise.all(following.map(async (login) => {
        if (!('transport' in login)) return
        const dirs = login.group.requests.map((r) => ({prefix: several ? `[${r.jobId}] ` : '', dir: r.pilotDir!}))
        const outcome = await runLogs(login.transport, logsCommand({lines: options.lines, follow: true, ...node}, dirs), true, merge.stream(), options.signal, login.group.target)
        for (const r of login.group.requests) Object.assign(reports.get(r.requestId)!, outcome)
      }))
    }
  } finally {
    await closeLogins(logins)
  }
  result.requests = requests.map((r) => reports.get(r.requestId)!)
  return result
}

async function runLogs(
  transport: Transport,
  command: string,
  follow: boolean,
  write: (text: string) => void,
  signal: AbortSignal | undefined,
  target: {host: string; user?: string},
): Promise<Pick<RequestLogs, 'outcome' | 'detail'>> {
  const decoder = new StringDecoder('utf8')
  // While following, stdin stays open: its EOF tells the remote side the connection is gone.
  const stdin = follow ? new PassThrough() : undefined
  try {
    const result = await transport.exec(command, {
      collect: false,
      ...(stdin ? {stdin} : {}),
      ...(signal ? {signal} : {}),
      onStdout: (chunk) => write(decoder.write(chunk)),
      onStderr: () => undefined,
    })
    write(decoder.end())
    if (result.code === 0) return {outcome: 'shown'}
    if (result.code === 3) return {outcome: 'gone', detail: 'the pilot directory is gone, and no logs were kept beside it'}
    const status = result.code === null ? `was killed (${result.signal ?? 'signal'})` : `failed (exit status ${result.code})`
    const detail = `reading the logs on ${describeTarget(target)} ${status}${lastLine(result.stderr) ? `: ${lastLine(result.stderr)}` : ''}`
    write(`${sentence(detail)}\n`)
    return {outcome: 'failed', detail}
  } catch (error) {
    write(decoder.end())
    if (signal?.aborted) return {outcome: 'shown'}
    const detail = `reading the logs on ${describeTarget(target)} failed: ${oneLine(error instanceof Error ? error.message : String(error))}`
    write(`${sentence(detail)}\n`)
    return {outcome: 'failed', detail}
  } finally {
    stdin?.end()
  }
}

/**
 * Several followed streams onto one output: whole lines only, a blank line
 * before each header, and when the output switches to another stream, that
 * stream's last header again.
 */
class LineMerger {
  private last: object | undefined
  private wrote = false

  constructor(private readonly write: (text: string) => void) {}

  stream(): (text: string) => void {
    const me = {}
    let partial = ''
    let header: string | undefined
    // The remote side puts a blank line before each header; one that is not followed by a header is the log's own.
    let blank = false
    const emit = (text: string) => {
      this.write(text)
      this.wrote = true
      this.last = me
    }
    return (text: string) => {
      partial += text
      const end = partial.lastIndexOf('\n')
      if (end < 0) return
      const lines = partial.slice(0, end).split('\n')
      partial = partial.slice(end + 1)
      for (const line of lines) {
        if (line === '' && !blank) {
          blank = true
          continue
        }
        if (/^==> .* <==$/.test(line)) {
          header = line
          blank = false
          emit(`${this.wrote ? '\n' : ''}${line}\n`)
          continue
        }
        if (this.last !== me && header !== undefined) emit(`${this.wrote ? '\n' : ''}${header}\n`)
        emit(`${blank ? '\n' : ''}${line}\n`)
        blank = false
      }
    }
  }
}

/** A one-line error when nothing at all could be shown. */
export function logsFailure(result: LogsResult): Error | undefined {
  const failed = result.requests.filter((r) => r.outcome === 'failed' || r.outcome === 'unreachable')
  if (failed.length === 0 || failed.length < result.requests.length) return undefined
  return systemError(`Could not read the logs of annex '${result.annexName}': ${failed[0]!.detail}`)
}
