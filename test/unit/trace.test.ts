import {mkdtempSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, describe, expect, it, vi} from 'vitest'

// The trace file is opened once per process, at the first event: each test loads the module afresh.
async function freshTrace(file: string | undefined) {
  vi.resetModules()
  if (file === undefined) delete process.env.HPC_ANNEX_TRACE
  else process.env.HPC_ANNEX_TRACE = file
  return import('../../src/trace.js')
}

afterEach(() => {
  delete process.env.HPC_ANNEX_TRACE
})

describe('HPC_ANNEX_TRACE', () => {
  it('appends one line per event, with the milliseconds since the process started, to a private file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'trace-')), 'create.trace')
    const {trace, traced, tracing} = await freshTrace(file)
    expect(tracing()).toBe(true)
    trace('create starts')
    await traced(() => 'condor_q -json', Promise.resolve(1))
    await traced('login to hpc', Promise.reject(new Error('refused'))).catch(() => undefined)
    // A multi-line event stays one line.
    trace('back-end: Step 1\nof 10')
    await new Promise((resolve) => setImmediate(resolve))
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
    expect(lines.map((line) => line.replace(/^ *\d+\.\d ms {2}/, ''))).toEqual([
      'create starts',
      'condor_q -json',
      expect.stringMatching(/^condor_q -json: done \(\d+\.\d ms\)$/),
      'login to hpc',
      expect.stringMatching(/^login to hpc: failed \(\d+\.\d ms\)$/),
      'back-end: Step 1 of 10',
    ])
    const times = lines.map((line) => Number(/^ *(\d+\.\d) ms/.exec(line)![1]))
    expect(times).toEqual([...times].sort((a, b) => a - b))
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  it('records nothing, and costs nothing, when unset', async () => {
    const {trace, traced, tracing} = await freshTrace(undefined)
    expect(tracing()).toBe(false)
    const promise = Promise.resolve(2)
    expect(traced('x', promise)).toBe(promise)
    // A label given as a function is not even made.
    const label = vi.fn(() => 'x')
    expect(traced(label, promise)).toBe(promise)
    expect(label).not.toHaveBeenCalled()
    expect(() => trace('x')).not.toThrow()
  })
})
