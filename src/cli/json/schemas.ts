/**
 * The --json output of every verb: one schema each, the stable interface
 * for scripts. The types the commands return are inferred from these schemas
 * (src/cli/json/project.ts builds them), so the code cannot print a field
 * the schema does not have; `hpc-annex schema VERB` prints the JSON Schema
 * made from them, and docs/json/ holds a copy of each.
 *
 * The rules every schema follows:
 * - camelCase names; a quantity ends in its unit (`lifetimeSeconds`,
 *   `ramPerNodeMb`, `sentBytes`), a moment in `EpochSeconds` (seconds since
 *   1970-01-01 UTC); a count is a plural noun (`nodes`, `jobs`);
 * - every object is closed (no field beyond the schema's) and holds what the
 *   user asked about, never the tool's internals;
 * - `warnings` (strings, possibly empty) in every output: what a run warned
 *   about reaches scripts too;
 * - a failure is `{error: {message, exitCode, hint?}, warnings}`.
 *
 * These use zod 4 ('zod/v4'), for its JSON Schema output; only the `schema`
 * verb and the tests load them: a command imports their types alone.
 */
import {z} from 'zod/v4'

const warnings = z.array(z.string()).describe('What the run warned about (one line each); empty when nothing.')
const count = z.number().int().nonnegative()
const seconds = z.number().int()
const epochSeconds = z.number().int().describe('Seconds since 1970-01-01 UTC.')

// --- systems ---------------------------------------------------------------

const shape = z.strictObject({
  label: z.string(),
  maxNodes: count.optional(),
  coresPerNode: count.optional(),
  ramPerNodeMb: count.optional(),
  gpusPerNode: count.optional(),
})

export const queueSummaryJson = z.strictObject({
  name: z.string(),
  default: z.boolean().describe('The system\'s default queue.'),
  allocation: z.enum(['node', 'cores_or_ram', 'gpu-shared']).describe('node: whole nodes (--nodes); cores_or_ram: a share of a node (--cpus, --mem_mb); gpu-shared: a share by GPUs (--gpus).'),
  maxNodes: count,
  maxDurationSeconds: seconds,
  coresPerNode: count.optional(),
  ramPerNodeMb: count.optional(),
  gpusPerNode: count.optional(),
  gpuTypes: z.array(z.string()).optional().describe('The GPU types --gpu-type chooses from; absent: no choice.'),
  gpuCountPer: z.enum(['node', 'job']).describe('Whether the GPU count is sent per node or for the whole job.'),
  cpusMultipleOf: count.optional().describe('--cpus must be a multiple of this.'),
  memMbFlag: z.enum(['allowed', 'forbidden', 'node-default']).describe('allowed: --mem_mb as given; forbidden: no --mem_mb (memory follows the CPUs); node-default: RAM/node is sent when --mem_mb is not given.'),
  maxJobsInQueue: count.optional(),
  notes: z.array(z.string()).describe('The same facts in words, for people.'),
  shapes: z.array(shape).describe('Node variants, chosen by --gpus / --gpu-type.'),
})

export const systemSummaryJson = z.strictObject({
  key: z.string().describe('What QUEUE@SYSTEM names.'),
  name: z.string(),
  host: z.string().describe('The login node.'),
  batch: z.enum(['slurm', 'htcondor']),
  defaultQueue: z.string(),
  projectRequired: z.boolean(),
  source: z.string().describe('The machine file it came from.'),
  queues: z.array(queueSummaryJson),
})

const liveQueue = z.strictObject({
  name: z.string(),
  nodes: z
    .strictObject({idle: count, allocated: count, down: count.describe('sinfo\'s "other": down, drained, ...'), total: count})
    .optional()
    .describe('From sinfo, for a queue that is a partition; absent for a QoS.'),
  jobs: z.strictObject({pending: count, running: count}).describe('From squeue: every user\'s jobs.'),
  yourJobs: count.describe('The login user\'s pending and running jobs in it.'),
  maxJobsInQueue: count.optional().describe('The machine file\'s limit on them.'),
})

