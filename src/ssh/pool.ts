/**
 * At most `cap` sessions open at once on one connection; the rest wait in
 * order. The server's limit (OpenSSH's MaxSessions, 10 by default, 1 at some
 * sites) is not announced, so the cap starts at the configured value and is
 * lowered when the server refuses a session while others are open: the
 * refused work goes back to the front of the queue.
 */
export class SessionPool {
  /** Sessions in a row without a refusal before the cap grows back by one. */
  static readonly GROW_AFTER = 50
  #cap: number
  readonly #max: number
  #successes = 0
  #active = 0
  #open = 0
  #peak = 0
  #waiting: Array<{resolve: () => void; reject: (error: unknown) => void; cleanup: () => void}> = []
  #failure: unknown

  constructor(cap = 10) {
    this.#cap = Math.max(1, Math.floor(cap))
    this.#max = this.#cap
  }

  get cap(): number {
    return this.#cap
  }

  get active(): number {
    return this.#active
  }

  get waiting(): number {
    return this.#waiting.length
  }

  /** Waits for a slot; the caller must `release()` it exactly once. */
  acquire(signal?: AbortSignal, front = false): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#active < this.#cap && (front || this.#waiting.length === 0)) {
      this.#active++
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(entry)
        if (index >= 0) this.#waiting.splice(index, 1)
        reject(signal?.reason)
      }
      const entry = {
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      }
      signal?.addEventListener('abort', onAbort, {once: true})
      if (front) this.#waiting.unshift(entry)
      else this.#waiting.push(entry)
    })
  }

  /** A session of a held slot is open on the server: the server allows at least this many at once. */
  opened(): void {
    this.#open++
    this.#peak = Math.max(this.#peak, this.#open)
  }

  /** Gives a slot back; `wasOpen` when opened() was called for it. */
  release(wasOpen = false): void {
    this.#active = Math.max(0, this.#active - 1)
    if (wasOpen) this.#open = Math.max(0, this.#open - 1)
    this.#drain()
  }

  /** The most sessions seen open at once. */
  get peak(): number {
    return this.#peak
  }

  /**
   * The server refused a session while this slot was held: gives the slot
   * back and lowers the cap. When sessions are known to have been open at
   * once (opened()), the cap goes to that peak: a refusal right after a
   * session ended can be transient (the server frees a session a moment
   * after closing its channel), so the cap never goes below what has worked.
   * Without that knowledge, the cap goes to the number of other slots held.
   * Returns how many other slots are held.
   */
  refused(): number {
    this.#active = Math.max(0, this.#active - 1)
    const others = this.#active
    this.#cap = Math.max(1, Math.min(this.#cap, this.#peak > 0 ? this.#peak : others))
    this.#successes = 0
    this.#drain()
    return others
  }

  /** A session ran: after many in a row without a refusal, the cap may grow back by one. */
  succeeded(): void {
    if (++this.#successes >= SessionPool.GROW_AFTER && this.#cap < this.#max) {
      this.#cap++
      this.#successes = 0
      this.#drain()
    }
  }

  /** Every waiter and every later acquire rejects with `error`. */
  fail(error: unknown): void {
    if (this.#failure !== undefined) return
    this.#failure = error
    const waiting = this.#waiting.splice(0)
    for (const entry of waiting) {
      entry.cleanup()
      entry.reject(error)
    }
  }

  #drain(): void {
    while (this.#active < this.#cap && this.#waiting.length > 0) {
      const entry = this.#waiting.shift()
      if (!entry) break
      entry.cleanup()
      this.#active++
      entry.resolve()
    }
  }
}

/**
 * Runs `attempt` in a pool slot; when it reports a refused session, the cap
 * is lowered and the work queued again at the front (after a short pause, as
 * the refusal may be transient), so a server with MaxSessions 1 still runs
 * everything, one at a time. `attempt` calls `opened` once its session is
 * open.
 */
export async function withSession<T>(
  pool: SessionPool,
  signal: AbortSignal | undefined,
  attempt: (opened: () => void) => Promise<{refused: true; error: unknown} | {refused: false; value: T}>,
): Promise<T> {
  let front = false
  let refusals = 0
  for (;;) {
    await pool.acquire(signal, front)
    let wasOpen = false
    const opened = (): void => {
      if (wasOpen) return
      wasOpen = true
      pool.opened()
    }
    let outcome: {refused: true; error: unknown} | {refused: false; value: T}
    try {
      outcome = await attempt(opened)
    } catch (error) {
      pool.release(wasOpen)
      throw error
    }
    if (!outcome.refused) {
      pool.release(wasOpen)
      pool.succeeded()
      return outcome.value
    }
    const others = pool.refused()
    // Refused again and again with nothing else open: not the session limit.
    if (others === 0 && ++refusals >= 10) throw outcome.error
    await pause(Math.min(500, 20 * 2 ** Math.min(refusals, 5)), signal)
    front = true
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}
