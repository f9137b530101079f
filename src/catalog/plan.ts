/**
 * A Plan is a validated request: everything `create`/`add` will ask for,
 * resolved against the machine catalog, as plain data. It is pure (no I/O
 * made it), printed by `--dry-run`, serialized by `--json`, and the only input
 * the renderer needs besides what the Access Point supplies at create time
 * (request id, collector, schedd name, token).
 */
import type {BatchOption} from './batch-options.js'
import type {Charge} from './charge.js'

export type AllocationType = 'node' | 'cores_or_ram' | 'gpu-shared'
export type BatchSystem = 'slurm' | 'htcondor'
/** How a SLURM job asks for GPUs on this machine. */
export type GpuFlag = 'gpus' | 'gpus-per-node' | 'gpus-per-task'

export interface PlanGpus {
  /** GPUs per node, as the user asked (or the node's count on a whole-node queue). */
  perNode: number
  /** The count sent to the batch system: perNode, or perNode × nodes where the machine counts GPUs per job. */
  count: number
  /** 'node': count is per node; 'job': count is for the whole job. */
  countPer: 'node' | 'job'
  type?: string
  /** The SLURM option, e.g. '--gpus-per-node'. */
  flag: `--${GpuFlag}`
  /** The option's value as sent, e.g. '4' or 'v100-32:16'. */
  value: string
}

export interface PlanLogin {
  /** The login node to SSH to (from --login-host, else the machine's host). */
  host: string
  /** From --login-name; undefined: the SSH config / HPC_ANNEX_<SYSTEM>_USER_NAME decides. */
  user?: string
  /** True when --login-host was given (HPC_ANNEX_<SYSTEM>_HOST_NAME must not override it). */
  hostFromFlag: boolean
}

export interface PlanSystem {
  key: string
  name: string
  batch: BatchSystem
  /** The machine file the definition came from. */
  source: string
  /** The machine file's cache_max_bytes: what the login node's cache may hold. */
  cacheMaxBytes?: number
}

export interface PlanQueue {
  name: string
  allocation: AllocationType
  maxNodes: number
  maxDuration: number
  coresPerNode?: number
  ramPerNode?: number
  gpusPerNode?: number
  maxJobsInQueue?: number
}

export interface PlanTarball {
  /** HTCondor's platform name of this build ('AlmaLinux9', 'Debian12', 'Ubuntu22', ...), matched against the login node's /etc/os-release. */
  os: string
  url: string
  /** Pinned hex sha256 (machine file or the Access Point's ANNEX_TARBALL_SHA256); the back-end refuses a download that does not match. */
  sha256?: string
  /** Unpinned: the checksum file published next to the tarball, which must list it. */
  checksumUrl?: string
  verification: 'pinned' | 'published'
}

/** The pilots' HTCondor release: which version, from where, checked how (src/catalog/download.ts). */
export interface PlanHTCondor {
  /** Pinned (machine file or --condor-version), or the Access Point's once known; undefined until then. */
  version?: string
  versionFrom: 'machine file' | '--condor-version' | 'Access Point'
  /** Base of a tree laid out like HTCondor's (<series>/<version>/release/...), ending in '/'. */
  urlBase: string
  urlBaseFrom: 'default' | 'machine file' | 'ANNEX_TARBALL_URL_BASE'
  /** A machine file's own URL with {version} and {os} (instead of the tree's layout). */
  urlTemplate?: string
  /** The platforms the machine allows (htcondor.os). */
  platforms: string[]
  /** The machine file's sha256 per platform; they hold for its own version only. */
  machineSha256: Record<string, string>
  /** The checksum file's name in a release directory. */
  checksumFile: string
  /** One per platform once the version is known; [] before. */
  tarballs: PlanTarball[]
}

export interface PlanPilotJob {
  /** ClassAd expression: where the pool may run the pilots. */
  requirements?: string
  /** The container the pool runs each pilot in. */
  containerImage?: string
  /** The htcondor.os label of the build the pilots run (the container's OS). */
  containerOs?: string
  /** MB of disk per CPU. */
  diskPerCpuMb?: number
  /** Per pilot, when the request gives no --cpus / --mem_mb. */
  defaultCpus: number
  defaultMemMb: number
}

/** Where the pilots put job sandboxes: a node-local directory, checked on each node, else shared scratch. */
export interface PlanNodeLocal {
  /** Bash expression evaluated by the pilot on each compute node; absent: none (shared scratch). */
  dir?: string
  /** MB that must be free there when a pilot starts, else it falls back to shared scratch. */
  minFreeMb: number
}

export interface Plan {
  annexName: string
  system: PlanSystem
  queue: PlanQueue
  /** The queue as the batch system takes it: ['-p', name] (partition) or ['-q', name] (QoS); [] for HTCondor. */
  queueArgument: string[]
  nodes: number
  /** CPUs per node to ask for (shared-node queues), else undefined (whole nodes). */
  cpus?: number
  /** MB of memory per node to send (asked for, or the machine's default), else undefined. */
  memMb?: number
  gpus?: PlanGpus
  /** Seconds. */
  lifetime: number
  /** Seconds a pilot may stay unclaimed before it shuts down. */
  idleTime: number
  project?: string
  /** SLURM --constraint value for this queue and shape, if any. */
  constraint?: string
  login: PlanLogin
  /** --pool: the collector pilots report to; undefined: ANNEX_COLLECTOR from the AP. */
  pool?: string
  /** Users whose jobs may run on the annex. */
  owners: string[]
  tokenFile?: string
  passwordFile?: string
  tmpDir?: string
  /** Shell expression, evaluated on the login node, of the directory pilot directories go under. */
  scratch: string
  /** Where job sandboxes go on each node (absent: shared scratch, as before node-local directories existed). */
  nodeLocal?: PlanNodeLocal
  /** MB: the pilot hands memory out in chunks of this size. */
  memoryChunkMb: number
  /** How the batch job starts one pilot per node. */
  fanOut: 'srun' | 'ssh'
  /** HTCondor release the pilots run, per remote OS. */
  htcondor: PlanHTCondor
  /** Machine-specific HTCondor configuration appended to the pilot's (trusted: from the machine file). */
  configFragment: string
  /** Machine-specific bash the back-end runs first, before the scratch expression is evaluated (trusted: from the machine file). */
  shellFragment: string
  /** Machine-specific bash the back-end runs in the filled pilot directory, PILOT_DIR set (trusted: from the machine file). */
  pilotDirFragment: string
  /** HTCondor-batch systems: the pilot job's site policy, from the machine file's [pilot_job]. */
  pilotJob?: PlanPilotJob
  /** What will travel to the login node. */
  staging: string[]
  /** Extra batch directives (the queue's defaults, then --batch-option), each checked against what hpc-annex manages. */
  batchOptions?: BatchOption[]
  /** The most the request can charge the allocation (src/catalog/charge.ts). */
  charge: Charge
}
