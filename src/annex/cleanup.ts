import {oneLine} from '../errors.js'

/**
 * An undo. It returns false when there was nothing to undo, and is then left
 * out of the report (which says only what was really undone); or a phrase
 * that says more exactly what it did, which the report then gives instead of
 * the phrase it was registered with.
 */
type UndoRun = () => Promise<void | boolean | string>

interface Undo {
  what: string
  run: UndoRun
}

/** What a clean-up did: each registered undo, in the order it ran, and whether it worked. */
export interface CleanupReport {
  undone: string[]
  failed: {what: string; error: string}[]
}

/**
 * Undo actions for a multi-step operation. Each is registered BEFORE the
 * thing it undoes is made (an undo must tolerate that thing not existing), so
 * a failure or Ctrl-C at any point leaves nothing half-made. On failure they
 * run last-registered first; on success the caller dismisses them.
 */
export class CleanupStack {
  private undos: Undo[] = []
  private running: Promise<CleanupReport> | undefined

  register(what: string, run: UndoRun): () => void {
    const undo = {what, run}
    this.undos.push(undo)
    return () => {
      this.undos = this.undos.filter((u) => u !== undo)
    }
  }

  /** Forget every undo: the operation succeeded. */
  dismiss(): void {
    this.undos = []
  }

  get pending(): number {
    return this.undos.length
  }

  /** Runs every undo once (later calls share the first run), newest first; never throws. */
  unwind(): Promise<CleanupReport> {
    this.running ??= (async () => {
      const report: CleanupReport = {undone: [], failed: []}
      const undos = this.undos.reverse()
      this.undos = []
      for (const undo of undos) {
        try {
          const outcome = await undo.run()
          if (outcome !== false) report.undone.push(typeof outcome === 'string' ? outcome : undo.what)
        } catch (error) {
          report.failed.push({what: undo.what, error: oneLine(error instanceof Error ? error.message : String(error))})
        }
      }
      return report
    })()
    return this.running
  }
}

/** "removed the state job 12.0, deleted the local token" — for the one-line error. */
export function describeCleanup(report: CleanupReport): string {
  const parts: string[] = []
  if (report.undone.length) parts.push(`undone: ${report.undone.join(', ')}`)
  if (report.failed.length) parts.push(`NOT undone: ${report.failed.map((f) => `${f.what} (${f.error})`).join(', ')}`)
  return parts.join('; ')
}
