import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {renderMetaknob} from '../../src/annex/metaknob.js'

// The built CLI (npm test builds first), as an administrator runs it.
const bin = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8'})

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hpc-annex-cli-config.d-'))
})
afterEach(() => rmSync(dir, {recursive: true, force: true}))

describe('hpc-annex admin metaknob', () => {
  it('prints the configuration', () => {
    const result = cli(['admin', 'metaknob'])
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(renderMetaknob({exclusive: false}))
    expect(cli(['admin', 'metaknob', '--exclusive']).stdout).toBe(renderMetaknob({exclusive: true}))
  })

  it('--install DIR writes it, a second run changes nothing, and a different file needs --force', () => {
    const first = cli(['admin', 'metaknob', '--install', dir])
    expect(first.status).toBe(0)
    expect(first.stdout).toMatch(/Wrote the HPC annex configuration to .*50-hpc-annex\.config/)
    expect(first.stdout).toMatch(/condor_reconfig/)
    expect(readFileSync(join(dir, '50-hpc-annex.config'), 'utf8')).toBe(renderMetaknob({exclusive: false}))
    expect(statSync(join(dir, '50-hpc-annex.config')).mode & 0o777).toBe(0o644)

    const again = cli(['admin', 'metaknob', '--install', dir])
    expect(again.status).toBe(0)
    expect(again.stdout).toMatch(/nothing changed/)

    const refused = cli(['admin', 'metaknob', '--install', dir, '--exclusive'])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/^Error: .*differs/)
    expect(refused.stderr).toMatch(/^Try: .*--force/m)

    const forced = cli(['admin', 'metaknob', '--install', dir, '--exclusive', '--force', '--json'])
    expect(forced.status).toBe(0)
    const payload = JSON.parse(forced.stdout)
    expect(payload).toMatchObject({builtin: false, install: {action: 'replaced', path: join(dir, '50-hpc-annex.config')}})
    expect(readFileSync(payload.install.backup, 'utf8')).toBe(renderMetaknob({exclusive: false}))
  })

  it('takes a directory only with --install, and --force only with --install', () => {
    const dirOnly = cli(['admin', 'metaknob', dir])
    expect(dirOnly.status).toBe(1)
    expect(dirOnly.stderr).toMatch(/only taken with --install/)
    expect(cli(['admin', 'metaknob', '--force']).status).toBe(1)
  })
})
