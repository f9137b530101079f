import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import type {Plan} from '../catalog/plan.js'
import {projectPath} from '../paths.js'
import {renderView, type ApContext} from '../render/context.js'
import {render} from '../render/index.js'

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

/**
 * Every generated file of a request, from the Plan and the Access Point's
 * values. Pure apart from reading the project's own templates; the same list
 * feeds the SSH stream, `--bundle` and `--emit`.
 */
export function renderFiles(plan: Plan, ap: ApContext, options: RenderOptions = {}): RenderedFile[] {
  const view = renderView(plan, ap)
  const files: RenderedFile[] = []
  if (plan.system.batch === 'slurm') {
    files.push(
      {path: 'backend.sh', mode: SCRIPT_MODE, content: render('backend-slurm.sh.hbs', view)},
      {path: 'batch.slurm', mode: SCRIPT_MODE, content: render('batch.slurm.hbs', view)},
      {path: 'pilot.conf', mode: SECRET_MODE, content: render('pilot.conf.hbs', view)},
      pilotFile('pilot.sh'),
      pilotFile('launcher.sh'),
    )
  } else {
    files.push(
      {path: 'backend.sh', mode: SCRIPT_MODE, content: render('backend-htcondor.sh.hbs', view)},
      {path: 'pilot.sub', mode: SECRET_MODE, content: render('pilot.sub.hbs', view)},
      {path: 'pilot.conf', mode: SECRET_MODE, content: render('pilot.conf.hbs', view)},
      pilotFile('pilot.sh'),
    )
  }
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
