/**
 * The contract between hpc-annex and the generated back-end script on the
 * login node, declared once: the control lines the back-end prints, its exit
 * codes and what they mean. The templates take the names and numbers from
 * here (backend/files.ts puts them in the render view).
 */

/** A control line is `=-.-= NAME VALUE` on the back-end's stdout. */
export const CONTROL_MARK = '=-.-='

/** The control lines' names. */
export const CONTROL = {
  /** The back-end's process id on the login node (recorded on the state job). */
  pid: 'PID',
  /** The pilot directory it made (recorded on the state job). */
  pilotDir: 'PILOT_DIR',
  /** The batch job's id (recorded on the state job). */
  jobId: 'JOB_ID',
  /** An object the login node's cache holds: `SHA256 BYTES` (the answer to the cache question). */
  cached: 'CACHED',
  /** The end of that answer. */
  cacheEnd: 'CACHE_END',
  /**
   * When SLURM would start the batch job (sbatch --test-only with the script about to be
   * submitted): `NOW START NODELIST` in epoch seconds, or `NOW - WHAT_SBATCH_SAID` when it gave none.
   */
  estimate: 'ESTIMATE',
  /** Something the user should know that is not a failure. */
  warning: 'WARNING',
  /** Something the back-end did on the user's behalf that they should know of (it swept what killed runs left). */
  notice: 'NOTICE',
  /**
   * The back-end is working (no value): sent every HEARTBEAT_SECONDS, since
   * some steps print nothing for minutes. The front-end's stall watchdog
   * counts it as progress, and it is otherwise ignored.
   */
  heartbeat: 'HEARTBEAT',
  /**
   * The back-end, failing once it had started to submit, cancelled every batch
   * job of the request (no value); its pilot directory goes as it exits. What
   * hpc-annex undoes leaves those alone.
   */
  withdrawn: 'WITHDRAWN',
} as const

/** Seconds between the back-end's heartbeats: well within the shortest --stall-timeout (5 s). */
export const HEARTBEAT_SECONDS = 2

export type ControlName = (typeof CONTROL)[keyof typeof CONTROL]

/**
 * hpc-annex's answer once the state job holds the reported batch job id: this
 * line on the back-end's stdin, after the bundle. Until it comes the back-end
 * keeps its undo armed; no answer (end of input, a lost session, its time
 * running out) and it cancels the job itself, since nobody else knows its id.
 */
export const JOB_ID_RECORDED = 'JOB_ID_RECORDED'

/**
 * The bundle's tar stream is padded to whole records of this size (the
 * scripts, with their filler, and the whole stream), and the back-end's tar
 * reads exactly such records (GNU tar's default, -b 20 -B), so it stops at
 * the record holding the archive's end and leaves what follows on stdin
 * (JOB_ID_RECORDED) to the back-end.
 */
export const TAR_RECORD_BYTES = 20 * 512

/** The control values the state job records, as hpc_annex_<NAME>. */
export const RECORDED_CONTROLS = [CONTROL.pid, CONTROL.pilotDir, CONTROL.jobId] as const
export type RecordedControl = (typeof RECORDED_CONTROLS)[number]

/**
 * The back-end's exit codes, one per failure, so the front-end can say what
 * went wrong without parsing prose. 0: the batch job was submitted (or had
 * been, by an earlier try of the same request).
 */
export const BACKEND_EXIT = {
  bundle: 10,
  earlierCheck: 11,
  pilotDir: 12,
  unsupportedOs: 13,
  unpinned: 14,
  download: 15,
  checksum: 16,
  unpack: 17,
  populate: 18,
  machineSetup: 19,
  submit: 20,
  submitOutput: 21,
  unconfirmed: 22,
} as const