export const systemsJson = z.strictObject({
  systems: z.array(systemSummaryJson),
  live: z
    .strictObject({
      system: z.string(),
      login: z.string().describe('user@host'),
      user: z.string(),
      nowEpochSeconds: epochSeconds.describe('The login node\'s clock.'),
      queuesAre: z.enum(['partition', 'qos']),
      queues: z.array(liveQueue),
    })
    .optional()
    .describe('With --live: what SLURM says now (one login).'),
  warnings,
})

// --- create and add ----------------------------------------------------------

const gpus = z.strictObject({
  perNode: count,
  count: count.describe('The count sent to the batch system: per node, or for the whole job (countPer).'),
  countPer: z.enum(['node', 'job']),
  type: z.string().optional(),
  flag: z.string().describe('The batch system option, e.g. --gpus-per-node.'),
  value: z.string().describe('Its value as sent, e.g. 4 or v100-32:16.'),
})

const charge = z
  .discriminatedUnion('known', [
    z.strictObject({
      known: z.literal(true),
      unit: z.string().describe('The site\'s unit, singular, e.g. SU.'),
      per: z.enum(['core', 'gpu', 'node']).describe('What one unit-hour counts.'),
      unitsPerNode: z.number().nonnegative().describe('Cores, GPUs (or their memory/core equivalent) or 1 (a node) charged per node.'),
      basis: z.enum(['whole-node', 'asked', 'memory', 'cores']).describe('whole-node: the queue charges every node whole; asked: the count asked for; memory/cores: that share was larger.'),
      nodes: count,
      hours: z.number().nonnegative().describe('The lifetime in hours.'),
      factor: z.number().positive().describe('The queue\'s (and GPU type\'s) charge factor.'),
      maxAmount: z.number().nonnegative().describe('The most the request can charge, in unit: nodes × unitsPerNode × hours × factor, rounded up to 2 decimals.'),
      account: z.string().optional().describe('--project; absent: the user\'s default account.'),
      policy: z.string().describe('The site\'s published charging policy the rates come from.'),
      text: z.string(),
    }),
    z.strictObject({known: z.literal(false), reason: z.string(), text: z.string()}),
  ])
  .describe('The most the request can charge the allocation (the machine file\'s charge data).')

