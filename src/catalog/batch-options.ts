/**
 * Extra batch directives (`--batch-option KEY=VALUE`, a request file's
 * `batch_options`, a machine file's per-queue `batch_options`): for SLURM an
 * `#SBATCH --KEY=VALUE` line, for an HTCondor pool a submit-description line
 * `KEY = VALUE`. What hpc-annex itself manages is refused with the flag to
 * use instead, as snakemake's SLURM executor refuses such overrides.
 */
import {userError} from '../errors.js'
import {condorValue, directiveString} from '../quote.js'

export type BatchOptionKind = 'slurm' | 'htcondor'

/** One extra directive as it will be written: `value` undefined is a bare option (`#SBATCH --exclusive`). */
export interface BatchOption {
  key: string
  value?: string
  /** Where it came from: the request (flag or request file), or the machine file's queue defaults. */
  from: 'request' | 'machine'
}

/** What the queue already sets that an option could fight with. */
export interface BatchOptionContext {
  /** The machine takes the queue as a QoS (queue_flag = "qos"). */
  queueIsQos: boolean
  /** The constraint the queue or its shape sends, if any. */
  constraint?: string
}

const OUTPUT = 'hpc-annex keeps the job\'s output in the pilot directory (see hpc-annex logs)'
const CPUS = 'use --cpus (hpc-annex runs one pilot task per node)'

/** sbatch options hpc-annex writes itself, long and short forms (sbatch(1)), with what to use instead. */
const SLURM_MANAGED: Record<string, string> = {
  nodes: 'use --nodes',
  N: 'use --nodes',
  time: 'use --lifetime',
  t: 'use --lifetime',
  'time-min': 'use --lifetime',
  partition: 'give the queue as QUEUE@SYSTEM',
  p: 'give the queue as QUEUE@SYSTEM',
  account: 'use --project',
  A: 'use --project',
  'job-name': 'hpc-annex names the job after the annex and request (shutdown finds it by that name)',
  J: 'hpc-annex names the job after the annex and request (shutdown finds it by that name)',
  output: OUTPUT,
  o: OUTPUT,
  error: OUTPUT,
  e: OUTPUT,
  input: OUTPUT,
  i: OUTPUT,
  chdir: OUTPUT,
  D: OUTPUT,
  'open-mode': OUTPUT,
  gpus: 'use --gpus',
  G: 'use --gpus',
  'gpus-per-node': 'use --gpus',
  'gpus-per-task': 'use --gpus',
  'gpus-per-socket': 'use --gpus',
  gres: 'use --gpus (and --gpu-type)',
  'tres-per-task': 'use --gpus or --cpus',
  mem: 'use --mem_mb',
  'mem-per-cpu': 'use --mem_mb',
  'mem-per-gpu': 'use --mem_mb',
  'cpus-per-task': 'use --cpus',
  c: 'use --cpus',
  'cpus-per-gpu': 'use --cpus',
  mincpus: 'use --cpus',
  ntasks: CPUS,
  n: CPUS,
  'ntasks-per-node': CPUS,
  'ntasks-per-core': CPUS,
  'ntasks-per-socket': CPUS,
  'ntasks-per-gpu': CPUS,
  'sockets-per-node': CPUS,
  'cores-per-socket': CPUS,
  'threads-per-core': CPUS,
  'extra-node-info': CPUS,
  B: CPUS,
  array: 'one request is one batch job; use hpc-annex add for more',
  a: 'one request is one batch job; use hpc-annex add for more',
  clusters: 'hpc-annex finds the job on the login node\'s own cluster; use --login-host',
  cluster: 'hpc-annex finds the job on the login node\'s own cluster; use --login-host',
  M: 'hpc-annex finds the job on the login node\'s own cluster; use --login-host',
  // Options of the sbatch command line, not of the job.
  wrap: 'it is not a batch directive',
  parsable: 'it is not a batch directive',
  wait: 'it is not a batch directive',
  W: 'it is not a batch directive',
  'test-only': 'it is not a batch directive',
  help: 'it is not a batch directive',
  usage: 'it is not a batch directive',
  version: 'it is not a batch directive',
}

/** Submit-description commands hpc-annex writes itself for an HTCondor pool's pilot job (lower case). */
const HTCONDOR_MANAGED: Record<string, string> = {
  universe: 'hpc-annex runs the pilot in the vanilla universe',
  executable: 'hpc-annex runs its own pilot',
  arguments: 'hpc-annex runs its own pilot',
  args: 'hpc-annex runs its own pilot',
  transfer_executable: 'hpc-annex sends the pilot and its files',
  should_transfer_files: 'hpc-annex sends the pilot and its files',
  when_to_transfer_output: 'hpc-annex sends the pilot and its files',
  transfer_input_files: 'hpc-annex sends the pilot and its files',
  transfer_output_files: 'hpc-annex sends the pilot and its files',
  transfer_output_remaps: 'hpc-annex sends the pilot and its files',
  output: OUTPUT,
  error: OUTPUT,
  log: OUTPUT,
  initialdir: OUTPUT,
  initial_dir: OUTPUT,
  queue: 'use --nodes',
  batch_name: 'hpc-annex names the job after the annex and request (shutdown finds it by that name)',
  request_cpus: 'use --cpus',
  request_memory: 'use --mem_mb',
  request_gpus: 'use --gpus',
  request_disk: 'the machine file\'s pilot_job.disk_per_cpu_mb sets it',
  requirements: 'the machine file\'s pilot_job.requirements sets it',
  container_image: 'the machine file\'s pilot_job.container_image sets it',
  '+singularityimage': 'the machine file\'s pilot_job.container_image sets it',
  accounting_group: 'use --project',
  accounting_group_user: 'use --project',
}

