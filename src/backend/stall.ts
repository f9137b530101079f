import {systemError} from '../errors.js'

/**
 * Fails a step that makes no progress for `stallMs`, however long it runs
 * while progressing: a big upload at a steady rate never times out, a hung
 * one does. Call `progress()` on every byte or line of activity.
 */
export class StallWatchdog {
  private readonly controller = new AbortController()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly step: string, private readonly stallMs: number) {
    this.arm()
  }

  /** Aborted (with an AnnexError naming the step) when the step stalls. */
  get signal(): AbortSignal {
    return this.controller.signal
  }

  progress(): void {
    if (!this.controller.signal.aborted) this.arm()
  }

  stop(): void {
    clearTimeout(this.timer)
  }

  private arm(): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.controller.abort(systemError(`${this.step} made no progress for ${Math.round(this.stallMs / 1000)} seconds; giving up.`))
    }, this.stallMs)
    this.timer.unref()
  }
}
