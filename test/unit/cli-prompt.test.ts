import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')

describe('TerminalInteraction', () => {
  it('without a terminal, a question is a one-line error saying to log in first', () => {
    // A new session has no controlling terminal; stdin and stderr are pipes.
    const script = `
      import {TerminalInteraction} from ${JSON.stringify(join(ROOT, 'src/cli/prompt.ts'))}
      const t = new TerminalInteraction({system: 'anvil', log: null})
      console.log(JSON.stringify({interactive: t.interactive}))
      t.answer([{prompt: '(alice@login) Verification code: ', echo: false}], '', '').then(
        () => console.log('answered'),
        (e) => console.log(JSON.stringify({message: e.message, exit: e.exitCode})),
      )`
    const result = spawnSync('setsid', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {cwd: ROOT, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe']})
    const lines = result.stdout.trim().split('\n')
    expect(JSON.parse(lines[0]!)).toEqual({interactive: false})
    const error = JSON.parse(lines[1]!) as {message: string; exit: number}
    expect(error.exit).toBe(1)
    expect(error.message).toBe(
      "hpc-annex needs a terminal for the login node's question '(alice@login) Verification code:'; run `hpc-annex login anvil` first or use a key.",
    )
  })
})
