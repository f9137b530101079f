import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {configTemplate, configValues, queryCollector, queryJobs, runTool} from '../../src/condor/index.js'
import {AnnexError} from '../../src/errors.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

let fake: FakeCondor
let restore: () => void

function use(options: Parameters<typeof createFakeCondor>[0] = {}) {
  restore?.()
  fake?.cleanup()
  fake = createFakeCondor(options)
  restore = fake.install()
}

beforeEach(() => use())
afterEach(() => {
  restore()
  fake.cleanup()
  delete process.env.FAKE_CONDOR_FAULT
})

async function failure(promise: Promise<unknown>): Promise<AnnexError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(AnnexError)
  return error as AnnexError
}

describe('runTool', () => {
  it('returns stdout and stderr of a successful run', async () => {
    const result = await runTool('condor_config_val', ['ANNEX_TOKEN_DOMAIN'])
    expect(result).toEqual({stdout: 'vm\n', stderr: '', exitCode: 0})
  })

  it('a missing tool is a system error (exit 2) that names the tool, with a hint', async () => {
    use({omit: ['condor_q']})
    const error = await failure(queryJobs())
    expect(error.exitCode).toBe(2)
    expect(error.message).toMatch(/^condor_q was not found/)
    expect(error.hint).toContain('condor_q')
  })

  it('a non-zero exit is a system error carrying the tool\'s stderr', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_status:fail=4'
    const error = await failure(queryCollector({pool: 'vm:9618?sock=ap_collector', kind: 'master'}))
    expect(error.exitCode).toBe(2)
    expect(error.message).toBe('condor_status failed (exit status 4): ERROR: condor_status failed: fake failure injected by FAKE_CONDOR_FAULT')
  })

  it('a hung tool is killed after the timeout and the error says so', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_q:hang'
    const error = await failure(runTool('condor_q', ['-json'], {timeout: 1, timeoutName: 'ANNEX_TEST_TIMEOUT'}))
    expect(error.message).toBe('condor_q did not finish within 1 seconds (ANNEX_TEST_TIMEOUT).')
  })

  it('malformed JSON from condor_q or condor_status is a clear system error', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_q:garbage,condor_status:garbage'
    const q = await failure(queryJobs())
    expect(q.message).toMatch(/^condor_q printed output that is not JSON/)
    const s = await failure(queryCollector({pool: 'vm:9618?sock=ap_collector', kind: 'slot'}))
    expect(s.message).toMatch(/^condor_status printed output that is not JSON/)
    expect(q.exitCode).toBe(2)
  })

  it('an unknown collector is the tool\'s own failure, reported', async () => {
    const error = await failure(queryCollector({pool: 'nowhere:9618', kind: 'slot'}))
    expect(error.message).toContain('Failed to connect to nowhere:9618')
  })
})

describe('configValues', () => {
  it('reads several names in one call, in order', async () => {
    const values = await configValues(['ANNEX_COLLECTOR', 'ANNEX_TOKEN_DOMAIN', 'ANNEX_TOKEN_KEY_NAME', 'HPC_ANNEX_ENABLED'])
    expect(values).toEqual({ANNEX_COLLECTOR: 'vm:9618?sock=ap_collector', ANNEX_TOKEN_DOMAIN: 'vm', ANNEX_TOKEN_KEY_NAME: 'AP', HPC_ANNEX_ENABLED: 'true'})
    expect(fake.calls().filter((c) => c.tool === 'condor_config_val')).toHaveLength(1)
  })

  it('a name that is not defined is undefined, and the others keep their values', async () => {
    const values = await configValues(['NOPE_ONE', 'ANNEX_TOKEN_DOMAIN', 'NOPE_TWO', 'UID_DOMAIN'])
    expect(values).toEqual({NOPE_ONE: undefined, ANNEX_TOKEN_DOMAIN: 'vm', NOPE_TWO: undefined, UID_DOMAIN: 'vm'})
  })

  it('an empty value is an empty string, not undefined', async () => {
    use({config: {EMPTY_ONE: ''}})
    expect(await configValues(['EMPTY_ONE', 'UID_DOMAIN'])).toEqual({EMPTY_ONE: '', UID_DOMAIN: 'vm'})
  })

  it('refuses a name that would be read as an option', async () => {
    await expect(configValues(['-dump'])).rejects.toThrow(/not an HTCondor configuration name/)
  })

  it('a failing condor_config_val (not "Not defined") is a system error', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_config_val:fail'
    const error = await failure(configValues(['UID_DOMAIN']))
    expect(error.message).toMatch(/^condor_config_val failed \(exit status 1\): ERROR/)
  })

  it('reads a metaknob body, undefined where this HTCondor has none', async () => {
    use({metaknob: 'HPC_ANNEX_ENABLED = true\nAP_COLLECTOR = $(COLLECTOR)\n'})
    expect(await configTemplate('feature', 'HPC_ANNEX')).toBe('HPC_ANNEX_ENABLED = true\nAP_COLLECTOR = $(COLLECTOR)\n')
    use({metaknob: null})
    // HTCondor 25 says "Not defined: use FEATURE:HPC_ANNEX" on stdout and exits 0.
    expect(await configTemplate('feature', 'HPC_ANNEX')).toBeUndefined()
    await expect(configTemplate('feature', 'X Y')).rejects.toThrow(/not a configuration template/)
  })

  it('hangs are bounded too', async () => {
    process.env.FAKE_CONDOR_FAULT = 'condor_config_val:hang'
    const error = await failure(runTool('condor_config_val', ['UID_DOMAIN'], {timeout: 1}))
    expect(error.message).toMatch(/did not finish within 1 seconds/)
  })
})
