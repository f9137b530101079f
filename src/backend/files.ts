import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {batchSystem} from '../batch/index.js'
import type {Plan} from '../catalog/plan.js'
import {projectPath} from '../paths.js'
import {renderView, type ApContext} from '../render/context.js'
import {render} from '../render/index.js'
import {BACKEND_EXIT, CONTROL, CONTROL_MARK, HEARTBEAT_SECONDS, JOB_ID_RECORDED} from './protocol.js'

/** One generated file of the bundle: a path relative to the bundle's root, its mode and text. */
export interface RenderedFile {
  path: string
  mode: number
  content: string
}

export const SCRIPT_MODE = 0o700
export const SECRET_MODE = 0o600

export interface RenderOptions {
  /** Add setup.sh, for a bundle the user runs by hand (--bundle). */
  setup?: boolean
}

function pilotFile(name: string): RenderedFile {
  return {path: name, mode: SCRIPT_MODE, content: readFileSync(join(projectPath('pilots'), name), 'utf8')}
}

/** The render view with the back-end's side of the protocol, from the one declaration of it. */
export function backendView(plan: Plan, ap: ApContext) {
  return {...renderView(plan, ap), exit: BACKEND_EXIT, control: CONTROL, controlMark: CONTROL_MARK, heartbeatSeconds: HEARTBEAT_SECONDS, jobIdRecorded: JOB_ID_RECORDED}
}

/**
 * Every generated file of a request, from the Plan and the Access Point's
 * values. Pure apart from reading the project's own templates; the same list
 * feeds the SSH stream, `--bundle` and `--emit`.
 */
export function renderFiles(plan: Plan, ap: ApContext, options: RenderOptions = {}): RenderedFile[] {
  const view = backendView(plan, ap)
  const batch = batchSystem(plan.system.batch)
  const files: RenderedFile[] = [
    {path: 'backend.sh', mode: SCRIPT_MODE, content: render(batch.backendTemplate, view)},
    ...batch.jobTemplates.map((t) => ({path: t.path, mode: t.secret ? SECRET_MODE : SCRIPT_MODE, content: render(t.template, view)})),
    {path: 'pilot.conf', mode: SECRET_MODE, content: render('pilot.conf.hbs', view)},
    ...batch.pilotScripts.map(pilotFile),
  ]
  if (options.setup) files.push({path: 'setup.sh', mode: SCRIPT_MODE, content: render('setup.sh.hbs', view)})
  return files
}

/** Placeholders for what only the Access Point knows, for `--dry-run` (nothing is asked of HTCondor). */
export function dryRunContext(plan: Plan, overrides: Partial<ApContext> = {}): ApContext {
  return {
    requestId: 'dry-run#0.0#0',
    collector: plan.pool ?? 'annex-collector.invalid:9618?sock=ap_collector',
    scheddName: 'schedd.invalid',
    ...overrides,
  }
}
