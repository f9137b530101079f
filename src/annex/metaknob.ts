import {chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {AnnexError, userError} from '../errors.js'
import {renderFile} from '../render/index.js'
import type {AdminCondor} from './admin-condor.js'

/** The file `--install` writes into the AP's configuration directory. */
export const METAKNOB_FILE = '50-hpc-annex.config'
/**
 * Where replaced files are kept, inside the configuration directory. HTCondor
 * reads every file of a LOCAL_CONFIG_DIR (a `.bak` too) but skips
 * subdirectories and names starting with a dot, so a backup here is never
 * read as configuration.
 */
export const BACKUP_DIR = '.hpc-annex-backups'
/** The token signing key when this HTCondor names no AP signing key. */
export const DEFAULT_TOKEN_KEY_NAME = 'hpcannex-key'

export interface MetaknobOptions {
  /** Add the AnnexJobsExclusively transform (ANNEX_JOBS_EXCLUSIVELY = true). */
  exclusive: boolean
}

/** The full AP configuration, for HTCondor releases without `use feature:HPC_ANNEX`. */
export function renderMetaknob(options: MetaknobOptions): string {
  return renderFile('metaknobs', 'hpc-annex.config.hbs', {exclusive: options.exclusive, defaultKeyName: DEFAULT_TOKEN_KEY_NAME})
}

/** The configuration that uses this HTCondor's own feature. */
export function renderBuiltinUse(options: MetaknobOptions): string {
  return renderFile('metaknobs', 'prefer-builtin.config.hbs', {exclusive: options.exclusive})
}

export interface MetaknobChoice {
  content: string
  /** True when the content is `use feature:HPC_ANNEX`. */
  builtin: boolean
}

/**
 * With preferBuiltin, the one `use feature:HPC_ANNEX` line when this AP's
 * HTCondor has that feature; otherwise the full configuration.
 */
export async function chooseMetaknob(
  options: MetaknobOptions & {preferBuiltin: boolean},
  condor: Pick<AdminCondor, 'configTemplate'>,
): Promise<MetaknobChoice> {
  if (options.preferBuiltin && (await condor.configTemplate('feature', 'HPC_ANNEX')) !== undefined) {
    return {content: renderBuiltinUse(options), builtin: true}
  }
  return {content: renderMetaknob(options), builtin: false}
}

/** The first directory of the AP's LOCAL_CONFIG_DIR. */
export async function defaultConfigDir(condor: Pick<AdminCondor, 'configValues'>): Promise<string> {
  const values = await condor.configValues(['LOCAL_CONFIG_DIR'])
  const first = (values.LOCAL_CONFIG_DIR ?? '').split(/[\s,]+/).find((entry) => entry !== '')
  if (first === undefined) {
    throw userError('This AP defines no LOCAL_CONFIG_DIR, so there is no configuration directory to install into.', 'give one: hpc-annex admin metaknob --install DIR')
  }
  return first
}

export type InstallAction = 'created' | 'unchanged' | 'replaced'

export interface InstallResult {
  path: string
  action: InstallAction
  /** Where the replaced file was kept. */
  backup?: string
}

export interface InstallOptions {
  /** Replace a different file of the same name (keeping a backup). */
  force: boolean
  /** For the backup's name; the current time by default. */
  now?: Date
}

function stamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

function fsError(error: unknown, what: string): AnnexError {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return userError(`Cannot ${what}: permission denied.`, 'run it as root, e.g. sudo hpc-annex admin metaknob --install')
  }
  return new AnnexError(`Cannot ${what}: ${(error as Error).message}`, {exit: 2, cause: error})
}

function keepBackup(dir: string, path: string, now: Date): string {
  const backups = join(dir, BACKUP_DIR)
  try {
    mkdirSync(backups, {recursive: true, mode: 0o755})
    let backup = join(backups, `${METAKNOB_FILE}.${stamp(now)}.bak`)
    for (let n = 1; existsSync(backup); n++) backup = join(backups, `${METAKNOB_FILE}.${stamp(now)}-${n}.bak`)
    copyFileSync(path, backup)
    chmodSync(backup, statSync(path).mode & 0o777)
    return backup
  } catch (error) {
    throw fsError(error, `keep a backup of ${path} in ${backups}`)
  }
}

/**
 * Writes `content` as DIR/50-hpc-annex.config, mode 0644. The same content
 * already there is left alone; a different file is replaced only with force,
 * and then kept in DIR/.hpc-annex-backups first. The new file appears whole
 * (written beside it under a hidden name, then renamed).
 */
export function installMetaknob(dir: string, content: string, options: InstallOptions): InstallResult {
  let isDir = false
  try {
    isDir = statSync(dir).isDirectory()
  } catch {
    // reported below
  }
  if (!isDir) throw userError(`${dir} is not a directory.`, 'give the AP\'s configuration directory (condor_config_val LOCAL_CONFIG_DIR): --install DIR')

  const path = join(dir, METAKNOB_FILE)
  let existing: string | undefined
  if (existsSync(path)) {
    if (!lstatSync(path).isFile()) throw userError(`${path} is not a regular file; refusing to replace it.`, 'move it away, then install again')
    try {
      existing = readFileSync(path, 'utf8')
    } catch (error) {
      throw fsError(error, `read ${path}`)
    }
  }

  if (existing === content) {
    if ((statSync(path).mode & 0o777) !== 0o644) {
      try {
        chmodSync(path, 0o644)
      } catch (error) {
        throw fsError(error, `set the mode of ${path}`)
      }
    }
    return {path, action: 'unchanged'}
  }
  if (existing !== undefined && !options.force) {
    throw userError(
      `${path} exists and differs from the configuration hpc-annex would write.`,
      'compare them (hpc-annex admin metaknob prints it), then run again with --force to replace it; the old file is kept as a backup',
    )
  }

  const backup = existing === undefined ? undefined : keepBackup(dir, path, options.now ?? new Date())
  const temporary = join(dir, `.${METAKNOB_FILE}.${process.pid}.tmp`)
  try {
    writeFileSync(temporary, content, {mode: 0o644, flag: 'w'})
    chmodSync(temporary, 0o644) // whatever the umask
    renameSync(temporary, path)
  } catch (error) {
    rmSync(temporary, {force: true})
    throw fsError(error, `write ${path}`)
  }
  return backup === undefined ? {path, action: 'created'} : {path, action: 'replaced', backup}
}