const requestFields = {
  verb: z.enum(['create', 'add']),
  annexName: z.string(),
  system: z.strictObject({key: z.string(), name: z.string(), batch: z.enum(['slurm', 'htcondor']), source: z.string()}),
  queue: z.strictObject({
    name: z.string(),
    allocation: z.enum(['node', 'cores_or_ram', 'gpu-shared']),
    maxNodes: count,
    maxDurationSeconds: seconds,
    coresPerNode: count.optional(),
    ramPerNodeMb: count.optional(),
    gpusPerNode: count.optional(),
    maxJobsInQueue: count.optional(),
  }),
  nodes: count,
  cpus: count.optional().describe('CPUs per node (shared-node queues).'),
  memMb: count.optional().describe('Memory per node sent to the batch system.'),
  gpus: gpus.optional(),
  lifetimeSeconds: seconds,
  idleTimeSeconds: seconds,
  project: z.string().optional(),
  constraint: z.string().optional().describe('The SLURM --constraint sent.'),
  login: z.strictObject({host: z.string(), user: z.string().optional()}),
  pool: z.string().optional().describe('--pool; absent: the Access Point\'s ANNEX_COLLECTOR.'),
  owners: z.array(z.string()),
  tokenFile: z.string().optional(),
  passwordFile: z.string().optional(),
  tmpDir: z.string().optional(),
  htcondor: z
    .strictObject({
      version: z.string().optional().describe('The pilots\' HTCondor version; absent in a dry run that uses the Access Point\'s own (known at create time).'),
      versionFrom: z.enum(['machine file', '--condor-version', 'Access Point']),
      urlBase: z.string().describe('Base of the download tree (<series>/<version>/release/...).'),
      urlBaseFrom: z.enum(['default', 'machine file', 'ANNEX_TARBALL_URL_BASE']),
      urlRule: z.string().describe('The tarball URL with <series>, <version> and <platform> still to fill (the login node\'s platform).'),
      platforms: z.array(z.string()).describe('Platforms allowed; the login node\'s /etc/os-release picks one.'),
      checksumFile: z.string().describe('The checksum file looked for next to an unpinned tarball.'),
      tarballs: z
        .array(
          z.strictObject({
            os: z.string(),
            url: z.string(),
            sha256: z.string().optional().describe('The pinned sha256.'),
            checksumUrl: z.string().optional().describe('Unpinned: the published checksum file that must list the tarball.'),
            verification: z.enum(['pinned', 'published']),
          }),
        )
        .describe('One per platform once the version is known; empty before.'),
      stagedTarball: z.string().optional().describe('--condor-tarball: staged instead of downloaded.'),
    })
    .describe('The pilots\' HTCondor: which release, from where, verified how.'),
  pilotJob: z
    .strictObject({
      requirements: z.string().optional(),
      containerImage: z.string().optional(),
      containerOs: z.string().optional(),
      diskPerCpuMb: count.optional(),
      defaultCpus: count,
      defaultMemMb: count,
    })
    .optional()
    .describe('HTCondor-batch systems: the pilot job\'s site policy.'),
  batchOptions: z
    .array(z.strictObject({key: z.string(), value: z.string().optional().describe('Absent: an option without a value.'), from: z.enum(['request', 'machine'])}))
    .optional()
    .describe('Extra batch directives (--batch-option, or the queue\'s batch_options in the machine file): #SBATCH --KEY=VALUE on SLURM, KEY = VALUE in the submit description of an HTCondor pool.'),
  batchRequest: z.string().describe('What is asked of the batch system, as the text shows it, e.g. "sbatch -p wholenode --nodes=2 --time=60".'),
  staging: z.array(z.string()).describe('What travels to the login node, in words.'),
  charge,
}

const image = z.strictObject({
  name: z.string(),
  sha256: z.string(),
  sizeBytes: count,
  sent: z.boolean().describe('False when the login node had it cached.'),
})

const estimate = z
  .strictObject({
    available: z.boolean().describe('False for an HTCondor-batch system: it gives no estimate.'),
    nowEpochSeconds: epochSeconds.optional().describe('The login node\'s clock.'),
    startEpochSeconds: epochSeconds.optional().describe('When sbatch --test-only says the job would start.'),
    waitSeconds: seconds.optional(),
    nodeList: z.string().optional().describe('The nodes SLURM would use, as it writes them.'),
    said: z.string().optional().describe('When SLURM gave no estimate: what sbatch --test-only said instead.'),
    text: z.string(),
  })
  .describe('When SLURM would start the request (sbatch --test-only with the batch script\'s directives): with --estimate, and in a real request on a SLURM system, asked just before it submitted.')

export const dryRunJson = z.strictObject({dryRun: z.literal(true), ...requestFields, estimate: estimate.optional(), warnings})

export const requestResultJson = z.strictObject({
  dryRun: z.literal(false),
  ...requestFields,
  requestId: z.string().describe('The state job\'s GlobalJobID; the batch job carries it.'),
  stateJobId: z.string(),
  batchJobId: z.string().optional(),
  pilotDir: z.string().optional(),
  loginHost: z.string().optional(),
  images: z.array(image),
  sentBytes: count.describe('Bytes sent over the connection.'),
  remoteCommands: count.describe('Commands run on the login node after the login.'),
  bundleFile: z.string().optional().describe('--bundle: the file written.'),
  estimate: estimate.optional().describe('SLURM systems: when SLURM said the batch job would start, asked just before it was submitted (unavailable when sbatch --test-only failed or took too long).'),
  notices: z.array(z.string()).optional().describe('What the run did besides, worth knowing (one line each).'),
  warnings,
})

export const createJson = z.discriminatedUnion('dryRun', [dryRunJson, requestResultJson])

// --- status --------------------------------------------------------------------