const SLURM_KEY = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/
const HTCONDOR_KEY = /^(\+|my\.)?[a-z_][a-z0-9_.]*$/i
const MAX_VALUE = 1024

/** The key as written: SLURM's long name without dashes; an HTCondor command as given. */
function normalKey(kind: BatchOptionKind, key: string): string {
  return kind === 'slurm' ? key.replace(/^--?/, '') : key
}

/**
 * Why KEY (=VALUE) cannot be an extra directive of this batch system, or
 * undefined when it can. Said after "batch option 'KEY': ".
 */
export function batchOptionProblem(kind: BatchOptionKind, rawKey: string, value: string | undefined, context: BatchOptionContext): string | undefined {
  const key = normalKey(kind, rawKey)
  if (kind === 'slurm') {
    const managed = SLURM_MANAGED[key]
    if (managed !== undefined) return `hpc-annex sets --${key.length === 1 ? `${key} (-${key})` : key} itself; ${managed}`
    if (key.length === 1) return 'give sbatch\'s long option name (e.g. reservation, not its one-letter form)'
    if (!SLURM_KEY.test(key) || key.includes('packjob')) return 'is not an sbatch option name (lower-case letters, digits and "-", e.g. reservation)'
    if (key === 'qos' && context.queueIsQos) return 'this system takes the queue as the QoS; give it as QUEUE@SYSTEM'
    if (key === 'constraint' && context.constraint !== undefined) return `the queue already sends --constraint=${context.constraint}; change the machine file's constraint`
  } else {
    const lower = key.toLowerCase()
    const plain = lower.replace(/^my\./, '+')
    const managed = HTCONDOR_MANAGED[plain] ?? HTCONDOR_MANAGED[lower]
    if (managed !== undefined) return `hpc-annex writes ${key} itself; ${managed}`
    if (!HTCONDOR_KEY.test(key)) return 'is not a submit-description command (letters, digits, "_" and ".", or +Attribute)'
    if (/^\+hpc_annex_/.test(plain)) return 'hpc-annex writes the hpc_annex_ attributes itself'
    if (value === undefined) return 'a submit-description command needs a value: KEY=VALUE'
  }
  if (value === undefined) return undefined
  if (value.length > MAX_VALUE) return `the value is longer than ${MAX_VALUE} characters`
  try {
    // The one quoting path decides what a value can be.
    if (kind === 'slurm') directiveString(value)
    else condorValue(value)
  } catch {
    // eslint-disable-next-line no-control-regex -- control characters are what is named
    return /[\u0000-\u001f\u007f]/.test(value) ? 'the value holds a newline or another control character' : kind === 'slurm' ? 'sbatch would alter the value (it blanks out "packjob")' : 'the value ends in a backslash, which would continue the line'
  }
  if (value === '') return 'the value is empty; give KEY=VALUE, or KEY alone for an option that takes none'
  return undefined
}

/** Shows a rejected text in one line. */
function printable(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text).slice(1, -1)
}

/** `KEY=VALUE` or a bare `KEY`, as --batch-option takes it. */
export function splitBatchOption(text: string): {key: string; value?: string} {
  const eq = text.indexOf('=')
  return eq < 0 ? {key: text.trim()} : {key: text.slice(0, eq).trim(), value: text.slice(eq + 1)}
}

/**
 * The extra directives of one request: the queue's defaults from the machine
 * file, then the request's own (a request's KEY replaces the default's). Each
 * is checked; the first that cannot be a directive is a one-line error naming
 * `flag` (or the machine file).
 */
export function resolveBatchOptions(
  kind: BatchOptionKind,
  defaults: Record<string, string | true>,
  given: string[],
  context: BatchOptionContext,
  flag = '--batch-option',
): BatchOption[] {
  const options = new Map<string, BatchOption>()
  const identity = (key: string) => (kind === 'slurm' ? normalKey(kind, key) : key.toLowerCase().replace(/^my\./, '+'))
  for (const [key, raw] of Object.entries(defaults)) {
    const value = raw === true ? undefined : raw
    const problem = batchOptionProblem(kind, key, value, context)
    if (problem !== undefined) throw userError(`The machine file's batch option '${printable(key)}' cannot be used: ${problem}; fix the machine file.`)
    options.set(identity(key), {key: normalKey(kind, key), ...(value === undefined ? {} : {value}), from: 'machine'})
  }
  for (const text of given) {
    const {key, value} = splitBatchOption(text)
    if (key === '') throw userError(`${flag} '${printable(text)}' has no key; give KEY=VALUE (e.g. ${kind === 'slurm' ? 'reservation=myres' : 'notification=Error'}).`)
    const problem = batchOptionProblem(kind, key, value, context)
    if (problem !== undefined) throw userError(`${flag} '${printable(text)}' is refused: ${problem}.`)
    options.delete(identity(key))
    options.set(identity(key), {key: normalKey(kind, key), ...(value === undefined ? {} : {value}), from: 'request'})
  }
  return [...options.values()]
}

/** How an option reads on the batch system's command line, for the dry-run text. */
export function batchOptionText(kind: BatchOptionKind, option: Pick<BatchOption, 'key' | 'value'>): string {
  if (kind === 'htcondor') return `${option.key} = ${option.value ?? ''}`
  if (option.value === undefined) return `--${option.key}`
  return /^[A-Za-z0-9_.:,=+@/%-]+$/.test(option.value) ? `--${option.key}=${option.value}` : `--${option.key}=${directiveString(option.value)}`
}
