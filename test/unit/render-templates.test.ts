import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'

import {describe, expect, it} from 'vitest'

import {projectPath} from '../../src/paths.js'
import {HELPERS} from '../../src/render/index.js'

function templateFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? templateFiles(path) : [path]
  })
}

/** Every mustache of a template, with its line. */
function mustaches(source: string): {text: string; line: number; lineText: string}[] {
  const found: {text: string; line: number; lineText: string}[] = []
  const lines = source.split('\n')
  const pattern = /\{\{\{?[^}]*\}?\}\}/g
  for (const [index, lineText] of lines.entries()) {
    for (const match of lineText.matchAll(pattern)) found.push({text: match[0], line: index + 1, lineText})
  }
  return found
}

// Structure that emits no value of its own: block helpers, partials, comments.
const STRUCTURE = /^\{\{~?(#(if|unless|each|with) [A-Za-z0-9_.]+|\/(if|unless|each|with)|else|> ?[A-Za-z0-9_-]+|!.*)~?\}\}$/
const HELPER = `(${HELPERS.join('|')})`
// A helper applied to a path, or to another helper's output: {{condor (classad x)}}.
const HELPER_CALL = new RegExp(`^\\{\\{~?${HELPER} ([A-Za-z0-9_.]+|\\(${HELPER} [A-Za-z0-9_.]+\\))~?\\}\\}$`)

/** Why a mustache is not allowed, or undefined when it is. */
export function problem(text: string): string | undefined {
  if (text.startsWith('{{{')) return 'triple-stash interpolation bypasses every helper'
  if (STRUCTURE.test(text) || HELPER_CALL.test(text)) return undefined
  return 'interpolation that does not go through a quoting helper'
}

// Everything the one Handlebars environment renders: templates/ and the admin's metaknobs/.
const root = projectPath('templates')
const files = [...templateFiles(root), ...templateFiles(projectPath('metaknobs')).filter((f) => f.endsWith('.hbs'))]

describe('the templates', () => {
  it('exist', () => {
    expect(files.map((f) => relative(root, f))).toEqual(expect.arrayContaining(['backend-slurm.sh.hbs', 'backend-htcondor.sh.hbs', 'batch.slurm.hbs', 'pilot.conf.hbs', 'pilot.sub.hbs']))
  })

  it('the scan refuses what it should', () => {
    expect(problem('{{plan.annexName}}')).toBeDefined()
    expect(problem('{{{plan.annexName}}}')).toBeDefined()
    expect(problem('{{sh (lookup plan "x")}}')).toBeDefined()
    expect(problem('{{condor (concat a b)}}')).toBeDefined()
    expect(problem('{{condor (classad plan.annexName)}}')).toBeUndefined()
    expect(problem('{{#if plan.project}}')).toBeUndefined()
    expect(problem('{{sh plan.annexName}}')).toBeUndefined()
    expect(problem('{{> backend-common}}')).toBeUndefined()
  })

  it.each(files.map((f) => [relative(join(root, '..'), f), f]))('%s interpolates only through helpers', (_name, file) => {
    const bad = mustaches(readFileSync(file, 'utf8'))
      .map((m) => ({...m, why: problem(m.text)}))
      .filter((m) => m.why !== undefined)
      .map((m) => `line ${m.line}: ${m.text} (${m.why})`)
    expect(bad).toEqual([])
  })

  it.each(files.map((f) => [relative(join(root, '..'), f), f]))('%s puts shell-quoted values only where bash reads one word', (_name, file) => {
    // A quoted word inside a comment could end the comment at a newline; inside "..." it would not be quoted at all.
    const bad = mustaches(readFileSync(file, 'utf8'))
      .filter((m) => m.text.startsWith('{{sh '))
      .filter((m) => {
        const before = m.lineText.slice(0, m.lineText.indexOf(m.text))
        return before.trimStart().startsWith('#') || (before.match(/"/g) ?? []).length % 2 === 1
      })
      .map((m) => `line ${m.line}: ${m.lineText.trim()}`)
    expect(bad).toEqual([])
  })

  it('machine-file text is the only verbatim text, and is marked so', () => {
    const trusted = files.flatMap((file) => mustaches(readFileSync(file, 'utf8')).filter((m) => m.text.startsWith('{{trusted ')).map((m) => m.text))
    expect(new Set(trusted)).toEqual(new Set(['{{trusted plan.scratch}}', '{{trusted nodeLocal.dir}}', '{{trusted plan.shellFragment}}', '{{trusted plan.pilotDirFragment}}', '{{trusted plan.configFragment}}']))
  })
})
