import type {Plan, PlanTarball} from '../catalog/plan.js'
import {batchJobName, batchSystem} from '../batch/index.js'
import {DEFAULT_NODE_LOCAL_MIN_FREE_MB} from '../catalog/node-local.js'

export {batchJobName}
import {collectorEndpoint, endpointText} from './address.js'
import {classadString} from '../quote.js'

/**
 * What the Access Point supplies at create time; everything else the
 * templates need comes from the Plan. Every value here is quoted by the
 * render helpers wherever it lands.
 */
export interface ApContext {
  /** The request (state) job's GlobalJobID: hpc_annex_request_id. */
  requestId: string
  /** The collector pilots report to: --pool, else ANNEX_COLLECTOR, as the compute nodes can reach it. */
  collector: string
  /** The user's schedd, as the annex collector knows it (STARTD_DIRECT_ATTACH_SCHEDD_NAME). */
  scheddName: string
  /** sha256 (hex) of a tarball the front-end stages in the bundle (--condor-tarball); used whatever the login node's OS. */
  stagedTarballSha256?: string
  /** That tarball's file name on the Access Point, for the back-end's progress lines. */
  stagedTarballName?: string
  /**
   * Lets the back-end download a tarball whose sha256 the machine file does
   * not pin, trusting HTTPS on first use and recording the digest it got.
   * Without it such a download is refused.
   */
  allowUnpinnedDownload?: boolean
  /**
   * The container images of the annex's jobs: the name a job's ContainerImage
   * becomes, and the image's sha256. Each either travels in the bundle as
   * sif/<sha256> or is already in the login node's cache.
   */
  images?: {name: string; sha256: string}[]
}

/** Seconds the pilots leave, before the batch job's end, for shutting down and cleaning up. */
export const CLEANUP_TIME = 300

export interface TarballView {
  os: string
  url: string
  sha256: string
  /** The published checksum file, when no sha256 is pinned ('' otherwise). */
  checksumUrl: string
}

/** The object every template renders against: the Plan, the AP's values, and what follows from them. */
export interface RenderView {
  plan: Plan
  ap: ApContext & {stagedTarballSha256: string; stagedTarballName: string; allowUnpinnedDownload: boolean; images: {name: string; sha256: string}[]}
  cleanupTime: number
  jobName: string
  /** Comma-separated, as stringListMember takes it. */
  owners: string
  /** The batch job's wall time: the lifetime, in whole minutes, rounded up. */
  minutes: number
  /** Releases the back-end may use, matched against the login node's OS (one, fixed, for HTCondor-batch systems). */
  tarballs: TarballView[]
  /** The pilots' HTCondor version ('' before the Access Point's is known: a dry run). */
  htcondorVersion: string
  detectOs: boolean
  /** Options for optional lines: false when absent. */
  cpus: number | false
  memMb: number | false
  gpus: {flag: string; value: string} | false
  project: string | false
  constraint: string | false
  queueFlag: string | false
  queueName: string
  sshFanOut: boolean
  /** Where the back-end checks, from the login node, that the annex collector answers; false when the address cannot be read. */
  collectorCheck: {host: string; port: number; text: string} | false
  /** condor_q constraint finding this request's pilot job (HTCondor-batch systems). */
  requestConstraint: string
  /** Where each node's pilot puts job sandboxes: the directory expression (false: none, shared scratch) and the MB it must have free. */
  nodeLocal: {dir: string | false; minFreeMb: number}
  /** Extra batch directives: value false for a bare option (#SBATCH --exclusive). */
  batchOptions: {key: string; value: string | false}[]
  /** HTCondor-batch systems: the machine file's policy for the pilot job (false: not given). */
  pilotJob: {requirements: string | false; containerImage: string | false; diskPerCpuMb: number | false}
}

function tarballView(t: PlanTarball): TarballView {
  return {os: t.os, url: t.url, sha256: t.sha256 ?? '', checksumUrl: t.checksumUrl ?? ''}
}

/** Builds the render view. Pure. */
export function renderView(plan: Plan, ap: ApContext): RenderView {
  const batch = batchSystem(plan.system.batch)
  const policy = plan.pilotJob
  let tarballs = plan.htcondor.tarballs.map(tarballView)
  if (!batch.detectsLoginOs) {
    // One build, whatever the login node runs: the one for the pilots' container.
    const os = policy?.containerOs?.toLowerCase()
    const fixed = tarballs.find((t) => t.os.toLowerCase() === os) ?? tarballs[0]
    tarballs = fixed ? [fixed] : []
  }
  // HTCondor-batch pools get a request size even when one was left out.
  const cpus = plan.cpus ?? policy?.defaultCpus
  const memMb = plan.memMb ?? policy?.defaultMemMb
  const collector = collectorEndpoint(ap.collector)
  return {
    plan,
    ap: {...ap, stagedTarballSha256: ap.stagedTarballSha256 ?? '', stagedTarballName: ap.stagedTarballName ?? '', allowUnpinnedDownload: ap.allowUnpinnedDownload ?? false, images: ap.images ?? []},
    cleanupTime: CLEANUP_TIME,
    jobName: batchJobName(plan.annexName, ap.requestId),
    owners: plan.owners.join(','),
    minutes: Math.max(1, Math.ceil(plan.lifetime / 60)),
    tarballs,
    htcondorVersion: plan.htcondor.version ?? '',
    detectOs: batch.detectsLoginOs,
    cpus: cpus ?? false,
    memMb: memMb ?? false,
    gpus: plan.gpus ? {flag: plan.gpus.flag, value: plan.gpus.value} : false,
    project: plan.project ?? false,
    constraint: plan.constraint ?? false,
    queueFlag: plan.queueArgument[0] ?? false,
    queueName: plan.queueArgument[1] ?? plan.queue.name,
    sshFanOut: plan.fanOut === 'ssh',
    collectorCheck: collector ? {...collector, text: endpointText(collector)} : false,
    requestConstraint: `hpc_annex_request_id == ${classadString(ap.requestId)}`,
    nodeLocal: {dir: plan.nodeLocal?.dir ?? false, minFreeMb: plan.nodeLocal?.minFreeMb ?? DEFAULT_NODE_LOCAL_MIN_FREE_MB},
    batchOptions: (plan.batchOptions ?? []).map((o) => ({key: o.key, value: o.value ?? false})),
    pilotJob: {requirements: policy?.requirements ?? false, containerImage: policy?.containerImage ?? false, diskPerCpuMb: policy?.diskPerCpuMb ?? false},
  }
}