/** What each back-end exit code means, for the front-end's one-line error. */
export const BACKEND_FAILURES: Record<number, string> = {
  [BACKEND_EXIT.bundle]: 'the staged files were incomplete on the login node',
  [BACKEND_EXIT.earlierCheck]: 'could not check the batch system for an earlier submission of this request',
  [BACKEND_EXIT.pilotDir]: 'could not make the pilot directory in the machine\'s scratch space',
  [BACKEND_EXIT.unsupportedOs]: 'no HTCondor build for the login node\'s operating system',
  [BACKEND_EXIT.unpinned]: 'refused an HTCondor tarball that no pinned or published sha256 vouches for',
  [BACKEND_EXIT.download]: 'could not download HTCondor on the login node',
  [BACKEND_EXIT.checksum]: 'the HTCondor tarball\'s sha256 did not match',
  [BACKEND_EXIT.unpack]: 'could not unpack HTCondor on the login node',
  [BACKEND_EXIT.populate]: 'could not prepare the pilot directory',
  [BACKEND_EXIT.machineSetup]: 'the machine-specific set-up failed',
  [BACKEND_EXIT.submit]: 'the batch system refused the job',
  [BACKEND_EXIT.submitOutput]: 'the batch system printed no job id',
  [BACKEND_EXIT.unconfirmed]: 'the Access Point did not confirm that it recorded the batch job id, so the back-end cancelled the job and removed the pilot directory',
}

/**
 * The back-end's stdout, read as it streams: a control line (the tool sets
 * hpc_annex_NAME on the request job for the recorded ones); a segment after a
 * carriage return is a progress update replacing the previous one; anything
 * else is ordinary output.
 */
export type BackendEvent =
  | {kind: 'control'; attribute: string; value: string}
  | {kind: 'progress'; text: string}
  | {kind: 'output'; line: string}

const CONTROL_LINE = new RegExp(`^${CONTROL_MARK.replace(/[.]/g, '\\.')} ([A-Za-z_][A-Za-z0-9_]*) ?(.*)$`)

export class BackendOutputParser {
  private pending = ''
  private pendingIsProgress = false

  /** Feeds a chunk; returns the events it completes. */
  push(chunk: string | Buffer): BackendEvent[] {
    const events: BackendEvent[] = []
    for (const char of String(chunk)) {
      if (char === '\n' || char === '\r') {
        this.flushSegment(events)
        this.pendingIsProgress = char === '\r'
      } else {
        this.pending += char
      }
    }
    return events
  }

  /** Ends the stream: a last segment without a newline still counts. */
  end(): BackendEvent[] {
    const events: BackendEvent[] = []
    this.flushSegment(events)
    return events
  }

  private flushSegment(events: BackendEvent[]): void {
    const segment = this.pending
    this.pending = ''
    if (segment === '') return
    if (this.pendingIsProgress) {
      events.push({kind: 'progress', text: segment.trim()})
      return
    }
    const control = CONTROL_LINE.exec(segment)
    if (control) events.push({kind: 'control', attribute: control[1]!, value: control[2]!.trim()})
    else events.push({kind: 'output', line: segment})
  }
}

/**
 * Passes values on through `write`, one write at a time; values set while a
 * write runs go together in the next one, the latest value of each key
 * winning. A failed write does not stop later ones; `error` keeps the first failure.
 */
export class CoalescingWriter<K extends string> {
  #pending: Partial<Record<K, string>> = {}
  #running: Promise<void> | undefined
  #error: unknown

  constructor(private readonly write: (values: Partial<Record<K, string>>) => Promise<void>) {}

  set(key: K, value: string): void {
    this.#pending[key] = value
    this.#running ??= this.#drain().finally(() => (this.#running = undefined))
  }

  /** Resolves once every value set so far is written (or its write failed). */
  async flush(): Promise<void> {
    await this.#running
  }

  /** The first write's failure, if one failed. */
  get error(): unknown {
    return this.#error
  }

  async #drain(): Promise<void> {
    while (Object.keys(this.#pending).length > 0) {
      const values = this.#pending
      this.#pending = {}
      await this.write(values).catch((error: unknown) => {
        this.#error ??= error
      })
    }
  }
}
