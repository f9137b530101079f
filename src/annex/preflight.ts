import {randomBytes} from 'node:crypto'
import {constants, existsSync, mkdirSync, openSync, closeSync, writeSync, chmodSync, statSync} from 'node:fs'
import {basename, dirname, isAbsolute, resolve} from 'node:path'

import {adString, adValue, editJobs, queryCollector, queryJobs, type Ad, type AdValue} from '../condor/index.js'
import {AnnexError, systemError, userError} from '../errors.js'
import {classadString} from '../quote.js'

/** Queued jobs of an annex: the attributes the checks and the .sif staging read. */
export const ANNEX_JOB_ATTRIBUTES = [
  'ClusterId', 'ProcId', 'JobStatus', 'TargetAnnexName', 'ContainerImage', 'TransferContainer', 'WantContainer', 'ContainerImageFullPath', 'ContainerImageSource',
  'TransferInput', 'Iwd', 'hpc_annex_image_source',
]

/** Where a job's image came from, recorded when its ContainerImage is pointed at the staged copy, so a later add stages it again. */
export const IMAGE_SOURCE_ATTRIBUTE = 'hpc_annex_image_source'

function jobId(ad: Ad): string {
  return `${String(adValue(ad, 'ClusterId'))}.${String(adValue(ad, 'ProcId'))}`
}

/**
 * Not on its way out of the queue: a removed job (JobStatus 3) stays there
 * while it stops, as a state job caught running at its cron minute does. It
 * holds no name and needs no annex.
 */
const NOT_REMOVED = 'JobStatus =!= 3'

/** Whether any request (state job) for this annex name is in the user's queue. */
export async function annexNameExists(name: string): Promise<boolean> {
  const jobs = await queryJobs({constraint: `hpc_annex_name == ${classadString(name)} && ${NOT_REMOVED}`, attributes: ['ClusterId', 'ProcId']})
  return jobs.length > 0
}

/** `create` refuses a name already in use and points to `add`; `add` refuses a name never created. */
export async function checkAnnexNameRule(verb: 'create' | 'add', name: string): Promise<void> {
  nameRule(verb, name, await annexNameExists(name))
}

export function nameRule(verb: 'create' | 'add', name: string, exists: boolean): void {
  if (verb === 'create' && exists) {
    throw userError(`You've already created an annex named '${name}'.`, `hpc-annex add ${name} QUEUE@SYSTEM to request more resources for it`)
  }
  if (verb === 'add' && !exists) {
    throw userError(`You need to create an annex named '${name}' first.`, `hpc-annex create ${name} QUEUE@SYSTEM`)
  }
}

/**
 * One condor_q for the pre-flight: whether a request of this name exists
 * (its state jobs) and the queued jobs that target the annex. ClassAd string
 * comparison is case-insensitive, and so is the split.
 */
export async function annexQueue(name: string): Promise<{nameTaken: boolean; jobs: Ad[]}> {
  const literal = classadString(name)
  const ads = await queryJobs({
    constraint: `(hpc_annex_name == ${literal} || TargetAnnexName == ${literal}) && ${NOT_REMOVED}`,
    attributes: [...ANNEX_JOB_ATTRIBUTES, 'hpc_annex_name'],
  })
  const same = (value: unknown) => typeof value === 'string' && value.toLowerCase() === name.toLowerCase()
  return {
    nameTaken: ads.some((ad) => same(adValue(ad, 'hpc_annex_name'))),
    jobs: ads.filter((ad) => same(adValue(ad, 'TargetAnnexName'))),
  }
}

/** The user's queued jobs that target the annex. */
export async function annexJobs(name: string): Promise<Ad[]> {
  return queryJobs({constraint: `TargetAnnexName == ${classadString(name)}`, attributes: ANNEX_JOB_ATTRIBUTES})
}

/** HPC_ANNEX_REQUIRE_JOB: unless the admin turned it off, an annex needs a queued job first. */
export function checkRequireJob(requireJob: boolean, name: string, jobs: Ad[]): void {
  if (requireJob && jobs.length === 0) {
    throw userError(`No jobs for '${name}' are in the queue.`, `hpc-annex submit FILE --annex-name ${name} to add them first`)
  }
}

/** The name of the one schedd that reports to the annex collector; the pilots attach to it. */
export async function findScheddName(collector: string): Promise<string> {
  const ads = await queryCollector({pool: collector, kind: 'schedd', attributes: ['Name', 'MyAddress']})
  if (ads.length !== 1) {
    throw systemError(
      ads.length === 0
        ? `No scheduler reports to the annex collector ${collector}; this configuration is not supported.`
        : `Found ${ads.length} schedulers in the annex collector ${collector}; this configuration is not supported.`,
      {hint: "ask your HTCondor administrator to run 'hpc-annex admin check'"},
    )
  }
  const name = adString(ads[0]!, 'Name')
  if (name === undefined) throw systemError(`The scheduler ad in the annex collector ${collector} has no Name.`)
  return name
}

/** A container image to pre-stage for one job. */
export interface SifImage {
  jobId: string
  /** ContainerImage as the job has it. */
  containerImage: string
  /** The file on the Access Point (relative images are relative to the job's Iwd). */
  path: string
  /** The name it gets in the remote sif/ directory, and the job's new ContainerImage. */
  basename: string
  /** TransferInput as the job has it (undefined if none). */
  transferInput?: string
  /** The job's Iwd, against which relative TransferInput entries are read. */
  iwd?: string
  /** The job's own values of the attributes the edits change (null: undefined), to put back when the request fails. */
  before: Record<string, AdValue>
}

