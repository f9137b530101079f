import {userError} from '../errors.js'
import {resolveBatchOptions} from './batch-options.js'
import {maxCharge} from './charge.js'
import {checkUrlBase, DEFAULT_CHECKSUM_FILE, DEFAULT_TARBALL_URL_BASE, resolveDownload} from './download.js'
import {findSystem, requireSystem, type Catalog, type Machine} from './load.js'
import {nodeLocalOf} from './node-local.js'
import type {Plan, PlanGpus, PlanQueue} from './plan.js'
import {parseRequest, splitTarget, type Request, type RequestInput} from './request.js'
import type {QueueDefinition, ShapeDefinition} from './schema.js'

/** A queue with its shape (if any) applied: the limits a request is checked against. */
export interface ResolvedQueue extends PlanQueue {
  definition: QueueDefinition
  shape?: ShapeDefinition
  constraint?: string
}

function queueList(machine: Machine): string {
  return `${Object.keys(machine.queues).join(', ')} (default: ${machine.default_queue})`
}

function systemList(catalog: Catalog): string {
  return [...catalog.systems.keys()].join(', ')
}

/** The machine a QUEUE@SYSTEM names, or an error that lists what exists. */
function resolveTarget(catalog: Catalog, target: string): {machine: Machine; queue: string; system: string} {
  const split = splitTarget(target)
  if (!split) {
    const asSystem = findSystem(catalog, target.replace(/@/g, ''))
    if (asSystem) {
      throw userError(`Give the queue as QUEUE@SYSTEM, e.g. '${asSystem.default_queue}@${asSystem.key}'; queues on ${asSystem.name}: ${queueList(asSystem)}.`)
    }
    throw userError(`Give the queue as QUEUE@SYSTEM (e.g. 'wholenode@anvil'), not '${target}'; systems: ${systemList(catalog)}. See 'hpc-annex systems'.`)
  }
  const machine = requireSystem(catalog, split.system, 'Change the SYSTEM in QUEUE@SYSTEM.')
  return {machine, ...split}
}

/** Rule 1 (and the shape the request selects): the queue exists on the system. */
export function resolveQueue(machine: Machine, queueName: string, request: Pick<Request, 'gpus' | 'gpuType' | 'gpuTypeFrom'>): ResolvedQueue {
  let name = queueName in machine.queues ? queueName : undefined
  if (name === undefined) {
    const folded = Object.keys(machine.queues).filter((q) => q.toLowerCase() === queueName.toLowerCase())
    if (folded.length === 1) name = folded[0]
  }
  const definition = name === undefined ? undefined : machine.queues[name]
  if (name === undefined || definition === undefined) {
    throw userError(`'${queueName}' is not a queue on ${machine.name}; supported queues: ${queueList(machine)}. Change the QUEUE in QUEUE@SYSTEM.`)
  }
  let shape: ShapeDefinition | undefined
  if (definition.shapes) {
    shape = definition.shapes.find((s) =>
      (s.when_gpus_asked === undefined || s.when_gpus_asked === (request.gpus !== undefined)) &&
      (s.when_gpu_type === undefined || s.when_gpu_type === request.gpuType) &&
      (s.when_gpus === undefined || s.when_gpus === request.gpus))
    if (!shape) {
      if (definition.gpu_types) {
        if (request.gpuType !== undefined && !definition.gpu_types.includes(request.gpuType)) throw unknownGpuType(machine, name, definition.gpu_types, request)
        throw userError(`The '${name}' queue on ${machine.name} has these GPU types: ${definition.gpu_types.join(', ')}; choose one with --gpu-type (or --gpus TYPE:N).`)
      }
      throw userError(`No node shape of the '${name}' queue on ${machine.name} fits this request; change --gpus.`)
    }
  }
  const pick = <K extends 'max_nodes' | 'cores_per_node' | 'ram_per_node' | 'gpus_per_node' | 'constraint'>(key: K) =>
    shape?.[key] ?? definition[key]
  const resolved: ResolvedQueue = {
    name,
    allocation: definition.allocation,
    maxNodes: pick('max_nodes') ?? definition.max_nodes,
    maxDuration: definition.max_duration,
    definition,
  }
  const optional = {
    coresPerNode: pick('cores_per_node'),
    ramPerNode: pick('ram_per_node'),
    gpusPerNode: pick('gpus_per_node'),
    maxJobsInQueue: definition.max_jobs_in_queue,
    constraint: pick('constraint') ?? machine.constraint,
    shape,
  }
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value
  }
  return resolved
}

