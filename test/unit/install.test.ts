/**
 * The way a user puts hpc-annex on PATH from a checkout, as the README says:
 * the package npm packs, installed into a global prefix with no registry at
 * hand (its dependencies travel inside it), runs from anywhere. This also
 * proves that package.json's `files` ship everything the CLI needs.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {packProject} from './helpers/pack.js'

const root = join(import.meta.dirname, '..', '..')
const work = mkdtempSync(join(tmpdir(), 'hpc-annex-install-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

function run(command: string, args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv} = {}) {
  const result = spawnSync(command, args, {encoding: 'utf8', cwd: options.cwd ?? work, env: {...process.env, ...options.env}})
  return {status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', error: result.error}
}

describe('npm pack, then npm install --global --prefix DIR TARBALL', () => {
  it('bundles every dependency, by name (dependency-cruiser reads the list, and takes no `true`)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {dependencies: Record<string, string>; bundleDependencies: string[]}
    expect(pkg.bundleDependencies).toEqual(Object.keys(pkg.dependencies))
  })

  it('installs offline, and hpc-annex on PATH runs --version and a dry run', {timeout: 240_000}, () => {
    const tarball = packProject(work)

    const prefix = join(work, 'prefix')
    // --offline: nothing may come from a registry.
    const installed = run('npm', ['install', '--global', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball])
    expect(installed.status, installed.stderr).toBe(0)

    const env = {PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, HPC_ANNEX_MACHINES: ''}
    const version = run('hpc-annex', ['--version'], {env})
    expect(version.error).toBeUndefined()
    expect(version.status, version.stderr).toBe(0)
    expect(version.stdout).toMatch(/^hpc-annex\/\d+\.\d+\.\d+ /)

    const dryRun = run('hpc-annex', ['create', 'x', 'wholenode@anvil', '--dry-run'], {env})
    expect(dryRun.status, dryRun.stderr).toBe(0)
    expect(dryRun.stdout).toContain('sbatch -p wholenode --nodes=1 --time=60')
    expect(dryRun.stdout).toContain('Nothing was submitted (--dry-run).')
  })
})
