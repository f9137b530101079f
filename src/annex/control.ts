/**
 * The back-end's stdout, read as it streams: a line `=-.-= ATTR VALUE` is a
 * control line (the tool sets hpc_annex_ATTR on the request job); a segment
 * after a carriage return is a progress update replacing the previous one;
 * anything else is ordinary output.
 */
export type BackendEvent =
  | {kind: 'control'; attribute: string; value: string}
  | {kind: 'progress'; text: string}
  | {kind: 'output'; line: string}

const CONTROL = /^=-\.-= ([A-Za-z_][A-Za-z0-9_]*) ?(.*)$/

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
    const control = CONTROL.exec(segment)
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