/** A GPU type the queue does not have, named with the flag that gave it. */
function unknownGpuType(machine: Machine, queue: string, types: string[], request: Pick<Request, 'gpuType' | 'gpuTypeFrom' | 'gpus'>) {
  const flag = request.gpuTypeFrom ?? '--gpu-type'
  const given = flag === '--gpus' ? `--gpus ${request.gpuType}:${request.gpus}` : `--gpu-type ${request.gpuType}`
  return userError(`${machine.name} has no GPU type '${request.gpuType}' on the '${queue}' queue (${given}); its types: ${types.join(', ')}. Change ${flag}.`)
}

/** Rules 2–13 of the catalog, in order; returns the GPUs as they will be sent. */
function checkLimits(machine: Machine, q: ResolvedQueue, r: Request): PlanGpus | undefined {
  const noun = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  const maxNodes = () => {
    if (r.nodes > q.maxNodes) throw userError(`The '${q.name}' queue is limited to ${noun(q.maxNodes, 'node')} per job; change --nodes.`)
  }
  // 2. A shared-node queue needs CPUs or memory.
  if (q.allocation === 'cores_or_ram' && r.cpus === undefined && r.memMb === undefined) {
    throw userError(`The '${q.name}' queue is a shared-node queue: give --cpus and/or --mem_mb for each node.`)
  }
  // 3. A whole-node queue takes nodes only.
  if (q.allocation === 'node') {
    if (r.cpus !== undefined || r.memMb !== undefined) {
      throw userError(`The '${q.name}' queue is a whole-node queue: remove --cpus and --mem_mb and ask for --nodes.`)
    }
    maxNodes()
  }
  // 4. A shared-node request must fit one node.
  if (q.allocation === 'cores_or_ram') {
    if (r.memMb !== undefined && q.ramPerNode !== undefined && r.memMb > q.ramPerNode) {
      throw userError(`The '${q.name}' queue is limited to ${q.ramPerNode} MB per node; change --mem_mb.`)
    }
    if (r.cpus !== undefined && q.coresPerNode !== undefined && r.cpus > q.coresPerNode) {
      throw userError(`The '${q.name}' queue is limited to ${q.coresPerNode} CPUs per node; change --cpus.`)
    }
    maxNodes()
  }
  // 5. CPUs and memory follow the GPUs.
  if (q.allocation === 'gpu-shared') {
    if (r.cpus !== undefined || r.memMb !== undefined) {
      throw userError(`The '${q.name}' queue assigns CPUs and memory in proportion to the GPUs: remove --cpus and --mem_mb.`)
    }
    maxNodes()
  }
  // 6. Lifetime within the queue's wall-time limit.
  if (r.lifetime > q.maxDuration) {
    throw userError(`The '${q.name}' queue allows at most ${q.maxDuration} seconds, less than the requested lifetime (${r.lifetime} seconds); change --lifetime.`)
  }
  // 7. Idle time within the lifetime.
  if (r.idleTime > r.lifetime) {
    throw userError(`The idle time (${r.idleTime} seconds) may not be longer than the lifetime (${r.lifetime} seconds); change --idle-time or --lifetime.`)
  }
  // 8. Some systems need a project even if the user has only one.
  if (machine.project_required && r.project === undefined) {
    throw userError(`${machine.name} requires a project (allocation) even if you have only one; add --project.`)
  }
  // 9. GPU queues.
  let perNode: number | undefined
  if (q.gpusPerNode !== undefined) {
    perNode = r.gpus ?? (q.allocation === 'node' ? q.gpusPerNode : undefined)
    if (perNode === undefined) throw userError(`The '${q.name}' queue is a GPU queue: give the number of GPUs per node with --gpus.`)
    if (perNode > q.gpusPerNode) throw userError(`The '${q.name}' queue is limited to ${q.gpusPerNode} GPUs per node; change --gpus.`)
    if (q.allocation === 'node' && perNode < q.gpusPerNode) {
      throw userError(`The '${q.name}' queue always assigns (and charges for) all ${q.gpusPerNode} GPUs of a node; set --gpus ${q.gpusPerNode} or leave it out.`)
    }
  }
  // 10. No GPUs from a queue without them.
  if (q.gpusPerNode === undefined && r.gpus !== undefined) {
    throw userError(`The '${q.name}' queue on ${machine.name} does not offer GPUs; remove --gpus.`)
  }
  // 11. A GPU type only where there is a choice, and one of the choices.
  if (r.gpuType !== undefined) {
    const types = q.definition.gpu_types
    if (!types) {
      if (r.gpuTypeFrom === '--gpus') {
        throw userError(`The '${q.name}' queue on ${machine.name} offers no choice of GPU type, so --gpus takes a count only: --gpus ${r.gpus}, not '${r.gpuType}:${r.gpus}'.`)
      }
      throw userError(`The '${q.name}' queue on ${machine.name} offers no choice of GPU type; remove --gpu-type ${r.gpuType}.`)
    }
    if (!types.includes(r.gpuType)) throw unknownGpuType(machine, q.name, types, r)
  }
  // 12. Queue-specific rules, written as data in the machine file.
  if (q.definition.mem_mb === 'forbidden' && r.memMb !== undefined) {
    throw userError(`The '${q.name}' queue assigns memory in proportion to the CPUs; remove --mem_mb.`)
  }
  const multiple = q.definition.cpus_multiple_of
  if (multiple !== undefined && (r.cpus === undefined || r.cpus % multiple !== 0)) {
    throw userError(`The '${q.name}' queue takes CPUs in multiples of ${multiple}; set --cpus to ${multiple}, ${multiple * 2}, ...`)
  }
  // 13. What is sent: GPUs per job where the machine counts them so.
  if (perNode === undefined) return undefined
  const countPer = q.definition.gpu_count
  const count = countPer === 'job' ? perNode * r.nodes : perNode
  const type = r.gpuType
  return {
    perNode,
    count,
    countPer,
    ...(type === undefined ? {} : {type}),
    flag: `--${machine.gpu_flag}`,
    value: machine.gpu_flag_includes_type && type !== undefined ? `${type}:${count}` : String(count),
  }
}

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

