import {readdirSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import type HandlebarsLibrary from 'handlebars'
import runtime from '../vendor/handlebars.js'

import {projectPath} from '../paths.js'
import {classadString, condorValue, directiveString, directiveValue, shellQuote} from '../quote.js'
import {COMPILE_OPTIONS} from './compile-options.js'
import {precompiled} from './precompiled.js'

// The runtime is the library less its compiler (its own type declarations are empty).
const Handlebars = runtime as unknown as typeof HandlebarsLibrary

/**
 * The one Handlebars environment of hpc-annex. A value reaches generated text
 * only through a helper that quotes it for its destination:
 *   {{sh x}}       a bash word
 *   {{classad x}}  a ClassAd string literal
 *   {{condor x}}   an HTCondor configuration / submit-description value
 *   {{int x}}      an integer (anything else is refused)
 *   {{condorClassad x}}  a ClassAd string literal inside an HTCondor config/submit value
 *   {{directive x}}      a word of an #SBATCH line (refused unless it needs no quoting)
 *   {{directiveString x}} a value of an #SBATCH line, quoted as sbatch reads it
 *   {{trusted x}}        text from a machine file, verbatim: never for values from users or job ads
 * Plain {{x}} and triple-stash {{{x}}} are refused at compile time by a
 * project test over templates/; the environment escapes nothing itself.
 */
export const handlebars = Handlebars.create()

function asInteger(value: unknown): string {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new TypeError(`expected an integer in a template, got ${JSON.stringify(value)}`)
  }
  return String(n)
}

function asText(value: unknown, helper: string): string {
  if (typeof value === 'string') return value
  // Another helper's output, e.g. {{condor (classad x)}}: its text, quoted again for this destination.
  if (value instanceof Handlebars.SafeString) return value.toString()
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  throw new TypeError(`{{${helper}}} needs a string or a number, got ${JSON.stringify(value)}`)
}

handlebars.registerHelper('sh', (value: unknown) => new Handlebars.SafeString(shellQuote(asText(value, 'sh'))))
handlebars.registerHelper('classad', (value: unknown) => new Handlebars.SafeString(classadString(asText(value, 'classad'))))
handlebars.registerHelper('condor', (value: unknown) => new Handlebars.SafeString(condorValue(asText(value, 'condor'))))
handlebars.registerHelper('int', (value: unknown) => new Handlebars.SafeString(asInteger(value)))
handlebars.registerHelper('condorClassad', (value: unknown) => new Handlebars.SafeString(condorValue(classadString(asText(value, 'condorClassad')))))
handlebars.registerHelper('directive', (value: unknown) => new Handlebars.SafeString(directiveValue(asText(value, 'directive'))))
handlebars.registerHelper('directiveString', (value: unknown) => new Handlebars.SafeString(directiveString(asText(value, 'directiveString'))))
handlebars.registerHelper('trusted', (value: unknown) => {
  if (typeof value !== 'string') throw new TypeError(`{{trusted}} needs machine-file text, got ${JSON.stringify(value)}`)
  return new Handlebars.SafeString(value)
})

/** The helpers a template may call; a project test refuses any other interpolation. */
export const HELPERS = ['sh', 'classad', 'condor', 'int', 'condorClassad', 'directive', 'directiveString', 'trusted'] as const

/**
 * The template of the project file folder/name: its build-time precompiled
 * form while the file is as built, else compiled now (from src, or a file
 * edited since), with the compiler loaded only then.
 */
function compileFile(folder: TemplateFolder, name: string): HandlebarsLibrary.TemplateDelegate {
  const source = readFileSync(join(projectPath(folder), name), 'utf8')
  const built = precompiled.get(`${folder}/${name}`)
  if (built?.source === source) return handlebars.template(built.spec)
  const compiler = createRequire(import.meta.url)('handlebars') as typeof HandlebarsLibrary
  // Handlebars' precompiled form is the source of an object literal; this is how its own compile() loads it.
  const spec = new Function(`return ${String(compiler.precompile(source, COMPILE_OPTIONS))}`)() as TemplateSpecification
  return handlebars.template(spec)
}

// Block helpers and partials structure a template; they emit no value.
for (const file of safeReaddir(join(projectPath('templates'), 'partials'))) {
  if (file.endsWith('.hbs')) handlebars.registerPartial(file.slice(0, -'.hbs'.length), compileFile('templates', `partials/${file}`))
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

const compiled = new Map<string, HandlebarsLibrary.TemplateDelegate>()

/** A project folder that holds Handlebars sources. */
export type TemplateFolder = 'templates' | 'metaknobs'

/** Renders <folder>/<name> with `context`. Strict: a missing value is an error, not an empty string. */
export function renderFile(folder: TemplateFolder, name: string, context: object): string {
  const path = `${folder}/${name}`
  let template = compiled.get(path)
  if (template === undefined) {
    template = compileFile(folder, name)
    compiled.set(path, template)
  }
  return template(context)
}

/** Renders templates/<name> with `context`. */
export function render(name: string, context: object): string {
  return renderFile('templates', name, context)
}
