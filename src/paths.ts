import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

// dist/paths.js and src/paths.ts both sit one level below the project root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** A top-level folder of the installed project: backends, templates, pilots, metaknobs. */
export function projectPath(folder: 'backends' | 'templates' | 'pilots' | 'metaknobs'): string {
  return join(root, folder)
}
