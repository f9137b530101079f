import {readFile} from 'node:fs/promises'
import {userInfo} from 'node:os'

import {liveRequests, matchRequests, sharedTransport} from '../annex/apply.js'
import {batchSystem} from '../batch/index.js'
import {loadCatalog, validateRequest, type Plan} from '../catalog/index.js'
import {atRequest, parseRequestFile, type FileRequest} from '../catalog/request-file.js'
import {AnnexError, oneLine, plural, userError, type ExitCode} from '../errors.js'
import {runRequestInput, type DeliveryValues} from './annex-request.js'
import type {ApplyOutput} from './json/schemas.js'
import {lazyTransport} from './lazy-transport.js'

export type ApplyFlags = Pick<DeliveryValues, 'dry-run' | 'condor-tarball' | 'condor-version' | 'allow-unpinned-download' | 'max-charge' | 'ssh' | 'stall-timeout'>

type Outcome = ApplyOutput['requests'][number]

function where(file: string, request: FileRequest): string {
  return request.line === undefined ? file : `${file}:${request.line}`
}

/**
 * apply FILE: every request of the file checked first (nothing is made when
 * one is wrong); then the annex's live requests are matched to the file's,
 * and only the missing ones are made, the first with create when the annex
 * has none, the others with add, one login per login node.
 */
export async function runApply(file: string, flags: ApplyFlags, io: {log: (line: string) => void; json: boolean}): Promise<ApplyOutput> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw userError(`Cannot read the request file '${file}' (${(error as Error).message}); check the path.`)
  }
  const parsed = parseRequestFile(file, text)
  const catalog = loadCatalog()
  const planned = parsed.requests.map((request) => {
    try {
      return {request, plan: validateRequest(catalog, request.input, {defaultOwner: userInfo().username})}
    } catch (error) {
      throw atRequest(file, request, error)
    }
  })
  const matched = matchRequests(planned, await liveRequests(parsed.name))
  const dryRun = flags['dry-run'] === true
  let annexExists = matched.some((m) => m.existing !== undefined)
  const base = (request: FileRequest, plan: Plan) => ({
    index: request.index,
    ...(request.line === undefined ? {} : {line: request.line}),
    target: `${plan.queue.name}@${plan.system.key}`,
    nodes: plan.nodes,
    lifetimeSeconds: plan.lifetime,
    batchRequest: batchSystem(plan.system.batch).requestLine(plan),
  })
  const outcomes: Outcome[] = new Array<Outcome>(matched.length)
  for (const [i, m] of matched.entries()) {
    if (m.existing === undefined) continue
    outcomes[i] = {...base(m.request, m.plan), outcome: 'exists', requestId: m.existing.requestId, stateJobId: m.existing.stateJobId, ...(m.existing.batchJobId ? {batchJobId: m.existing.batchJobId} : {})}
    io.log(`${where(file, m.request)}: ${outcomes[i].target}: exists as request ${m.existing.requestId} (state job ${m.existing.stateJobId}).`)
  }
  const missing = matched.map((m, i) => ({...m, i})).filter((m) => m.existing === undefined)
  let logins = 0
  if (dryRun) {
    for (const m of missing) {
      const verb = annexExists ? 'add' : 'create'
      annexExists = true
      outcomes[m.i] = {...base(m.request, m.plan), outcome: verb === 'add' ? 'would-add' : 'would-create'}
      io.log(`${where(file, m.request)}: ${outcomes[m.i]!.target}: would ${verb}: ${outcomes[m.i]!.batchRequest}`)
    }
  } else {
    // One login per login node: its requests one after another over it.
    const groups = new Map<string, typeof missing>()
    for (const m of missing) {
      const key = JSON.stringify([m.plan.system.key, m.plan.login.host, m.plan.login.user ?? null])
      groups.set(key, [...(groups.get(key) ?? []), m])
    }
    const delivery: DeliveryValues = {...flags, 'dry-run': false}
    for (const group of groups.values()) {
      const shared = sharedTransport(lazyTransport(flags.ssh))
      try {
        for (const m of group) {
          const verb = annexExists ? 'add' : 'create'
          try {
            const result = await runRequestInput(verb, m.request.input, delivery, {log: io.log, json: io.json, transport: () => shared})
            if (result.dryRun) throw new Error('unreachable: a real request came back as a dry run')
            annexExists = true
            outcomes[m.i] = {
              ...base(m.request, m.plan),
              outcome: verb === 'add' ? 'added' : 'created',
              requestId: result.requestId,
              stateJobId: result.stateJobId,
              ...(result.batchJobId === undefined ? {} : {batchJobId: result.batchJobId}),
              ...(result.loginHost === undefined ? {} : {loginHost: result.loginHost}),
            }
          } catch (error) {
            const failure = error instanceof AnnexError ? error : new AnnexError(oneLine(String((error as Error)?.message ?? error)), {exit: 2})
            outcomes[m.i] = {...base(m.request, m.plan), outcome: 'failed', error: {message: failure.message, exitCode: failure.exitCode}}
            io.log(`${where(file, m.request)}: ${outcomes[m.i]!.target}: failed: ${failure.message}`)
          }
        }
      } finally {
        logins += shared.connections()
        await shared.release()
      }
    }
  }
  const result: ApplyOutput = {annexName: parsed.name, file, dryRun, requests: outcomes, logins, warnings: []}
  const failed = outcomes.filter((o) => o.outcome === 'failed')
  const made = outcomes.filter((o) => o.outcome === 'created' || o.outcome === 'added').length
  const existing = outcomes.filter((o) => o.outcome === 'exists').length
  io.log(
    dryRun
      ? `Annex '${parsed.name}': ${plural(existing, 'request')} of ${file} already there, ${missing.length} would be made (--dry-run).`
      : `Annex '${parsed.name}': ${plural(existing, 'request')} of ${file} already there, ${made} made${failed.length > 0 ? `, ${failed.length} failed` : ''}, over ${plural(logins, 'login')}.`,
  )
  if (failed.length > 0) {
    const exit = Math.max(...failed.map((f) => f.error!.exitCode)) as ExitCode
    if (io.json) process.exitCode = exit
    else throw new AnnexError(`${failed.length} request(s) of ${file} were not made: ${failed[0]!.error!.message}`, {exit, hint: `fix that, then run hpc-annex apply ${file} again: what exists is not made twice`})
  }
  return result
}
