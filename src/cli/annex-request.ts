import {open} from 'node:fs/promises'
import {userInfo} from 'node:os'
import {basename} from 'node:path'

import type {CreateOutput, CreateResult, CreateVerb} from '../annex/create.js'
import {batchSystem} from '../batch/index.js'
import {describeSubmitEstimate} from '../batch/slurm-live.js'
import {checkMaxCharge, describeCharge, parseMaxCharge} from '../catalog/charge.js'
import {describeDownload, describePlan, loadCatalog, pinVersion, validateRequest, type Plan, type RequestInput} from '../catalog/index.js'
import {plural, userError} from '../errors.js'
import type {Transport, TransportKind} from '../ssh/transport.js'
import {interruptSignal, withInterruptGuard} from './interrupt.js'
import {dryRunJson, estimateJson, requestResultJson} from './json/project.js'
import type {CreateOutputJson} from './json/schemas.js'
import {lazyTransport} from './lazy-transport.js'
import {Flags} from './oclif.js'
import {requestInput} from './request-flags.js'
import {sshFlag} from './ssh-flag.js'

/** How a create or add is carried out, beyond what is requested. */
export const deliveryFlags = {
  'dry-run': Flags.boolean({description: 'Validate and print the plan; touch no network and no HTCondor tool.'}),
  // HTCondor's hidden --test (validate only): --dry-run, by its other name.
  test: Flags.boolean({hidden: true, description: 'The same as --dry-run (HTCondor\'s name for it).'}),
  emit: Flags.string({
    description: 'With --dry-run: write every generated file (back-end, batch script, pilot configuration, pilots) into DIR.',
    helpValue: 'DIR',
  }),
  bundle: Flags.string({
    description: 'Write a self-service bundle (with setup.sh) to FILE instead of logging in, for systems that allow no automated SSH.',
    helpValue: 'FILE',
  }),
  'condor-tarball': Flags.string({
    description: 'Stage this local HTCondor tarball into the login node\'s cache instead of downloading one there.',
    helpValue: 'PATH',
  }),
  'condor-version': Flags.string({
    description: 'The HTCondor version the pilots run (default: the machine file\'s, else the Access Point\'s own, from condor_version).',
    helpValue: 'VERSION',
  }),
  'allow-unpinned-download': Flags.boolean({
    description: 'Let the login node download an HTCondor tarball that no pinned sha256 and no published checksum file vouches for (trust on first use).',
  }),
  estimate: Flags.boolean({
    description: 'Log in once and ask SLURM when the request would start (sbatch in its test-only mode, given the batch script\'s own directives); submit nothing.',
  }),
  'max-charge': Flags.string({
    description: 'Refuse the request, before any login, when the most it can charge (nodes × lifetime × the queue\'s rate) is more than this, in the system\'s unit (e.g. SUs).',
    helpValue: 'N',
  }),
  ssh: sshFlag,
  'stall-timeout': Flags.integer({
    description: 'Seconds a remote step may make no progress (no byte sent or received) before it fails; a slow but moving transfer never times out.',
    helpValue: 'SECONDS',
    default: 120,
    min: 5,
  }),
}

export type DeliveryValues = {
  'dry-run'?: boolean
  test?: boolean
  emit?: string
  bundle?: string
  'condor-tarball'?: string
  'condor-version'?: string
  'allow-unpinned-download'?: boolean
  'max-charge'?: string
  estimate?: boolean
  ssh?: TransportKind
  'stall-timeout': number
}

/**
 * --condor-tarball: refused now when it cannot be read; its sha256 (a
 * release is tens of MiB) is computed beside the Access Point checks and the
 * login, not before them.
 */
async function stagedTarball(path: string): Promise<{path: string; sha256: Promise<string>}> {
  const unreadable = (error: unknown) => userError(`Cannot read the HTCondor tarball '${path}' (${(error as Error).message}); change --condor-tarball.`)
  try {
    const file = await open(path, 'r')
    const info = await file.stat().finally(() => file.close())
    if (!info.isFile()) throw new Error('not a file')
  } catch (error) {
    throw unreadable(error)
  }
  const {sha256File} = await import('../backend/digest.js')
  const sha256 = sha256File(path).catch((error: unknown) => {
    throw unreadable(error)
  })
  // Awaited where it is used; a request that fails before then must not also report this.
  sha256.catch(() => undefined)
  return {path, sha256}
}

/**
 * --token_file: checked before anything else, with --dry-run too (as
 * --condor-tarball is): it must be a file this user can read and others cannot.
 */
async function checkTokenFile(path: string): Promise<void> {
  let mode: number
  try {
    const file = await open(path, 'r')
    const info = await file.stat().finally(() => file.close())
    if (!info.isFile()) throw new Error('not a file')
    mode = info.mode
  } catch (error) {
    throw userError(`Cannot read the token file '${path}' (${(error as Error).message}); change --token_file.`)
  }
  if ((mode & 0o077) !== 0) throw userError(`The token file '${path}' is readable by others; run chmod 600 on it.`)
}

