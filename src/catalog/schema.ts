import {z} from '../vendor/zod.js'
import {batchOptionProblem} from './batch-options.js'
import {chargeSchema} from './charge.js'
import {checkUrlBase, HEX_SHA256} from './download.js'
import {DEFAULT_NODE_LOCAL_MIN_FREE_MB} from './node-local.js'

/**
 * The schema of a machine file (backends/<key>.toml). Strict: an unknown key
 * is an error, so a misspelt limit never silently disappears.
 */
const positive = z.number().int().positive()
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')

/**
 * Bash expression, evaluated by the pilot on each compute node, of the
 * node-local directory job sandboxes go under ('' : none, so shared scratch).
 */
const nodeLocalDir = z.string().regex(/^[^\r\n"]*$/, 'one line, without double quotes (the pilot expands it inside them)')

/** A queue's limits; also what a shape may override. */
const limits = {
  max_nodes: positive,
  cores_per_node: positive,
  ram_per_node: positive,
  gpus_per_node: positive,
  constraint: z.string().regex(/^[A-Za-z0-9_&|,.:*-]+$/, 'a SLURM constraint expression'),
}

/**
 * A shape is a variant of a queue's nodes, chosen by what the user asks for
 * (GPUs or not, a GPU type, a GPU count). The first shape whose conditions all
 * hold applies its limits over the queue's.
 */
const shape = z
  .object({
    label: z.string().min(1),
    when_gpus_asked: z.boolean().optional(),
    when_gpu_type: z.string().min(1).optional(),
    when_gpus: positive.optional(),
    max_nodes: limits.max_nodes.optional(),
    cores_per_node: limits.cores_per_node.optional(),
    ram_per_node: limits.ram_per_node.optional(),
    gpus_per_node: limits.gpus_per_node.optional(),
    constraint: limits.constraint.optional(),
    /** A charge factor of this shape (e.g. a GPU type that costs more), over the queue's. */
    charge_factor: z.number().positive().optional(),
  })
  .strict()

const queue = z
  .object({
    allocation: z.enum(['node', 'cores_or_ram', 'gpu-shared']),
    max_nodes: positive,
    max_duration: positive,
    cores_per_node: positive.optional(),
    ram_per_node: positive.optional(),
    gpus_per_node: positive.optional(),
    max_jobs_in_queue: positive.optional(),
    /** 'job': the batch system takes the GPU count for the whole job (per-node count × nodes). */
    gpu_count: z.enum(['node', 'job']).default('node'),
    gpu_types: z.array(name).nonempty().optional(),
    /** 'forbidden': memory follows the CPUs or GPUs; 'node-default': must be sent, defaults to RAM/node. */
    mem_mb: z.enum(['allowed', 'forbidden', 'node-default']).default('allowed'),
    cpus_multiple_of: positive.optional(),
    constraint: limits.constraint.optional(),
    note: z.string().optional(),
    shapes: z.array(shape).optional(),
    /** Per queue, where its nodes differ from the machine's: see the machine's node_local_dir ('' : none, shared scratch). */
    node_local_dir: nodeLocalDir.optional(),
    node_local_min_free_mb: positive.optional(),
    /** Extra batch directives for every request to this queue (KEY = "VALUE", or KEY = true for a bare option); a request's own replace them by key. */
    batch_options: z.record(z.string(), z.union([z.string(), z.literal(true)])).optional(),
    /** How the site charges this queue (src/catalog/charge.ts); absent: unknown. */
    charge: chargeSchema.optional(),
  })
  .strict()

/** The pilots' HTCondor (src/catalog/download.ts): by default the Access Point's version from HTCondor's download tree. */
const htcondor = z
  .object({
    /** Pins a version; default: the Access Point's own (condor_version). */
    version: z.string().regex(/^\d+\.\d+\.\d+$/, 'a version like 25.0.4').optional(),
    /** Base of a tree laid out like HTCondor's (default: DEFAULT_TARBALL_URL_BASE). */
    url_base: z.string().url().optional(),
    /** A URL of the machine's own, {version} and {os} replaced (instead of url_base's layout). */
    url: z.string().url().refine((url) => url.includes('{os}'), 'must contain {os}').optional(),
    /** HTCondor's platform names the machine's login nodes may run; the back-end picks the login node's. */
    os: z.array(name).nonempty(),
    /** Hex sha256 per platform of the pinned `version`; a download whose digest differs is refused. */
    sha256: z.record(z.string().regex(HEX_SHA256, '64 hex digits')).optional(),
    /** The checksum file (sha256sum format) next to each tarball, used when no sha256 is pinned. */
    checksum_file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a file name').optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.sha256 !== undefined && h.version === undefined) {
      ctx.addIssue({code: z.ZodIssueCode.custom, path: ['sha256'], message: 'pins the tarballs of one version: set htcondor.version too'})
    }
    if (h.url_base !== undefined) {
      try {
        checkUrlBase(h.url_base, 'htcondor.url_base')
      } catch {
        ctx.addIssue({code: z.ZodIssueCode.custom, path: ['url_base'], message: 'must be an https:// URL (plain http only to a loopback address), with no query or credentials'})
      }
    }
    if (h.url !== undefined && h.url_base !== undefined) {
      ctx.addIssue({code: z.ZodIssueCode.custom, path: ['url'], message: 'give url_base or url, not both'})
    }
    if (h.url !== undefined && h.version === undefined && !h.url.includes('{version}')) {
      ctx.addIssue({code: z.ZodIssueCode.custom, path: ['url'], message: 'must contain {version} unless htcondor.version is set'})
    }
  })

/**
 * HTCondor-batch systems: the pilot job's site policy (where the pool may run
 * it, in which container, with how much disk), as HTCondor's own tool submits it.
 */
const pilotJob = z
  .object({
    /** A ClassAd expression: the submit description's `requirements`. */
    requirements: z.string().min(1).regex(/^[^\r\n]*$/, 'one line').optional(),
    /** The container the pool runs each pilot in (+SingularityImage). */
    container_image: z.string().min(1).regex(/^[^\r\n]*$/, 'one line').optional(),
    /** Of htcondor.os, the build the pilots run: the container's OS (default: the first). */
    container_os: name.optional(),
    /** MB of disk asked for per CPU. */
    disk_per_cpu_mb: positive.optional(),
    /** CPUs and MB of memory per pilot when the request gives none. */
    default_cpus: positive.default(1),
    default_mem_mb: positive.default(2048),
  })
  .strict()

export const machineSchema = z
  .object({
    name: z.string().min(1),
    host: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'a host name'),
    batch: z.enum(['slurm', 'htcondor']),
    default_queue: z.string().min(1),
    project_required: z.boolean().default(false),
    /** SLURM takes the queue as a partition (-p) or a QoS (-q). */
    queue_flag: z.enum(['partition', 'qos']).default('partition'),
    /** Shell expression, evaluated by bash on the login node. */
    scratch: z.string().min(1),
    /** Node-local directory for job sandboxes (bash, evaluated on each compute node); absent or '': shared scratch. */
    node_local_dir: nodeLocalDir.default(''),
    /** MB that must be free in it when a pilot starts, else the pilot falls back to shared scratch. */
    node_local_min_free_mb: positive.default(DEFAULT_NODE_LOCAL_MIN_FREE_MB),
    gpu_flag: z.enum(['gpus', 'gpus-per-node', 'gpus-per-task']).default('gpus-per-node'),
    /** The GPU option carries the type: --gpus=v100-32:16. */
    gpu_flag_includes_type: z.boolean().default(false),
    constraint: limits.constraint.optional(),
    memory_chunk_mb: positive.default(2048),
    fan_out: z.enum(['srun', 'ssh']).default('srun'),
    config_fragment: z.string().default(''),
    /** Bash the back-end runs first, in its own shell (so what it sets holds for `scratch`), before the pilot directory exists. */
    shell_fragment: z.string().default(''),
    /** Bash the back-end runs once the pilot directory is filled, with $PILOT_DIR set. */
    pilot_dir_fragment: z.string().default(''),
    /** Bytes the login node's cache (~/.hpc-annex/cache) may hold: each create makes room, least recently used first, before its objects arrive. */
    cache_max_bytes: positive.optional(),
    htcondor,
    pilot_job: pilotJob.optional(),
    queues: z.record(name, queue).refine((queues) => Object.keys(queues).length > 0, 'at least one queue is needed'),
  })
  .strict()
  .superRefine((machine, ctx) => {
    if (/\bPILOT_DIR\b/.test(machine.shell_fragment)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['shell_fragment'],
        message: 'runs before the pilot directory exists; move what uses $PILOT_DIR to pilot_dir_fragment',
      })
    }
    if (machine.pilot_job !== undefined && machine.batch !== 'htcondor') {
      ctx.addIssue({code: z.ZodIssueCode.custom, path: ['pilot_job'], message: 'is for systems whose batch system is HTCondor (batch = "htcondor")'})
    }
    const os = machine.pilot_job?.container_os
    if (os !== undefined && !machine.htcondor.os.some((label) => label.toLowerCase() === os.toLowerCase())) {
      ctx.addIssue({code: z.ZodIssueCode.custom, path: ['pilot_job', 'container_os'], message: `is not one of htcondor.os (${machine.htcondor.os.join(', ')})`})
    }
    if (!(machine.default_queue in machine.queues)) {
      ctx.addIssue({code: z.ZodIssueCode.custom, path: ['default_queue'], message: `names no queue of this file (queues: ${Object.keys(machine.queues).join(', ')})`})
    }
    for (const [queueName, q] of Object.entries(machine.queues)) {
      if (q.allocation === 'cores_or_ram' && (q.cores_per_node === undefined || q.ram_per_node === undefined)) {
        ctx.addIssue({code: z.ZodIssueCode.custom, path: ['queues', queueName], message: 'a cores_or_ram queue needs cores_per_node and ram_per_node'})
      }
      if (q.gpu_types && !q.shapes?.length) {
        ctx.addIssue({code: z.ZodIssueCode.custom, path: ['queues', queueName, 'gpu_types'], message: 'GPU types need shapes (one per type)'})
      }
      for (const [key, value] of Object.entries(q.batch_options ?? {})) {
        const context = {queueIsQos: machine.queue_flag === 'qos', ...(q.constraint ?? machine.constraint ? {constraint: q.constraint ?? machine.constraint} : {})}
        const problem = batchOptionProblem(machine.batch, key, value === true ? undefined : value, context)
        if (problem !== undefined) ctx.addIssue({code: z.ZodIssueCode.custom, path: ['queues', queueName, 'batch_options', key], message: problem})
      }
      for (const [i, s] of (q.shapes ?? []).entries()) {
        if (s.when_gpu_type !== undefined && !q.gpu_types?.includes(s.when_gpu_type)) {
          ctx.addIssue({code: z.ZodIssueCode.custom, path: ['queues', queueName, 'shapes', i, 'when_gpu_type'], message: `is not one of the queue's gpu_types`})
        }
      }
    }
  })

export type MachineFile = z.infer<typeof machineSchema>
export type QueueDefinition = MachineFile['queues'][string]
export type ShapeDefinition = NonNullable<QueueDefinition['shapes']>[number]