const requestStatus = z.strictObject({
  requestId: z.string(),
  stateJobId: z.string().optional().describe('Absent for a request seen only through its pilots.'),
  state: z.enum(['requested', 'submitting', 'submitted', 'granted']).optional(),
  batchJobId: z.string().optional(),
  nodesRequested: count,
  lifetimeSeconds: seconds.optional(),
  nodesJoined: count,
  cpus: count,
  busyCpus: count,
  firstStartEpochSeconds: epochSeconds.optional(),
  lastStartEpochSeconds: epochSeconds.optional(),
  submittedEpochSeconds: epochSeconds.optional(),
  hint: z.string().optional().describe('Why no pilot has joined, when the batch job was submitted a while ago.'),
  pilots: z
    .array(
      z.strictObject({
        name: z.string().describe("The pilot's startd name."),
        executeOn: z.enum(['node-local', 'shared']).optional().describe('Where its job sandboxes are: node-local disk, or shared scratch (the fallback). Absent: the pilot does not say.'),
        executeDir: z.string().optional().describe('Its job sandboxes\' directory (EXECUTE) on the node.'),
      }),
    )
    .describe('Each joined node\'s pilot.'),
  charge: z
    .strictObject({
      unit: z.string().describe('The site\'s unit, e.g. SU.'),
      ratePerNodeHour: z.number().nonnegative().describe('What one node charges per hour, as recorded at create time.'),
      chargedSoFar: z.number().nonnegative().describe('From each pilot\'s start (its DaemonStartTime) to now, at most the lifetime; its pilots gone, all its nodes from the request\'s start.'),
      mostStillToCharge: z.number().nonnegative().describe('The rest of the lifetime of the pilots that joined and the whole lifetime of nodes that have not.'),
    })
    .optional()
    .describe('Absent when no rate was recorded: the queue\'s charge is unknown, or another tool made the request.'),
})

const established = z.strictObject({requestId: z.string(), ageSeconds: seconds, retiresInSeconds: seconds.optional()})

const annexStatus = z.strictObject({
  annexName: z.string(),
  established: z.boolean(),
  nodes: z.strictObject({requested: count, joined: count}),
  cpus: z.strictObject({total: count, busy: count}),
  jobs: z.strictObject({total: count, running: count}),
  requests: z.strictObject({total: count, pending: count, active: count, retired: count}),
  oldest: established.optional(),
  youngest: established.optional(),
  requestList: z.array(requestStatus),
  charges: z
    .array(z.strictObject({unit: z.string(), chargedSoFar: z.number().nonnegative(), mostStillToCharge: z.number().nonnegative()}))
    .describe('Per unit, summed over the requests whose charge is known.'),
  unchargedRequests: count.describe('Requests whose charge is not known.'),
})

export const statusJson = z.strictObject({
  annexName: z.string().optional().describe('The annex asked about, if one was.'),
  annexes: z.array(annexStatus),
  timeEpochSeconds: epochSeconds.describe('When the report was made.'),
  notices: z.array(z.string()).optional().describe('What the run did besides, worth knowing (one line each).'),
  warnings,
})

// --- shutdown, logs, submit, login -----------------------------------------------

const cancelReport = z.strictObject({
  requestId: z.string(),
  stateJobId: z.string(),
  system: z.string().optional(),
  loginHost: z.string().optional(),
  outcome: z.enum(['cancelled', 'not-queued', 'unreachable', 'failed']),
  batchJobs: z.array(z.string()).describe('Batch job ids cancelled.'),
  detail: z.string().optional(),
  pilotDirRemoved: z.boolean().optional(),
  stateJobRemoved: z.boolean(),
})

export const shutdownJson = z.strictObject({
  annexName: z.string(),
  found: count.describe('Pilots (master ads) of the annex found in the annex collector.'),
  told: z.array(z.string()).describe('The pilots told to shut down.'),
  pending: z.array(cancelReport).optional().describe('With --cancel-pending: each request whose pilots had not joined.'),
  notices: z.array(z.string()).optional().describe('What the run did besides, worth knowing (one line each).'),
  warnings,
})

