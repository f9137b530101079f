/**
 * Each verb's --json output, made from what the verb computed: field by
 * field, so that nothing internal reaches it, in the names and units of
 * ./schemas.ts (whose types these return).
 */
import type {CacheResult} from '../../annex/cache.js'
import type {CreateResult} from '../../annex/create.js'
import type {MarkStartedResult} from '../../annex/mark-started.js'
import type {StatusReport} from '../../annex/status.js'
import {batchSystem} from '../../batch/index.js'
import {describeSubmitEstimate, type SubmitEstimate} from '../../batch/slurm-live.js'
import {describeCharge} from '../../catalog/charge.js'
import {urlRule, type Plan} from '../../catalog/index.js'
import type {CacheOutput, DryRunOutput, EstimateOutput, MarkStartedOutput, RequestResultOutput, StatusOutput} from './schemas.js'

type RequestFields = Omit<DryRunOutput, 'dryRun'>

/** What a create or add asks for, as --dry-run shows it and a real request reports it. */
function requestFields(verb: 'create' | 'add', plan: Plan, staged?: string): RequestFields {
  const {system, queue} = plan
  return {
    verb,
    annexName: plan.annexName,
    system: {key: system.key, name: system.name, batch: system.batch, source: system.source},
    queue: {
      name: queue.name,
      allocation: queue.allocation,
      maxNodes: queue.maxNodes,
      maxDurationSeconds: queue.maxDuration,
      coresPerNode: queue.coresPerNode,
      ramPerNodeMb: queue.ramPerNode,
      gpusPerNode: queue.gpusPerNode,
      maxJobsInQueue: queue.maxJobsInQueue,
    },
    nodes: plan.nodes,
    cpus: plan.cpus,
    memMb: plan.memMb,
    gpus: plan.gpus && {perNode: plan.gpus.perNode, count: plan.gpus.count, countPer: plan.gpus.countPer, type: plan.gpus.type, flag: plan.gpus.flag, value: plan.gpus.value},
    lifetimeSeconds: plan.lifetime,
    idleTimeSeconds: plan.idleTime,
    project: plan.project,
    constraint: plan.constraint,
    login: {host: plan.login.host, user: plan.login.user},
    pool: plan.pool,
    owners: plan.owners,
    tokenFile: plan.tokenFile,
    passwordFile: plan.passwordFile,
    tmpDir: plan.tmpDir,
    htcondor: {
      version: plan.htcondor.version,
      versionFrom: plan.htcondor.versionFrom,
      urlBase: plan.htcondor.urlBase,
      urlBaseFrom: plan.htcondor.urlBaseFrom,
      urlRule: urlRule(plan.htcondor),
      platforms: plan.htcondor.platforms,
      checksumFile: plan.htcondor.checksumFile,
      tarballs: plan.htcondor.tarballs.map((t) => ({os: t.os, url: t.url, sha256: t.sha256, checksumUrl: t.checksumUrl, verification: t.verification})),
      stagedTarball: staged,
    },
    pilotJob: plan.pilotJob && {
      requirements: plan.pilotJob.requirements,
      containerImage: plan.pilotJob.containerImage,
      containerOs: plan.pilotJob.containerOs,
      diskPerCpuMb: plan.pilotJob.diskPerCpuMb,
      defaultCpus: plan.pilotJob.defaultCpus,
      defaultMemMb: plan.pilotJob.defaultMemMb,
    },
    batchOptions: plan.batchOptions?.map((o) => ({key: o.key, value: o.value, from: o.from})),
    batchRequest: batchSystem(plan.system.batch).requestLine(plan),
    staging: plan.staging,
    charge: chargeJson(plan.charge),
  }
}

function chargeJson(charge: Plan['charge']): RequestFields['charge'] {
  const text = describeCharge(charge)
  if (!charge.known) return {known: false, reason: charge.reason, text}
  return {
    known: true,
    unit: charge.unit,
    per: charge.per,
    unitsPerNode: charge.unitsPerNode,
    basis: charge.basis,
    nodes: charge.nodes,
    hours: charge.hours,
    factor: charge.factor,
    maxAmount: charge.amount,
    account: charge.account,
    policy: charge.policy,
    text,
  }
}

export function dryRunJson(verb: 'create' | 'add', plan: Plan, staged?: string): DryRunOutput {
  return {dryRun: true, ...requestFields(verb, plan, staged)}
}

/** SLURM's start estimate (undefined: the batch system gives none), with the text shown for it. */
export function estimateJson(found: SubmitEstimate | undefined, text: string): EstimateOutput {
  if (found === undefined) return {available: false, text}
  if (!('estimate' in found)) return {available: false, nowEpochSeconds: found.now, ...(found.said ? {said: found.said} : {}), text}
  const {now, start, nodeList} = found.estimate
  return {available: true, nowEpochSeconds: now, startEpochSeconds: start, waitSeconds: Math.max(0, start - now), nodeList, text}
}

