import {showCache} from '../annex/cache.js'
import {cacheJson} from '../cli/json/project.js'
import type {CacheOutput} from '../cli/json/schemas.js'
import {AnnexCommand} from '../cli/base.js'
import {formatCacheList, formatCachePrune, parseByteCount, parseDays} from '../cli/cache-text.js'
import {interruptSignal} from '../cli/interrupt.js'
import {loginOptions, sshFlag, tmpDirFlag} from '../cli/login.js'
import {Args, Flags} from '../cli/oclif.js'
import {loginTargetFlags} from '../cli/ssh-flag.js'
import {userError} from '../errors.js'

export default class Cache extends AnnexCommand {
  static override summary = "List or prune hpc-annex's cache on a system's login node (HTCondor tarballs and releases, container images)."
  static override description =
    'Logs in to the login node once and lists ~/.hpc-annex/cache: each object with its size, last use and the annexes that used it, ' +
    'the total, and the quota (quota -s) and file system (df) figures. With --prune, removes objects least recently used first, ' +
    'never one a pilot directory that still exists uses.'

  static override examples = [
    '<%= config.bin %> cache anvil',
    '<%= config.bin %> cache anvil --prune --older-than 30',
    '<%= config.bin %> cache anvil --prune --keep-bytes 20G --dry-run',
  ]

  static override args = {
    system: Args.string({description: 'The system whose login node it is (see `hpc-annex systems`).', required: true}),
  }

  static override flags = {
    prune: Flags.boolean({description: 'Remove objects no running pilot uses, least recently used first.'}),
    'older-than': Flags.string({description: 'With --prune: only objects not used for DAYS days.', helpValue: 'DAYS'}),
    'keep-bytes': Flags.string({description: 'With --prune: stop once the cache holds at most N bytes (K, M, G, T: powers of 1024).', helpValue: 'N'}),
    'dry-run': Flags.boolean({description: 'With --prune: say what would be removed, remove nothing.'}),
    ...loginTargetFlags,
    ssh: sshFlag,
    tmp_dir: tmpDirFlag,
  }

  async run(): Promise<CacheOutput> {
    const {args, flags} = await this.parse(Cache)
    for (const flag of ['older-than', 'keep-bytes', 'dry-run'] as const) {
      if (flags[flag] !== undefined && flags[flag] !== false && !flags.prune) throw userError(`--${flag} goes with --prune; add --prune, or drop --${flag}.`)
    }
    const olderThanDays = flags['older-than'] === undefined ? undefined : parseDays(flags['older-than'], '--older-than')
    const keepBytes = flags['keep-bytes'] === undefined ? undefined : parseByteCount(flags['keep-bytes'], '--keep-bytes')
    const json = this.jsonEnabled()
    const result = await showCache({
      system: args.system,
      ...(flags['login-name'] === undefined ? {} : {loginName: flags['login-name']}),
      ...(flags['login-host'] === undefined ? {} : {loginHost: flags['login-host']}),
      ...(flags.prune
        ? {prune: {dryRun: flags['dry-run'] === true, ...(olderThanDays === undefined ? {} : {olderThanDays}), ...(keepBytes === undefined ? {} : {keepBytes})}}
        : {}),
      login: loginOptions(flags.ssh, json, flags.tmp_dir),
      signal: interruptSignal(),
    })
    if (!json) this.log(result.prune ? formatCachePrune(result) : formatCacheList(result))
    if ((result.prune?.failed ?? 0) > 0) process.exitCode = 2
    return cacheJson(result)
  }
}
