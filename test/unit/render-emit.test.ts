import {spawnSync} from 'node:child_process'
import {readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {sha256, tempDir} from './render-helpers.js'

// Runs the built CLI (npm test builds first).
const bin = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
})

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env: {...process.env, HPC_ANNEX_MACHINES: ''}})
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

describe('create --dry-run --emit DIR', () => {
  it('writes every generated file with its mode, and they pass shellcheck', () => {
    const dir = tempDir('emit')
    dirs.push(dir)
    const tarball = join(dir, 'condor.tar.gz')
    writeFileSync(tarball, 'not really a tarball')
    const out = join(dir, 'files')
    const {status, stdout} = cli(['create', 'demo', 'gpu@expanse', '--project', 'abc123', '--nodes', '2', '--dry-run', '--emit', out, '--condor-tarball', tarball])
    expect(status).toBe(0)
    expect(stdout).toContain(`Wrote 7 generated files (Access Point values are placeholders) to ${out}.`)
    expect(readdirSync(out).sort()).toEqual(['backend.sh', 'batch.slurm', 'launcher.sh', 'node-local.sh', 'pilot.conf', 'pilot.sh', 'setup.sh'])
    expect(statSync(join(out, 'backend.sh')).mode & 0o777).toBe(0o700)
    expect(statSync(join(out, 'pilot.conf')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(out, 'batch.slurm'), 'utf8')).toContain('#SBATCH --gpus=8\n')
    expect(readFileSync(join(out, 'backend.sh'), 'utf8')).toContain(`STAGED_SHA256='${sha256(tarball)}'\n`)
    const check = spawnSync('shellcheck', ['--shell=bash', ...['backend.sh', 'batch.slurm', 'launcher.sh', 'node-local.sh', 'pilot.sh', 'setup.sh'].map((f) => join(out, f))], {encoding: 'utf8'})
    expect(check.stdout).toBe('')
  })

  it('needs --dry-run, and a readable --condor-tarball', () => {
    expect(cli(['create', 'demo', 'wholenode@anvil', '--emit', '/tmp/never']).status).toBe(1)
    const missing = cli(['create', 'demo', 'wholenode@anvil', '--dry-run', '--emit', '/tmp/never', '--condor-tarball', '/nonexistent/condor.tar.gz'])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('change --condor-tarball')
    // Refused before anything else, also when no digest would be needed (--dry-run alone).
    const directory = cli(['create', 'demo', 'wholenode@anvil', '--dry-run', '--condor-tarball', tmpdir()])
    expect(directory.status).toBe(1)
    expect(directory.stderr).toMatch(/Cannot read the HTCondor tarball .*not a file.*change --condor-tarball/)
    expect(directory.stdout).toBe('')
  })
})
