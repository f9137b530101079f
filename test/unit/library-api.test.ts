/**
 * hpc-annex as a library, the way a user's script gets it: the package npm
 * packs, installed (offline) into a project of its own, imported by its
 * name, its types checked by tsc.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {dryRunJson} from '../../src/cli/json/schemas.js'
import {packProject} from './helpers/pack.js'

const root = join(import.meta.dirname, '..', '..')
const work = mkdtempSync(join(tmpdir(), 'hpc-annex-library-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

function run(command: string, args: string[], options: {cwd?: string; env?: NodeJS.ProcessEnv} = {}) {
  const result = spawnSync(command, args, {encoding: 'utf8', cwd: options.cwd ?? work, env: {...process.env, ...options.env}})
  return {status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? ''}
}

const script = `
import {plan, create, AnnexError} from 'hpc-annex'

const planned = await plan({name: 'dag', target: 'wholenode@anvil', nodes: 2, lifetime: 7200, batchOptions: {reservation: 'r1'}})
let refused
try {
  await plan({name: 'dag', target: 'wholenode@anvil', batchOptions: ['time=10']})
} catch (error) {
  refused = {isAnnexError: error instanceof AnnexError, exitCode: error.exitCode, message: error.message}
}
// Over its budget: refused before any login or HTCondor tool.
let overBudget
try {
  await create({name: 'dag', target: 'wholenode@anvil', nodes: 2, lifetime: 7200}, {maxCharge: 100})
} catch (error) {
  overBudget = {exitCode: error.exitCode, message: error.message}
}
console.log(JSON.stringify({planned, refused, overBudget}))
`

const typed = `
import {plan, create, status, AnnexError, type PlanResult, type RequestResult} from 'hpc-annex'

const planned: PlanResult = await plan({name: 'dag', target: 'wholenode@anvil', nodes: 2})
const nodes: number = planned.nodes
const made: Promise<RequestResult> = create({name: 'dag', target: 'wholenode@anvil'}, {ssh: 'openssh'})
void made.catch((error: unknown) => (error instanceof AnnexError ? error.exitCode : 2))
const annexes = (await status()).annexes.map((annex) => annex.annexName)
console.log(nodes, annexes)
`

describe('the library API from an npm-packed install', () => {
  it('is imported by the package name, plans a dry run whose result is the --json payload, and fails with the one error type', {timeout: 240_000}, () => {
    const tarball = packProject(work)

    const project = join(work, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({name: 'my-workflow', version: '1.0.0', type: 'module', private: true}))
    const installed = run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], {cwd: project})
    expect(installed.status, installed.stderr).toBe(0)

    writeFileSync(join(project, 'plan.mjs'), script)
    const ran = run(process.execPath, ['plan.mjs'], {cwd: project, env: {HPC_ANNEX_MACHINES: ''}})
    expect(ran.status, ran.stderr).toBe(0)
    const {planned, refused, overBudget} = JSON.parse(ran.stdout) as {planned: unknown; refused: unknown; overBudget: {exitCode: number; message: string}}
    // Exactly what create --dry-run --json prints: the published schema takes it as it is.
    const parsed = dryRunJson.parse(planned)
    expect(parsed).toMatchObject({dryRun: true, verb: 'create', annexName: 'dag', nodes: 2, lifetimeSeconds: 7200, warnings: []})
    expect(parsed.batchRequest).toBe('sbatch -p wholenode --nodes=2 --time=120 --reservation=r1')
    // The same package's CLI prints the same object.
    const cli = run(process.execPath, [join(project, 'node_modules', 'hpc-annex', 'bin', 'run.js'), 'create', 'dag', 'wholenode@anvil', '--nodes', '2', '--lifetime', '7200', '--batch-option', 'reservation=r1', '--dry-run', '--json'], {cwd: project, env: {HPC_ANNEX_MACHINES: ''}})
    expect(cli.status, cli.stderr).toBe(0)
    expect(JSON.parse(cli.stdout)).toEqual(planned)
    expect(refused).toEqual({isAnnexError: true, exitCode: 1, message: "--batch-option 'time=10' is refused: hpc-annex sets --time itself; use --lifetime."})
    expect(overBudget.exitCode).toBe(1)
    expect(overBudget.message).toMatch(/512 SUs.*100/)

    // Its types, as a TypeScript user's script sees them.
    writeFileSync(join(project, 'typed.ts'), typed)
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({compilerOptions: {target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: []}, files: ['typed.ts']}),
    )
    const tsc = run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: project})
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0)
    writeFileSync(join(project, 'typed.ts'), typed.replace('const nodes: number = planned.nodes', 'const nodes: string = planned.nodes'))
    const wrong = run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: project})
    expect(wrong.stdout).toMatch(/typed\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/)
  })
})
