import type {LoginOverrides} from '../condor/index.js'
import type {LoginTarget} from '../ssh/transport.js'

/** A host and a user to log in as, either of which may be left to the next source. */
export interface LoginChoice {
  host?: string
  user?: string
}

/**
 * Where every verb logs in to a system: the flags (--login-host,
 * --login-name), else what the state job recorded (the login its create
 * used), else the admin's per-system overrides (HPC_ANNEX_<SYSTEM>_HOST_NAME
 * and _USER_NAME), else the machine file's host; the user's ssh_config
 * resolves the rest.
 */
export function loginTarget(machineHost: string, from: {flags?: LoginChoice; recorded?: LoginChoice; overrides?: LoginOverrides}, sshConfigFile?: string): LoginTarget {
  const pick = (key: 'host' | 'user') => from.flags?.[key] ?? from.recorded?.[key] ?? from.overrides?.[key]
  const user = pick('user')
  return {host: pick('host') ?? machineHost, ...(user === undefined ? {} : {user}), ...(sshConfigFile === undefined ? {} : {configFile: sshConfigFile})}
}
