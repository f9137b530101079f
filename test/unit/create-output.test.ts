/**
 * What a create prints while it works and when it fails, off a terminal and
 * on one too narrow to draw on: each step once, the error once, on stderr.
 */
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {progressOutput} from '../../src/cli/annex-request.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {runCli} from './helpers/cli.js'

const bin = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
const refusal = 'HPC Annex functionality has not been enabled by your HTCondor administrator.'

let fake: FakeCondor | undefined
afterEach(() => {
  fake?.cleanup()
  fake = undefined
})

function count(text: string, part: string): number {
  return text.split(part).length - 1
}

describe('a create that fails', () => {
  it('off a terminal, prints the error once, on stderr; its steps go to stderr too', () => {
    fake = createFakeCondor({config: {HPC_ANNEX_ENABLED: 'false'}})
    const {status, stdout, stderr} = runCli(['create', 'x', 'wholenode@anvil'], fake.env)
    expect(status).toBe(2)
    expect(stdout).toBe('')
    expect(count(stderr, refusal)).toBe(1)
    expect(stderr).toContain(`Error: Checking the Access Point failed: ${refusal}`)
    expect(stderr).toMatch(/^✖ Checking the Access Point$/m)
  })

  it('on a terminal of 0 columns (script without one), prints plain lines, not a character per line', () => {
    if (spawnSync('script', ['--version']).status !== 0) {
      if (process.env.CI) throw new Error('script (util-linux) is needed for this test under CI')
      return
    }
    fake = createFakeCondor({config: {HPC_ANNEX_ENABLED: 'false'}})
    const command = `${process.execPath} ${bin} create x wholenode@anvil`
    // Without a terminal of its own, script gives the command one of 0 rows and 0 columns.
    const result = spawnSync('script', ['-qec', command, '/dev/null'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, ...fake.env, HPC_ANNEX_MACHINES: ''}})
    // eslint-disable-next-line no-control-regex -- colours and cursor moves
    const lines = result.stdout.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').split(/\r?\n/).map((line) => line.trim()).filter(Boolean)
    expect(result.status, result.stdout).toBe(2)
    expect(lines).toContain('❯ Checking the Access Point')
    expect(lines.filter((line) => line.length <= 2)).toEqual([])
    expect(count(result.stdout, refusal)).toBe(1)
  })
})

describe('the choice of progress display', () => {
  const tty = (columns: number) => ({isTTY: true, columns})
  it('draws only on terminals wide enough, on both streams; --json shows none', () => {
    expect(progressOutput(false, {stdout: tty(120), stderr: tty(120)})).toBe('tty')
    expect(progressOutput(false, {stdout: tty(0), stderr: tty(0)})).toBe('plain')
    expect(progressOutput(false, {stdout: {isTTY: false}, stderr: tty(120)})).toBe('plain')
    expect(progressOutput(false, {stdout: tty(120), stderr: {}})).toBe('plain')
    expect(progressOutput(true, {stdout: tty(120), stderr: tty(120)})).toBe('silent')
  })
})
