/**
 * The library API against the loopback site: a user's script (a child
 * process with the Access Point's environment) creates an annex, reads its
 * status and shuts it down; each result is the verb's --json payload.
 */
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {expectContract} from '../fixtures/json-contract.js'
import {describeOnSite, runCommand} from '../site/helpers.js'
import {annexSite, ROOT, until, type AnnexSite} from './annex-site.js'

describeOnSite('the library API on the loopback site', () => {
  let a: AnnexSite
  beforeAll(() => {
    a = annexSite()
  })
  afterAll(() => a?.close())

  it('creates an annex through create(), whose result is the create --json payload', async () => {
    a.fake.addJob({TargetAnnexName: 'viaapi'})
    const api = pathToFileURL(join(ROOT, 'dist', 'cli', 'api.js')).href
    const script = join(a.home, 'workflow.mjs')
    writeFileSync(
      script,
      `import {apply, create, status, shutdown, AnnexError} from ${JSON.stringify(api)}
const made = await create({name: 'viaapi', target: 'compute@sandbox', nodes: 1, lifetime: 1800, batchOptions: {comment: 'from a script'}}, {condorTarball: process.argv[2]})
let again
try {
  await create({name: 'viaapi', target: 'compute@sandbox', nodes: 1}, {condorTarball: process.argv[2]})
} catch (error) {
  again = {isAnnexError: error instanceof AnnexError, exitCode: error.exitCode, message: error.message}
}
const seen = await status({name: 'viaapi'})
const applied = await apply(process.argv[3], {dryRun: true})
const off = await shutdown({name: 'viaapi', cancelPending: true})
console.log(JSON.stringify({made, again, seen, applied, off}))
`,
    )
    const requestFile = join(a.home, 'annex.json')
    writeFileSync(requestFile, JSON.stringify({name: 'viaapi', requests: [{target: 'compute@sandbox', nodes: 1, lifetime: 1800}, {target: 'shared@sandbox', cpus: 1}]}))
    const run = await runCommand(process.execPath, [script, a.s.condorTarball!, requestFile], a.env)
    expect(run.code, run.stdout + run.stderr).toBe(0)
    // Nothing but the script's own line: the library prints nothing.
    expect(run.stdout.trim().split('\n')).toHaveLength(1)
    const {made, again, seen, applied, off} = JSON.parse(run.stdout) as Record<string, Record<string, unknown>>
    const created = expectContract('create', made!)
    expect(created).toMatchObject({dryRun: false, verb: 'create', annexName: 'viaapi', nodes: 1})
    expect(String(created.batchJobId)).toMatch(/^\d+$/)
    expect(again).toMatchObject({isAnnexError: true, exitCode: 1})
    expect(String(again!.message)).toMatch(/viaapi/)
    const annexes = (expectContract('status', seen!) as {annexes: {annexName: string; requests: {total: number}}[]}).annexes
    expect(annexes.find((x) => x.annexName === 'viaapi')?.requests.total).toBe(1)
    // The request create() made is the file's first: apply() would make only the second.
    const plan = expectContract('apply', applied!) as {requests: {outcome: string; requestId?: string}[]}
    expect(plan.requests.map((r) => r.outcome)).toEqual(['exists', 'would-add'])
    expect(plan.requests[0]!.requestId).toBe(created.requestId)
    expectContract('shutdown', off!)
    const job = a.onSite(`scontrol show job -o ${String(created.batchJobId)}`)
    expect(job.stdout).toContain(' Comment=from a script ')
    await until('batch job gone', () => !a.leftovers().jobs.some((name) => name.startsWith('hpc-annex.viaapi.')), 60_000)
  })
})