function planHTCondor(machine: Machine): Plan['htcondor'] {
  const {version, url, url_base, os, sha256, checksum_file} = machine.htcondor
  return resolveDownload({
    ...(version === undefined ? {} : {version}),
    versionFrom: version === undefined ? 'Access Point' : 'machine file',
    urlBase: url_base === undefined ? DEFAULT_TARBALL_URL_BASE : checkUrlBase(url_base, 'htcondor.url_base'),
    urlBaseFrom: url_base === undefined ? 'default' : 'machine file',
    ...(url === undefined ? {} : {urlTemplate: url}),
    platforms: [...os],
    machineSha256: {...sha256},
    checksumFile: checksum_file ?? DEFAULT_CHECKSUM_FILE,
    tarballs: [],
  })
}

function pilotJob(machine: Machine): Plan['pilotJob'] {
  if (machine.batch !== 'htcondor') return undefined
  const policy = machine.pilot_job
  const job: NonNullable<Plan['pilotJob']> = {defaultCpus: policy?.default_cpus ?? 1, defaultMemMb: policy?.default_mem_mb ?? 2048}
  if (policy?.requirements !== undefined) job.requirements = policy.requirements
  if (policy?.container_image !== undefined) job.containerImage = policy.container_image
  if (policy?.container_os !== undefined) job.containerOs = policy.container_os
  if (policy?.disk_per_cpu_mb !== undefined) job.diskPerCpuMb = policy.disk_per_cpu_mb
  return job
}

