import type {Readable} from 'node:stream'

/**
 * Where to log in. Built from the machine's login host and the user's flags;
 * the user's OpenSSH configuration (`~/.ssh/config`, or `configFile`) may map
 * `host` to another HostName/Port/User/IdentityFile, as `ssh` would.
 */
export interface LoginTarget {
  host: string
  user?: string
  port?: number
  /** An ssh_config file to read instead of ~/.ssh/config (tests, HPC_ANNEX_SSH_CONFIG). */
  configFile?: string
  /** A known_hosts file to verify the host key against instead of ~/.ssh/known_hosts. */
  knownHostsFile?: string
  /** A private key to offer before the configured ones. */
  identityFile?: string
  /**
   * OpenSSH: the directory of the master socket (`<path>/master-%C`) the user
   * named, and where it was named (`--tmp_dir`, `ANNEX_TMP_DIR`); without it,
   * the default directory (~/.hpc-annex, HTCondor's).
   */
  controlDir?: {path: string; from: string}
}

/** One keyboard-interactive (or password) question from the login node. */
export interface Prompt {
  prompt: string
  echo: boolean
}

/**
 * How the transport talks to the person at the terminal: the login node's
 * questions (2FA codes, passwords) and short progress messages. The answers
 * are secrets: a transport never logs or prints them.
 */
export interface Interaction {
  /** Answers each prompt, in order. Rejecting aborts the login. */
  answer(prompts: Prompt[], instructions: string, name: string): Promise<string[]>
  /** "Connecting to login.anvil.rcac.purdue.edu", "Authenticated (publickey)". */
  progress?(message: string): void
  /**
   * Whether a person can answer (a terminal is there). Without one, a
   * transport refuses an unknown host key instead of asking. Default: stdin
   * and stderr are terminals.
   */
  readonly interactive?: boolean
}

export interface ExecOptions {
  /** Streamed to the remote command's stdin, then EOF. Without it stdin is closed at once. */
  stdin?: Readable
  /** Each chunk of remote stdout / stderr as it arrives. */
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
  /** Aborting closes the channel (the remote command gets SIGHUP/EOF) and rejects with the signal's reason. */
  signal?: AbortSignal
  /** Keep stdout/stderr in the result (default true); false for big outputs read through the callbacks. */
  collect?: boolean
}

export interface ExecResult {
  /** The remote exit status; null when the command died of a signal. */
  code: number | null
  signal?: string
  stdout: string
  stderr: string
}

/**
 * One login to one login node, shared by every remote action of a command:
 * the user authenticates (and answers 2FA) once, each exec is a channel on
 * that connection. Implementations never open a second connection on their
 * own; when the connection is lost, every exec in flight rejects and later
 * ones fail at once.
 */
export interface Transport {
  /** Authenticates; verifies the host key against known_hosts and refuses an unknown or changed one. */
  connect(target: LoginTarget, interaction: Interaction): Promise<void>
  /** Runs `command` through the login shell (`bash -c`-style string, already quoted by the caller). */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>
  /** Closes the connection; safe to call more than once or before connect. */
  close(): Promise<void>
  /**
   * The target connect() will most likely be given: what depends on it alone
   * (reading the ssh configuration) may start now. connect() still decides.
   */
  expect?(target: LoginTarget): void
}

export type TransportKind = 'ssh2' | 'openssh'
