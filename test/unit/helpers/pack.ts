import {spawnSync} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'vitest'

const root = join(import.meta.dirname, '..', '..', '..')

/** `npm pack` of this checkout into `dir`: the tarball's path. The build in dist/ is what is packed: under the lock others build under, when there is one. */
export function packProject(dir: string): string {
  const pack = ['npm', 'pack', '--ignore-scripts', '--pack-destination', dir]
  const flock = spawnSync('flock', ['--version']).status === 0
  const packed = flock ? spawnSync('flock', ['/tmp/hpc-annex-build.lock', ...pack], {cwd: root, encoding: 'utf8'}) : spawnSync(pack[0]!, pack.slice(1), {cwd: root, encoding: 'utf8'})
  expect(packed.status, packed.stderr).toBe(0)
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))
  expect(tarball).toBeDefined()
  return join(dir, tarball!)
}
