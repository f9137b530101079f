/**
 * Shell completion (@oclif/plugin-autocomplete): `hpc-annex autocomplete
 * bash|zsh` builds the completion functions from the verbs and flags, and
 * bash completes a verb and a flag with them.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {runCli} from './helpers/cli.js'

const cache = mkdtempSync(join(tmpdir(), 'hpc-annex-completion-'))
afterAll(() => rmSync(cache, {recursive: true, force: true}))

describe('hpc-annex autocomplete', () => {
  it('bash: prints the set-up line and completes verbs, verbs under a topic, and flags', () => {
    const setup = runCli(['autocomplete', 'bash'], {XDG_CACHE_HOME: cache})
    expect(setup.status, setup.stderr).toBe(0)
    expect(setup.stdout).toContain('printf "$(hpc-annex autocomplete script bash)" >> ~/.bashrc')
    const script = runCli(['autocomplete', 'script', 'bash'], {XDG_CACHE_HOME: cache}).stdout
    const setupFile = join(cache, 'hpc-annex', 'autocomplete', 'bash_setup')
    expect(script).toContain(setupFile)
    const complete = (...words: string[]) => {
      const shell = `source ${setupFile}; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _hpc-annex_autocomplete; echo "\${COMPREPLY[*]}"`
      const result = spawnSync('bash', ['-c', shell], {encoding: 'utf8'})
      expect(result.status, result.stderr).toBe(0)
      return result.stdout.trim()
    }
    expect(complete('hpc-annex', 'cre')).toBe('create')
    expect(complete('hpc-annex', 'admin', 'ch')).toBe('check')
    expect(complete('hpc-annex', 'create', '--no')).toBe('--nodes')
    expect(complete('hpc-annex', 'login', '--tm')).toBe('--tmp_dir')
  })

  it('zsh: writes a completion function that knows the verbs and their flags', () => {
    expect(runCli(['autocomplete', 'zsh'], {XDG_CACHE_HOME: cache}).status).toBe(0)
    const file = join(cache, 'hpc-annex', 'autocomplete', 'functions', 'zsh', '_hpc-annex')
    expect(existsSync(file)).toBe(true)
    const text = readFileSync(file, 'utf8')
    for (const word of ['create', 'shutdown', 'admin', '--stall-timeout', '--tmp_dir']) expect(text).toContain(word)
    // The hidden verb the state job runs is not offered.
    expect(text).not.toContain('mark-started')
  })
})