function truthy(value: unknown): boolean {
  return value === true || (typeof value === 'string' && /^true$/i.test(value))
}

/**
 * A container image given as a URL (osdf://, https://, file://, docker://, ...):
 * HTCondor's file transfer fetches it (a file:// URL names a file where the job
 * runs), so it is never a file on the Access Point.
 */
export function isImageUrl(image: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(image)
}

/**
 * The .sif images of the annex's jobs (jobs that transfer their container,
 * whose image ends in .sif and is a file on the Access Point; URLs pass
 * through untouched). A missing file is an error naming the job.
 */
export function findSifImages(jobs: Ad[]): SifImage[] {
  const images: SifImage[] = []
  for (const job of jobs) {
    // HTCondor before 24 says TransferContainer; condor_submit of 24 and later leaves it
    // undefined, says WantContainer, keeps the image's path in ContainerImageFullPath and
    // ContainerImage only its name, and lists the path in TransferInput.
    const transfer = adValue(job, 'TransferContainer')
    if (!truthy(transfer === undefined ? adValue(job, 'WantContainer') : transfer)) continue
    const source = adString(job, IMAGE_SOURCE_ATTRIBUTE)
    const image = source ?? adString(job, 'ContainerImageFullPath') ?? adString(job, 'ContainerImage')
    if (image === undefined || !basename(image).endsWith('.sif')) continue
    // condor_submit 24 and later also says where the image comes from: 'cedar' is a file of the Access Point.
    const from = adString(job, 'ContainerImageSource')
    if (isImageUrl(image) || (source === undefined && from !== undefined && from.toLowerCase() !== 'cedar')) continue
    const id = jobId(job)
    let path = image
    const iwd = adString(job, 'Iwd')
    if (!isAbsolute(image)) {
      if (iwd === undefined) throw systemError(`Job ${id} has a relative container image '${image}' but no Iwd.`)
      path = resolve(iwd, image)
    }
    if (!existsSync(path)) {
      throw userError(`Job ${id} specified container image '${path}', which doesn't exist.`, `fix or remove job ${id} (condor_rm ${id}), then try again`)
    }
    const transferInput = adString(job, 'TransferInput')
    const before = Object.fromEntries(['ContainerImage', IMAGE_SOURCE_ATTRIBUTE, 'TransferInput'].map((name) => [name, adString(job, name) ?? null]))
    images.push({jobId: id, containerImage: image, path, basename: basename(path), before, ...(transferInput === undefined ? {} : {transferInput}), ...(iwd === undefined ? {} : {iwd})})
  }
  return images
}

/** An existing password file must be the user's secret, as a --token_file must. */
function checkPrivatePasswordFile(path: string): void {
  if ((statSync(path).mode & 0o077) !== 0) throw userError(`The password file '${path}' is readable by others; run chmod 600 on it.`)
}

/**
 * The password file pilots and condor_off share: created with 16 random
 * bytes, mode 0400, only when missing; one that exists must not be readable
 * by others. Returns whether it was created.
 */
export function ensurePasswordFile(path: string): boolean {
  if (existsSync(path)) {
    checkPrivatePasswordFile(path)
    return false
  }
  mkdirSync(dirname(path), {recursive: true, mode: 0o700})
  let fd: number
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o400)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      checkPrivatePasswordFile(path)
      return false
    }
    throw systemError(`Password file ${path} does not exist and could not be created: ${(error as Error).message}`)
  }
  try {
    writeSync(fd, randomBytes(16))
  } finally {
    closeSync(fd)
  }
  chmodSync(path, 0o400)
  return true
}

/** The edits that point a job at its pre-staged image: ContainerImage = basename; the image leaves TransferInput. */
export function stagedImageEdits(image: SifImage): Record<string, AdValue> {
  const edits: Record<string, AdValue> = {ContainerImage: image.basename, [IMAGE_SOURCE_ATTRIBUTE]: image.path}
  if (image.transferInput !== undefined) {
    const entries = image.transferInput.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
    const isImage = (entry: string) => entry === image.containerImage || (image.iwd === undefined ? entry : resolve(image.iwd, entry)) === image.path
    const kept = entries.filter((entry) => !isImage(entry))
    if (kept.length !== entries.length) edits.TransferInput = kept.length ? kept.join(',') : null
  }
  return edits
}

/**
 * Applies stagedImageEdits to every job, before the back-end runs: a pilot
 * may match a job as soon as it starts, and must find it pointing at the
 * staged copy. Each job edited is added to `applied`, for revertImageEdits.
 */
export async function editJobsForStagedImages(images: SifImage[], applied: SifImage[] = []): Promise<void> {
  for (const image of images) {
    let edits: Record<string, AdValue>
    try {
      edits = stagedImageEdits(image)
      await editJobs(image.jobId, edits)
    } catch (error) {
      if (error instanceof AnnexError) throw error
      throw userError(`Job ${image.jobId}'s container image '${JSON.stringify(image.path).slice(1, -1)}' cannot be written into its job ad: ${(error as Error).message}`)
    }
    applied.push(image)
  }
}

/** Puts back, in each job, what editJobsForStagedImages changed (when the request fails). */
export async function revertImageEdits(images: SifImage[]): Promise<void> {
  for (const image of images) {
    const changed = Object.keys(stagedImageEdits(image))
    await editJobs(image.jobId, Object.fromEntries(changed.map((name) => [name, image.before[name] ?? null])))
  }
}
