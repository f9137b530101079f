import type {RequestInput} from '../catalog/index.js'
import {Args, Flags} from './oclif.js'
import {loginTargetFlags, tmpDirFlag} from './ssh-flag.js'

/**
 * The request flags of `create` and `add`, spelled as HTCondor's
 * `htcondor annex create` spells them. Numbers arrive as text and are checked
 * by the catalog, so every error names its flag the same way.
 */
export const requestArgs = {
  name: Args.string({description: 'Name of the annex (letters, digits, ".", "_", "-").', required: true}),
  target: Args.string({description: 'Where to get resources: QUEUE@SYSTEM, e.g. wholenode@anvil.', required: true}),
}

export const requestFlags = {
  nodes: Flags.string({description: 'Number of nodes. [default: 1]', helpValue: 'N'}),
  lifetime: Flags.string({description: 'Seconds the annex lasts. [default: 3600]', helpValue: 'SECONDS'}),
  project: Flags.string({description: 'Project (allocation) to charge.', helpValue: 'NAME'}),
  cpus: Flags.string({description: 'CPUs per node (shared-node queues).', helpValue: 'N'}),
  mem_mb: Flags.string({description: 'Memory per node in MB (shared-node queues).', helpValue: 'MB'}),
  gpus: Flags.string({description: 'GPUs per node, as N or TYPE:N.', helpValue: 'N|TYPE:N'}),
  'gpu-type': Flags.string({description: 'GPU type, on queues that offer a choice.', helpValue: 'TYPE'}),
  'idle-time': Flags.string({
    aliases: ['startd-noclaim-shutdown'],
    description: 'Seconds a pilot may run no job before it shuts down. [default: 300]',
    helpValue: 'SECONDS',
  }),
  ...loginTargetFlags,
  pool: Flags.string({description: 'Collector the pilots report to. [default: ANNEX_COLLECTOR]', helpValue: 'ADDRESS'}),
  token_file: Flags.string({description: 'Use this HTCondor token instead of minting one.', helpValue: 'PATH'}),
  password_file: Flags.string({description: 'Annex password file. [default: ANNEX_PASSWORD_FILE]', helpValue: 'PATH'}),
  tmp_dir: tmpDirFlag,
  owners: Flags.string({description: 'Comma-separated users whose jobs may run on the annex. [default: you]', helpValue: 'USERS'}),
  'batch-option': Flags.string({
    description: 'An extra batch directive, repeatable: #SBATCH --KEY=VALUE on SLURM, a submit-description line on an HTCondor pool (KEY alone: an option without a value). Directives hpc-annex sets itself are refused.',
    helpValue: 'KEY=VALUE',
    multiple: true,
  }),
}

type RequestFlagValues = {[K in Exclude<keyof typeof requestFlags, 'batch-option'>]?: string} & {'batch-option'?: string[]}

/** The parsed arguments and flags as the catalog's RequestInput. */
export function requestInput(args: {name: string; target: string}, flags: RequestFlagValues): RequestInput {
  const input: RequestInput = {name: args.name, target: args.target}
  const map: [Exclude<keyof RequestInput, 'batchOptions'>, string | undefined][] = [
    ['nodes', flags.nodes],
    ['lifetime', flags.lifetime],
    ['project', flags.project],
    ['cpus', flags.cpus],
    ['memMb', flags.mem_mb],
    ['gpus', flags.gpus],
    ['gpuType', flags['gpu-type']],
    ['idleTime', flags['idle-time']],
    ['loginName', flags['login-name']],
    ['loginHost', flags['login-host']],
    ['pool', flags.pool],
    ['tokenFile', flags.token_file],
    ['passwordFile', flags.password_file],
    ['tmpDir', flags.tmp_dir],
    ['owners', flags.owners],
  ]
  for (const [key, value] of map) if (value !== undefined) input[key] = value
  if (flags['batch-option'] !== undefined) input.batchOptions = flags['batch-option']
  return input
}

/**
 * HTCondor's hidden `--test N` (N = 1: validate only) takes a value; hpc-annex's
 * `--test` is --dry-run and takes none. `--test N` and `--test=N` become `--test`.
 */
export function htcondorTestFlag(argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      out.push(...argv.slice(i))
      break
    }
    if (/^--test=\d+$/.test(arg)) {
      out.push('--test')
    } else {
      out.push(arg)
      if (arg === '--test' && /^\d+$/.test(argv[i + 1] ?? '')) i++
    }
  }
  return out
}