export const logsJson = z.strictObject({
  annexName: z.string(),
  requests: z.array(
    z.strictObject({
      requestId: z.string(),
      stateJobId: z.string(),
      pilotDir: z.string().optional(),
      loginHost: z.string().optional(),
      outcome: z.enum(['shown', 'no-pilot-dir', 'refused', 'gone', 'failed', 'unreachable']),
      detail: z.string().optional(),
    }),
  ),
  output: z.string().describe('Everything the logs printed.'),
  warnings,
})

export const submitJson = z.strictObject({annexName: z.string(), clusterId: count, jobs: count, warnings})

export const loginJson = z.strictObject({
  system: z.string(),
  host: z.string(),
  user: z.string(),
  controlPath: z.string().describe('The OpenSSH master socket (<tmp_dir>/master-%C), shared with htcondor annex.'),
  persistSeconds: seconds,
  reused: z.boolean().describe('An open connection was found; nothing was asked.'),
  warnings,
})

// --- cache -------------------------------------------------------------------------

const cacheEntry = z.strictObject({
  name: z.string(),
  kind: z.enum(['tarball', 'image', 'object', 'release', 'temporary', 'other']),
  sizeBytes: count,
  lastUseEpochSeconds: epochSeconds.describe('The login node\'s clock.'),
  label: z.string().optional(),
  annexes: z.array(z.string()),
  usedBy: z.array(z.strictObject({annexName: z.string(), pilotDir: z.string()})),
  links: count,
  inUse: z.boolean(),
  decision: z.enum(['removed', 'would-remove', 'kept', 'failed']).optional(),
  reason: z.enum(['in-use', 'linked', 'recent', 'within-limit', 'temporary', 'other']).optional(),
})

export const cacheJson = z.strictObject({
  system: z.string(),
  login: z.string().describe('user@host'),
  cacheDir: z.string(),
  exists: z.boolean(),
  nowEpochSeconds: epochSeconds.describe('The login node\'s clock when it looked.'),
  totalBytes: count,
  entries: z.array(cacheEntry),
  quota: z.array(z.string()).describe('What quota -s printed there.'),
  fileSystem: z.strictObject({name: z.string(), sizeBytes: count, usedBytes: count, availableBytes: count, mountedOn: z.string()}).optional(),
  prune: z
    .strictObject({
      dryRun: z.boolean(),
      olderThanDays: z.number().nonnegative().optional(),
      keepBytes: count.optional(),
      removed: count,
      removedBytes: count,
      kept: count,
      failed: count,
      totalBytesAfter: count,
    })
    .optional(),
  warnings,
})

// --- admin -----------------------------------------------------------------------------

export const adminCheckJson = z.strictObject({
  ok: z.boolean().describe('No item is missing.'),
  items: z.array(
    z.strictObject({
      id: z.string(),
      title: z.string(),
      status: z.enum(['ok', 'missing', 'unchecked', 'warning']),
      detail: z.string(),
      fix: z.string().optional(),
    }),
  ),
  warnings,
})

export const adminMetaknobJson = z.strictObject({
  content: z.string(),
  builtin: z.boolean().describe('The content is this HTCondor\'s own `use feature:HPC_ANNEX`.'),
  install: z.strictObject({path: z.string(), action: z.enum(['created', 'unchanged', 'replaced']), backup: z.string().optional()}).optional(),
  warnings,
})

export const markStartedJson = z.strictObject({
  stateJobId: z.string(),
  requestId: z.string(),
  startEpochSeconds: epochSeconds.optional(),
  marked: z.boolean(),
  warnings,
})

// --- apply ------------------------------------------------------------------------------