export function requestResultJson(plan: Plan, result: CreateResult): RequestResultOutput {
  return {
    dryRun: false,
    ...requestFields(result.verb, {...plan, htcondor: result.htcondor ?? plan.htcondor}, result.stagedTarball),
    requestId: result.requestId,
    stateJobId: result.stateJobId,
    batchJobId: result.batchJobId,
    pilotDir: result.pilotDir,
    loginHost: result.loginHost,
    images: result.images.map((i) => ({name: i.name, sha256: i.sha256, sizeBytes: i.bytes, sent: i.sent})),
    sentBytes: result.bytesSent,
    remoteCommands: result.remoteCommands,
    bundleFile: result.bundleFile,
    ...(result.estimate === undefined ? {} : {estimate: estimateJson(result.estimate, describeSubmitEstimate(result.estimate, result.nodes))}),
    ...(result.notices.length === 0 ? {} : {notices: result.notices}),
    warnings: result.warnings,
  }
}

export function statusJson(report: StatusReport): StatusOutput {
  return {
    annexName: report.name,
    annexes: report.annexes.map((annex) => ({
      annexName: annex.name,
      established: annex.established,
      nodes: {requested: annex.nodes.requested, joined: annex.nodes.joined},
      cpus: {total: annex.cpus.total, busy: annex.cpus.busy},
      jobs: {total: annex.jobs.total, running: annex.jobs.running},
      requests: {total: annex.requests.total, pending: annex.requests.pending, active: annex.requests.active, retired: annex.requests.retired},
      oldest: annex.oldest && {requestId: annex.oldest.requestId, ageSeconds: annex.oldest.ageSeconds, retiresInSeconds: annex.oldest.retiresInSeconds},
      youngest: annex.youngest && {requestId: annex.youngest.requestId, ageSeconds: annex.youngest.ageSeconds, retiresInSeconds: annex.youngest.retiresInSeconds},
      requestList: annex.requestList.map((r) => ({
        requestId: r.requestId,
        stateJobId: r.jobId,
        state: r.state,
        batchJobId: r.batchJobId,
        nodesRequested: r.nodesRequested,
        lifetimeSeconds: r.lifetime,
        nodesJoined: r.nodesJoined,
        cpus: r.cpus,
        busyCpus: r.busyCpus,
        firstStartEpochSeconds: r.firstStart,
        lastStartEpochSeconds: r.lastStart,
        submittedEpochSeconds: r.submittedAt,
        hint: r.hint,
        pilots: r.pilots.map((p) => ({name: p.name, executeOn: p.executeOn, executeDir: p.executeDir})),
        charge: r.charge && {unit: r.charge.unit, ratePerNodeHour: r.charge.ratePerNodeHour, chargedSoFar: r.charge.chargedSoFar, mostStillToCharge: r.charge.mostStillToCharge},
      })),
      charges: annex.charges.map((c) => ({unit: c.unit, chargedSoFar: c.chargedSoFar, mostStillToCharge: c.mostStillToCharge})),
      unchargedRequests: annex.unchargedRequests,
    })),
    timeEpochSeconds: report.time,
    ...(report.notices === undefined ? {} : {notices: report.notices}),
  }
}

export function cacheJson(result: CacheResult): CacheOutput {
  const fs = result.fileSystem
  return {
    system: result.system,
    login: result.login,
    cacheDir: result.cacheDir,
    exists: result.exists,
    nowEpochSeconds: result.now,
    totalBytes: result.totalBytes,
    entries: result.entries.map((e) => ({
      name: e.name,
      kind: e.kind,
      sizeBytes: e.bytes,
      lastUseEpochSeconds: e.lastUse,
      label: e.label,
      annexes: e.annexes,
      usedBy: e.usedBy.map((use) => ({annexName: use.annex, pilotDir: use.pilotDir})),
      links: e.links,
      inUse: e.inUse,
      decision: e.decision,
      reason: e.reason,
    })),
    quota: result.quota,
    fileSystem: fs && {name: fs.name, sizeBytes: fs.bytes, usedBytes: fs.usedBytes, availableBytes: fs.availableBytes, mountedOn: fs.mountedOn},
    prune: result.prune && {
      dryRun: result.prune.dryRun,
      olderThanDays: result.prune.olderThanDays,
      keepBytes: result.prune.keepBytes,
      removed: result.prune.removed,
      removedBytes: result.prune.removedBytes,
      kept: result.prune.kept,
      failed: result.prune.failed,
      totalBytesAfter: result.prune.totalBytesAfter,
    },
  }
}

export function markStartedJson(result: MarkStartedResult): MarkStartedOutput {
  return {stateJobId: result.jobId, requestId: result.requestId, startEpochSeconds: result.startTime, marked: result.marked}
}
