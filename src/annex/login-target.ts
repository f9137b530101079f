import type {LoginOverrides} from '../condor/index.js'
import type {LoginTarget} from '../ssh/transport.js'

/** A host and a user to log in as, either of which may be left to the next source. */
export interface LoginChoice {
  host?: string
  user?: string
  /** The directory of the SSH control socket: --tmp_dir (flags), ANNEX_TMP_DIR (overrides). */
  controlDir?: string
}

/**
 * Where every verb logs in to a system: the flags (--login-host,
 * --login-name), else what the state job recorded (the login its create
 * used), else the admin's per-system overrides (HPC_ANNEX_<SYSTEM>_HOST_NAME
 * and _USER_NAME), else the machine file's host; the user's ssh_config
 * resolves the rest. The SSH control socket's directory is --tmp_dir, else
 * ANNEX_TMP_DIR, else the transport's default (~/.hpc-annex), as HTCondor's
 * tool has it, so that either tool's open connection serves the other.
 */
export function loginTarget(machineHost: string, from: {flags?: LoginChoice; recorded?: LoginChoice; overrides?: LoginOverrides}, sshConfigFile?: string): LoginTarget {
  const pick = (key: 'host' | 'user') => from.flags?.[key] ?? from.recorded?.[key] ?? from.overrides?.[key]
  const user = pick('user')
  const controlDir =
    from.flags?.controlDir !== undefined
      ? {path: from.flags.controlDir, from: '--tmp_dir'}
      : from.overrides?.controlDir !== undefined
        ? {path: from.overrides.controlDir, from: 'ANNEX_TMP_DIR'}
        : undefined
  return {
    host: pick('host') ?? machineHost,
    ...(user === undefined ? {} : {user}),
    ...(sshConfigFile === undefined ? {} : {configFile: sshConfigFile}),
    ...(controlDir === undefined ? {} : {controlDir}),
  }
}