export interface ValidateOptions {
  /** Owners when --owners is not given: the user running the tool. */
  defaultOwner: string
}

/**
 * Validates a request against the catalog and resolves it into a Plan.
 * Pure: reads nothing but its arguments. Throws a one-line AnnexError (exit 1)
 * naming the flag to change.
 */
export function validateRequest(catalog: Catalog, input: RequestInput, options: ValidateOptions): Plan {
  const {machine, queue: queueName} = resolveTarget(catalog, input.target)
  const request = parseRequest(input, {queue: queueName, system: machine.key})
  const queue = resolveQueue(machine, queueName, request)
  const gpus = checkLimits(machine, queue, request)
  const memMb = request.memMb ?? (queue.definition.mem_mb === 'node-default' ? queue.ramPerNode : undefined)
  const queueArgument = machine.batch === 'htcondor' ? [] : [machine.queue_flag === 'qos' ? '-q' : '-p', queue.name]
  const {definition: _definition, shape: _shape, constraint, ...planQueue} = queue
  const batchOptions = resolveBatchOptions(machine.batch, queue.definition.batch_options ?? {}, input.batchOptions ?? [], {
    queueIsQos: machine.queue_flag === 'qos',
    ...(constraint === undefined ? {} : {constraint}),
  })
  const staging = [
    'the back-end script, generated for this machine',
    'the pilot and its multi-node launcher',
    'the pilot HTCondor configuration',
    'a short-lived HTCondor token for the annex (minted at create time)',
    'the annex password file',
    `HTCondor ${machine.htcondor.version ?? "of the Access Point's version"} (from the login node's cache, or downloaded there once and verified)`,
    'the .sif container images of your queued jobs for this annex (if any)',
  ]
  const plan: Plan = {
    annexName: request.name,
    system: {
      key: machine.key,
      name: machine.name,
      batch: machine.batch,
      source: machine.source,
      ...(machine.cache_max_bytes === undefined ? {} : {cacheMaxBytes: machine.cache_max_bytes}),
    },
    queue: planQueue,
    queueArgument,
    nodes: request.nodes,
    lifetime: request.lifetime,
    idleTime: request.idleTime,
    login: {host: request.loginHost ?? machine.host, hostFromFlag: request.loginHost !== undefined},
    owners: request.owners ?? [options.defaultOwner],
    scratch: machine.scratch,
    nodeLocal: nodeLocalOf(machine, queue.definition),
    memoryChunkMb: machine.memory_chunk_mb,
    fanOut: machine.fan_out,
    htcondor: planHTCondor(machine),
    configFragment: machine.config_fragment,
    shellFragment: machine.shell_fragment,
    pilotDirFragment: machine.pilot_dir_fragment,
    staging,
    charge: maxCharge(queue.definition.charge, {
      nodes: request.nodes,
      lifetime: request.lifetime,
      ...defined({
        cpus: request.cpus,
        memMb: request.memMb,
        gpus: gpus?.perNode,
        coresPerNode: queue.coresPerNode,
        gpusPerNode: queue.gpusPerNode,
        account: request.project,
        shapeFactor: queue.shape?.charge_factor,
      }),
    }),
  }
  const optional: Partial<Plan> = {
    cpus: request.cpus,
    memMb,
    gpus,
    project: request.project,
    constraint,
    pool: request.pool,
    tokenFile: request.tokenFile,
    passwordFile: request.passwordFile,
    tmpDir: request.tmpDir,
    pilotJob: pilotJob(machine),
    batchOptions: batchOptions.length === 0 ? undefined : batchOptions,
  }
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (plan as unknown as Record<string, unknown>)[key] = value
  }
  if (request.loginName !== undefined) plan.login.user = request.loginName
  return plan
}
