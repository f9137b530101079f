/**
 * Other users' jobs in the same schedd. condor_q shows them to a queue
 * superuser, and to everyone where CONDOR_Q_ONLY_MY_JOBS is false; hpc-annex
 * must read only the user's own (an Owner term in every condor_q constraint).
 */
import {execFileSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {markStarted} from '../../src/annex/mark-started.js'
import {annexJobs, annexNameExists, annexQueue, findSifImages} from '../../src/annex/preflight.js'
import {findRequests} from '../../src/annex/requests.js'
import {collectStatus} from '../../src/annex/status.js'
import {ownerConstraint, queryJobs} from '../../src/condor/index.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'

let fake: FakeCondor
let restore: () => void

beforeEach(() => {
  fake = createFakeCondor({config: {CONDOR_Q_ONLY_MY_JOBS: 'False'}})
  restore = fake.install()
})
afterEach(() => {
  restore()
  fake.cleanup()
})

/** Another user's request (state job) and container job for the annex `name`, as condor_submit 25 leaves them. */
function othersJobs(name: string) {
  const image = join(fake.dir, 'theirs.sif')
  writeFileSync(image, 'not ours')
  const state = fake.addJob({Owner: 'someoneelse', hpc_annex_name: name, hpc_annex_system: 'anvil', hpc_annex_login_host: 'login.anvil.example'})
  const job = fake.addJob({Owner: 'someoneelse', TargetAnnexName: name, WantContainer: true, ContainerImage: 'theirs.sif', ContainerImageFullPath: image, TransferInput: image})
  return {state, job}
}

describe("other users' jobs (CONDOR_Q_ONLY_MY_JOBS = False)", () => {
  it('the fake condor_q shows them, as HTCondor does', () => {
    const {state} = othersJobs('shared')
    const out = execFileSync('condor_q', ['-json', '-constraint', 'hpc_annex_name == "shared"', '-attributes', 'ClusterId,Owner'], {encoding: 'utf8'})
    expect(JSON.parse(out)).toMatchObject([{ClusterId: state.ClusterId, Owner: 'someoneelse'}])
  })

  it('do not make a name look taken, supply images, or count as requests', async () => {
    const {state} = othersJobs('shared')
    expect(await annexNameExists('shared')).toBe(false)
    const queue = await annexQueue('shared')
    expect(queue).toEqual({nameTaken: false, jobs: []})
    expect(findSifImages(await annexJobs('shared'))).toEqual([])
    expect(await findRequests('shared')).toEqual([])
    expect((await collectStatus({name: 'shared'})).annexes).toEqual([])
    await expect(markStarted(`${state.ClusterId}.0`)).rejects.toThrow(/is not in the queue/)
  })

  it("the user's own jobs are found beside them", async () => {
    othersJobs('shared')
    const mine = fake.addJob({hpc_annex_name: 'shared'})
    fake.addJob({TargetAnnexName: 'shared'})
    const queue = await annexQueue('shared')
    expect(queue.nameTaken).toBe(true)
    expect(queue.jobs).toHaveLength(1)
    expect((await findRequests('shared')).map((r) => r.jobId)).toEqual([`${mine.ClusterId}.0`])
  })

  it('every condor_q carries the Owner term, ANDed with the constraint and with job ids', async () => {
    const {state} = othersJobs('shared')
    await annexQueue('shared')
    await expect(findRequests('shared', `${state.ClusterId}.0`)).rejects.toThrow(/has no request/)
    expect(await queryJobs({ids: [String(state.ClusterId)]})).toEqual([])
    const owner = `Owner == "${fake.user}"`
    const qs = fake.calls().filter((c) => c.tool === 'condor_q').map((c) => c.argv as string[])
    expect(qs).toHaveLength(3)
    for (const argv of qs) {
      const constraint = argv[argv.indexOf('-constraint') + 1]!
      expect(constraint.startsWith(owner), constraint).toBe(true)
    }
    // A hostile constraint stays inside its parentheses; a hostile owner is a string.
    expect(ownerConstraint({constraint: 'true || true', owner: 'a" || true || "'})).toBe('Owner == "a\\" || true || \\"" && (true || true)')
  })
})