/**
 * --emit DIR: refused before the plan is printed when DIR is not a directory
 * (or cannot be made one): the dry run does nothing it cannot finish.
 */
async function checkEmitDirectory(dir: string): Promise<void> {
  const {stat, access} = await import('node:fs/promises')
  const {dirname, resolve} = await import('node:path')
  const info = await stat(dir).catch(() => undefined)
  if (info !== undefined) {
    if (!info.isDirectory()) throw userError(`--emit '${dir}' is not a directory; give a directory (it is made when missing).`)
    await access(dir, 2).catch(() => {
      throw userError(`--emit '${dir}' is a directory you cannot write to; change --emit.`)
    })
    return
  }
  // Made when missing: the nearest existing parent must be a directory this user can write to.
  let parent = dirname(resolve(dir))
  for (;;) {
    const above = await stat(parent).catch(() => undefined)
    if (above !== undefined) {
      if (!above.isDirectory()) throw userError(`--emit '${dir}' cannot be made: '${parent}' is not a directory; change --emit.`)
      await access(parent, 2).catch(() => {
        throw userError(`--emit '${dir}' cannot be made in '${parent}', which you cannot write to; change --emit.`)
      })
      return
    }
    parent = dirname(parent)
  }
}

/** What create and add print under --json: what was asked for, and with a real request what became of it (src/cli/json/schemas.ts). */
export type RequestOutcome = CreateOutputJson

/**
 * create and add: validate (no network), then either describe (--dry-run)
 * or carry the request out. `log` prints for people; under --json nothing
 * but the returned value is printed.
 */
export async function runRequest(
  verb: CreateVerb,
  args: {name: string; target: string},
  flags: Parameters<typeof requestInput>[1] & DeliveryValues,
  io: RequestIo,
): Promise<RequestOutcome> {
  return runRequestInput(verb, requestInput(args, flags), flags, io)
}

/** Where a request's output goes, and (apply, the library) what it logs in with. */
export interface RequestIo {
  log: (line: string) => void
  json: boolean
  /** The login to use instead of a fresh one (apply shares one per login node). */
  transport?: () => Transport
}

/** runRequest for a request already in the catalog's terms (the library API, apply). */
export async function runRequestInput(verb: CreateVerb, input: RequestInput, flags: DeliveryValues, io: RequestIo): Promise<RequestOutcome> {
  const dryRun = flags['dry-run'] === true || flags.test === true
  if (dryRun && flags.bundle !== undefined) throw userError('--bundle and --dry-run cannot be used together; drop one of them.')
  if (!dryRun && flags.emit !== undefined) throw userError('--emit goes with --dry-run; add --dry-run, or drop --emit.')
  if (flags['condor-version'] !== undefined && flags['condor-tarball'] !== undefined) {
    throw userError('--condor-version and --condor-tarball cannot be used together: the staged tarball is the version; drop one of them.')
  }
  const maxChargeLimit = parseMaxCharge(flags['max-charge'])
  let plan = validateRequest(loadCatalog(), input, {defaultOwner: userInfo().username})
  if (flags['condor-version'] !== undefined) plan = {...plan, htcondor: pinVersion(plan.htcondor, flags['condor-version'])}
  checkMaxCharge(plan.charge, maxChargeLimit)
  if (plan.tokenFile !== undefined) await checkTokenFile(plan.tokenFile)
  if (dryRun && flags.emit !== undefined) await checkEmitDirectory(flags.emit)
  if (flags.estimate && (dryRun || flags.bundle !== undefined)) throw userError(`--estimate logs in and submits nothing; drop ${dryRun ? '--dry-run' : '--bundle'}.`)
  if (flags.estimate) return estimateOnly(verb, plan, flags, io)
  const tarball = flags['condor-tarball'] === undefined ? undefined : await stagedTarball(flags['condor-tarball'])
  if (dryRun) {
    io.log(describePlan(plan))
    const staged = tarball === undefined ? undefined : basename(tarball.path)
    // HTCondor-batch systems run the build for the pilots' container, whatever the login node runs.
    const fixedPlatform = batchSystem(plan.system.batch).detectsLoginOs ? undefined : (plan.pilotJob?.containerOs ?? plan.htcondor.platforms[0])
    const how = {...(staged === undefined ? {} : {staged}), ...(fixedPlatform === undefined ? {} : {fixedPlatform}), allowUnpinned: flags['allow-unpinned-download'] === true}
    io.log(describeDownload(plan.htcondor, how).join('\n'))
    if (flags.emit !== undefined) {
      const {dryRunContext, emitFiles, renderFiles} = await import('../backend/index.js')
      const context = dryRunContext(plan, {
        ...(tarball ? {stagedTarballSha256: await tarball.sha256, stagedTarballName: basename(tarball.path)} : {}),
        ...(flags['allow-unpinned-download'] ? {allowUnpinnedDownload: true} : {}),
      })
      const written = await emitFiles(flags.emit, renderFiles(plan, context, {setup: true}))
      io.log(`Wrote ${written.length} generated files (Access Point values are placeholders) to ${flags.emit}.`)
    }
    io.log('Nothing was submitted (--dry-run).')
    return dryRunJson(verb, plan, tarball === undefined ? undefined : basename(tarball.path))
  }
  // Loaded only for a real request: --dry-run starts faster without listr, the condor tools and the
  // staging code (templates, tar); the SSH code only when the login starts, after the Access Point checks.
  const [{createAnnex}, {TerminalInteraction}] = await Promise.all([import('../annex/create.js'), import('./prompt.js')])
  // Said before the login, on stderr with the steps: stdout is the result's.
  if (!io.json) process.stderr.write(`${describeCharge(plan.charge)}\n`)
  const interaction = new TerminalInteraction({system: plan.system.key, log: io.json ? null : (line) => process.stderr.write(`${line}\n`)})
  const sshConfigFile = process.env.HPC_ANNEX_SSH_CONFIG
  const result = await withInterruptGuard(() =>
    createAnnex({
      verb,
      plan,
      transport: io.transport ?? (() => lazyTransport(flags.ssh, {interactive: interaction.interactive})),
      interaction,
      ...(sshConfigFile ? {sshConfigFile} : {}),
      ...(tarball ? {condorTarball: tarball} : {}),
      ...(flags['allow-unpinned-download'] ? {allowUnpinnedDownload: true} : {}),
      ...(flags.bundle === undefined ? {} : {bundleFile: flags.bundle}),
      stallTimeout: flags['stall-timeout'],
      signal: interruptSignal(),
      output: progressOutput(io.json),
    }),
  )
  io.log(describeResult(result))
  return requestResultJson(plan, result)
}

