import type {BatchSystem} from '../batch/index.js'
import {userError} from '../errors.js'
import {shellQuote} from '../quote.js'

/** A pilot directory as the back-end makes it: pilot.<8 characters> in the machine's scratch. */
const PILOT_DIR_NAME = 'pilot.????????'

/** The pilot directory a state job recorded, if it is an absolute plain path (it is put in commands). */
export function checkPilotDir(dir: string): string {
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  const plain = dir.startsWith('/') && dir.length > 1 && !/[\u0000-\u001f\u007f]/.test(dir) &&
    dir.slice(1).split('/').every((part) => part !== '' && part !== '.' && part !== '..')
  if (!plain) throw userError(`refusing the pilot directory ${JSON.stringify(dir)} recorded on the state job: it is not an absolute plain path`)
  return dir
}

/**
 * Shell lines that remove a pilot directory (and the secrets in it) that a
 * batch job will never clean up (it was cancelled before it ran), only if it
 * is one the back-end made: named as it names them, holding the batch
 * system's job description. Print `removed-pilot-dir` when they did. None for
 * a path that is not plain. A back-end still ending (hung up by a
 * front-end interrupted) may write into it for a moment while its EXIT trap
 * stops its background work, so a removal that leaves it is tried again, for
 * 5 s at most. withLogs: the output a job that had started kept beside it
 * (<dir>.logs) goes too (a create undone leaves no state job to find it by).
 */
export function removePilotDirLines(batch: BatchSystem, dir: string, options: {withLogs?: boolean} = {}): string[] {
  try {
    checkPilotDir(dir)
  } catch {
    return []
  }
  const madeByBackend = batch.jobTemplates.map((t) => `[ -f "$dir/"${shellQuote(t.path)} ]`).join(' || ')
  const retried = 'n=0; until rm -rf -- "$dir" 2>/dev/null || [ "$n" -ge 20 ]; do n=$((n + 1)); sleep 0.25; done'
  const logs = options.withLogs ? ' "$dir.logs"' : ''
  return [`dir=${shellQuote(dir)}`, `case \${dir##*/} in ${PILOT_DIR_NAME}) if ${madeByBackend}; then ${retried}; rm -rf -- "$dir"${logs} && echo removed-pilot-dir; fi ;; esac`]
}