export const applyJson = z.strictObject({
  annexName: z.string(),
  file: z.string().describe('The request file applied.'),
  dryRun: z.boolean(),
  requests: z
    .array(
      z.strictObject({
        index: count.describe('Its place among the file\'s requests, from 0.'),
        line: count.optional().describe('Its line in the file.'),
        target: z.string().describe('QUEUE@SYSTEM.'),
        nodes: count,
        lifetimeSeconds: seconds,
        outcome: z
          .enum(['exists', 'created', 'added', 'would-create', 'would-add', 'failed'])
          .describe('exists: a live request of the annex asks for the same (nothing made); created/added: made now; would-*: --dry-run; failed: see error.'),
        requestId: z.string().optional(),
        stateJobId: z.string().optional(),
        batchJobId: z.string().optional(),
        loginHost: z.string().optional(),
        batchRequest: z.string().describe('What is (or would be) asked of the batch system.'),
        error: z.strictObject({message: z.string(), exitCode: z.number().int()}).optional(),
      }),
    )
    .describe('Each request of the file, in its order.'),
  logins: count.describe('Logins made: one per login node that had requests to make.'),
  warnings,
})

// --- failures -----------------------------------------------------------------------------

export const errorJson = z.strictObject({
  error: z.strictObject({
    message: z.string().describe('One line: what is wrong and what to change.'),
    exitCode: z.union([z.literal(1), z.literal(2), z.literal(129), z.literal(130), z.literal(143)]).describe('1: the input; 2: something outside; 129/130/143: a signal.'),
    hint: z.string().optional().describe('A next step to try.'),
  }),
  warnings,
})

/** Each verb's output, by the verb as typed; `error` is every verb's failure. */
export const VERB_SCHEMAS = {
  apply: applyJson,
  create: createJson,
  add: createJson,
  status: statusJson,
  shutdown: shutdownJson,
  systems: systemsJson,
  login: loginJson,
  logs: logsJson,
  submit: submitJson,
  cache: cacheJson,
  'admin check': adminCheckJson,
  'admin metaknob': adminMetaknobJson,
  'internal mark-started': markStartedJson,
  error: errorJson,
} as const

export type SchemaName = keyof typeof VERB_SCHEMAS

/** The outputs `hpc-annex schema` prints and docs/json/ holds: every verb's but the hidden one the state job runs. */
export const PUBLISHED_SCHEMAS = (Object.keys(VERB_SCHEMAS) as SchemaName[]).filter((name) => !name.startsWith('internal '))

/** docs/json/'s file for an output: `admin check` is admin-check.schema.json. */
export function schemaFileName(name: SchemaName): string {
  return `${name.replaceAll(' ', '-')}.schema.json`
}

/** The JSON Schema (draft 2020-12) of a verb's output. */
export function jsonSchema(name: SchemaName): Record<string, unknown> {
  const title = name === 'error' ? 'hpc-annex --json: a failure, of any verb' : `hpc-annex ${name} --json`
  return z.toJSONSchema(VERB_SCHEMAS[name].meta({title}), {target: 'draft-2020-12'}) as Record<string, unknown>
}

/** What the commands return: the output without `warnings`, which every command adds (src/cli/base.ts). */
export type Output<S extends z.ZodType> = Omit<z.infer<S>, 'warnings'> & {warnings?: string[]}
export type SystemsOutput = Output<typeof systemsJson>
export type DryRunOutput = Omit<z.infer<typeof dryRunJson>, 'warnings'>
export type RequestResultOutput = Omit<z.infer<typeof requestResultJson>, 'warnings'> & {warnings: string[]}
export type EstimateOutput = z.infer<typeof estimate>
export type CreateOutputJson = DryRunOutput | RequestResultOutput
export type StatusOutput = Output<typeof statusJson>
export type ShutdownOutput = Output<typeof shutdownJson>
export type LogsOutput = Output<typeof logsJson>
export type SubmitOutput = Output<typeof submitJson>
export type LoginOutput = Output<typeof loginJson>
export type CacheOutput = Output<typeof cacheJson>
export type AdminCheckOutput = Output<typeof adminCheckJson>
export type AdminMetaknobOutput = Output<typeof adminMetaknobJson>
export type ApplyOutput = z.infer<typeof applyJson>
export type MarkStartedOutput = Output<typeof markStartedJson>
