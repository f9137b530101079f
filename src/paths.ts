import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

// dist/paths.js and src/paths.ts both sit one level below the project root.
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** A top-level folder of the installed project: backends, templates, pilots, metaknobs. */
export function projectPath(folder: 'backends' | 'templates' | 'pilots' | 'metaknobs'): string {
  return join(root, folder)
}

/** `~` and `~/...` as the home directory, as HTCondor expands its path knobs and flags. */
export function expandHome(path: string, home = homedir()): string {
  return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path
}
