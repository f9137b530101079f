/**
 * Messages that say what is wrong with the value given: each names the value
 * as the user typed it and the flag that took it, and refuses before anything
 * is done.
 */
import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {runCli} from './helpers/cli.js'

function refused(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const {status, stdout, stderr} = runCli(args, env)
  expect(status, stderr).toBe(1)
  // Nothing was printed before the refusal: no plan.
  expect(stdout).toBe('')
  const lines = stderr.trim().split('\n')
  expect(lines, stderr).toHaveLength(1)
  return lines[0]!
}

describe('the value given, named', () => {
  it('a GPU type given in --gpus, where the queue has no choice of type, is called that', () => {
    expect(refused(['create', 'x', 'gpu@anvil', '--cpus', '8', '--gpus', 'a100:2', '--dry-run'])).toBe(
      "Error: The 'gpu' queue on Anvil offers no choice of GPU type, so --gpus takes a count only: --gpus 2, not 'a100:2'.",
    )
    expect(refused(['create', 'x', 'gpu@anvil', '--cpus', '8', '--gpus', '2', '--gpu-type', 'a100', '--dry-run'])).toBe(
      "Error: The 'gpu' queue on Anvil offers no choice of GPU type; remove --gpu-type a100.",
    )
  })

  it('a number too large for any queue is called too large, not "not a positive whole number"', () => {
    expect(refused(['create', 'x', 'wholenode@anvil', '--nodes', '99999999999999999999', '--dry-run'])).toBe(
      'Error: --nodes 99999999999999999999 is larger than any queue allows; change --nodes (hpc-annex systems anvil lists the limits).',
    )
    expect(refused(['create', 'x', 'wholenode@anvil', '--nodes', '0', '--dry-run'])).toBe("Error: --nodes must be at least 1, not '0'; change --nodes.")
    expect(refused(['create', 'x', 'wholenode@anvil', '--lifetime', '1h', '--dry-run'])).toBe("Error: --lifetime must be a positive whole number, not '1h'; change --lifetime.")
  })

  it('--gpus shows the N or TYPE:N form, and the likely intent when count and type are swapped', () => {
    expect(refused(['create', 'x', 'gpu@bridges2', '--gpus', '8:v100-32', '--dry-run'])).toBe(
      "Error: --gpus '8:v100-32' is not of the form N or TYPE:N (e.g. 4 or v100-32:4): the type comes first; did you mean --gpus v100-32:8?",
    )
    expect(refused(['create', 'x', 'gpu@bridges2', '--gpus', 'eight', '--dry-run'])).toBe(
      "Error: --gpus 'eight' is not of the form N or TYPE:N (e.g. 4 or v100-32:4); change --gpus.",
    )
  })

  it('a GPU type the system lacks is named, with the flag that gave it and the types there are', () => {
    expect(refused(['create', 'x', 'gpu@bridges2', '--gpu-type', 'h100', '--dry-run'])).toBe(
      "Error: Bridges-2 has no GPU type 'h100' on the 'GPU' queue (--gpu-type h100); its types: v100-32, v100-16. Change --gpu-type.",
    )
    expect(refused(['create', 'x', 'gpu@bridges2', '--gpus', 'h100:8', '--dry-run'])).toBe(
      "Error: Bridges-2 has no GPU type 'h100' on the 'GPU' queue (--gpus h100:8); its types: v100-32, v100-16. Change --gpus.",
    )
  })
})

describe('files and directories, checked before anything is done', () => {
  it('--emit that names a file is refused before the plan is printed, exit 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-emit-'))
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    expect(refused(['create', 'x', 'wholenode@anvil', '--dry-run', '--emit', file])).toBe(
      `Error: --emit '${file}' is not a directory; give a directory (it is made when missing).`,
    )
    expect(refused(['create', 'x', 'wholenode@anvil', '--dry-run', '--emit', join(file, 'below')])).toBe(
      `Error: --emit '${join(file, 'below')}' cannot be made: '${file}' is not a directory; change --emit.`,
    )
  })

  it('--token_file is checked with --dry-run too, as --condor-tarball is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-token-'))
    expect(refused(['create', 'x', 'wholenode@anvil', '--dry-run', '--token_file', join(dir, 'none')])).toMatch(
      new RegExp(`^Error: Cannot read the token file '${join(dir, 'none')}' \\(ENOENT.*\\); change --token_file\\.$`),
    )
    const open = join(dir, 'open')
    writeFileSync(open, 'token')
    chmodSync(open, 0o644)
    expect(refused(['create', 'x', 'wholenode@anvil', '--dry-run', '--token_file', open])).toBe(`Error: The token file '${open}' is readable by others; run chmod 600 on it.`)
    const mine = join(dir, 'mine')
    writeFileSync(mine, 'token', {mode: 0o600})
    expect(runCli(['create', 'x', 'wholenode@anvil', '--dry-run', '--token_file', mine]).status).toBe(0)
  })
})

describe('a machine file with a TOML syntax error', () => {
  const machines = mkdtempSync(join(tmpdir(), 'hpc-annex-machines-'))
  const file = join(machines, 'broken.toml')
  writeFileSync(file, 'name = "Broken"\nhost = "login.example.org"\nbatch = "slurm"\ndefault_queue = "q"\n[queues.q\nallocation = "node"\n')
  const env = {HPC_ANNEX_MACHINES: machines}
  const why = `${file}:5: invalid TOML: Unexpected character, expected whitespace, . or ] (column 10)`

  it('is one complete warning, on one line', () => {
    const {status, stdout, stderr} = runCli(['systems'], env)
    expect(status).toBe(0)
    expect(stdout).toContain('Anvil (anvil)')
    expect(stderr).toBe(`Warning: skipped an invalid machine file: ${why}\n`)
  })

  it('and, under --json, a warning in the output', () => {
    const {status, stdout, stderr} = runCli(['systems', '--json'], env)
    expect(status).toBe(0)
    expect(stderr).toBe('')
    expect(JSON.parse(stdout).warnings).toEqual([`skipped an invalid machine file: ${why}`])
  })

  it('asking for its system names the file and its error', () => {
    for (const args of [['systems', 'broken'], ['login', 'broken'], ['create', 'x', 'q@broken', '--dry-run']]) {
      expect(refused(args, env), args.join(' ')).toBe(`Error: The machine file for 'broken' is invalid: ${why}; fix the file or remove it.`)
    }
  })

  it('every problem of a file that breaks several rules, in one warning', () => {
    const other = mkdtempSync(join(tmpdir(), 'hpc-annex-machines-'))
    writeFileSync(join(other, 'bad.toml'), 'name = "X"\nhost = 3\nbatch = "pbs"\n')
    const {stderr} = runCli(['systems'], {HPC_ANNEX_MACHINES: other})
    const lines = stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^Warning: skipped an invalid machine file: .*bad\.toml:2: host: .*; line 3: batch: .*; default_queue: is required; .*queues: is required$/)
  })
})