/** --estimate: the plan and when SLURM would start it; one login, nothing submitted. */
async function estimateOnly(verb: CreateVerb, plan: Plan, flags: DeliveryValues, io: {log: (line: string) => void; json: boolean}): Promise<RequestOutcome> {
  const [{estimateStart}, {describeEstimate}, {loginOptions}] = await Promise.all([import('../annex/live.js'), import('../batch/slurm-live.js'), import('./login.js')])
  io.log(describePlan(plan))
  const result = await estimateStart(plan, {login: loginOptions(flags.ssh, io.json, plan.tmpDir), signal: interruptSignal()})
  const estimate = result.estimate
  const text = estimate === undefined
    ? `${plan.system.name}'s batch system is HTCondor: no start estimate is available.`
    : `The request ${describeEstimate(estimate, plan.nodes)} (sbatch --test-only on ${plan.queue.name}@${plan.system.key}).`
  io.log(text)
  io.log('Nothing was submitted (--estimate).')
  return {
    ...dryRunJson(verb, plan),
    estimate: estimateJson(estimate === undefined ? undefined : {estimate}, text),
  }
}

/** What was asked for and how to follow it. */
export function describeResult(result: CreateResult): string {
  const minutes = Math.ceil(result.lifetime / 60)
  const lines: string[] = []
  const what = `${plural(result.nodes, 'node')} for ${plural(minutes, 'minute')} from ${result.queue}@${result.system}`
  if (result.bundleFile !== undefined) {
    lines.push(`Wrote the self-service bundle for annex '${result.annexName}' (${what}) to ${result.bundleFile}.`)
    lines.push(`On the login node: tar -xf ${result.bundleFile.split('/').at(-1)} && hpc-annex-${result.annexName}/setup.sh`)
    lines.push('It holds the annex token: copy it only to the login node, and delete it there once set-up has run.')
  } else {
    const sent = result.images.filter((i) => i.sent).length
    const images = result.images.length === 0 ? '' : ` ${plural(result.images.length, 'container image')} staged (${result.images.length - sent} from the login node's cache).`
    lines.push(`${result.verb === 'add' ? 'Added to' : 'Created'} annex '${result.annexName}': requested ${what} as batch job ${result.batchJobId} on ${result.loginHost}.${images}`)
    lines.push('It may take a while for the batch system to start the job; the annex lives for its lifetime from then.')
    if (result.estimate !== undefined) lines.push(describeSubmitEstimate(result.estimate, result.nodes))
    for (const warning of result.warnings) lines.push(`warning: ${warning}`)
    for (const notice of result.notices) lines.push(`note: ${notice}`)
  }
  lines.push(`Follow it with: hpc-annex status ${result.annexName}`)
  return lines.join('\n')
}

/**
 * How a create shows its steps: nothing under --json; live (redrawn) where it
 * draws, a terminal on stdout and stderr wide enough to draw on (`script`
 * without a terminal gives one of 0 columns); plain lines on stderr otherwise.
 */
export function progressOutput(json: boolean, streams: {stdout: Partial<NodeJS.WriteStream>; stderr: Partial<NodeJS.WriteStream>} = process): CreateOutput {
  if (json) return 'silent'
  const drawable = (stream: Partial<NodeJS.WriteStream>) => stream.isTTY === true && (stream.columns ?? 0) >= 20
  return drawable(streams.stdout) && drawable(streams.stderr) ? 'tty' : 'plain'
}
