import {execFileSync, spawn} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {userInfo} from 'node:os'
import {join} from 'node:path'
import {buffer} from 'node:stream/consumers'
import {pipeline} from 'node:stream/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {createWriteStream} from 'node:fs'
import {createServer, type AddressInfo} from 'node:net'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {loadCatalog} from '../../src/catalog/index.js'
import type {Plan} from '../../src/catalog/plan.js'
import {projectPath} from '../../src/paths.js'
import {shellQuote} from '../../src/quote.js'
import {batchJobName} from '../../src/batch/index.js'
import {BACKEND_EXIT, JOB_ID_RECORDED, TAR_RECORD_BYTES} from '../../src/backend/protocol.js'
import type {ApContext} from '../../src/render/context.js'
import {render} from '../../src/render/index.js'
import {backendView, bootstrapCommand, bundleStream, renderFiles, type BundleInputs, type RenderedFile} from '../../src/backend/index.js'
import {controlLines, fakeCondorTarball, makeStubs, planFor, runBash, sha256, tempDir} from './render-helpers.js'

let work: string
let stubs: string
let home: string
let scratch: string
let tarball: string
let digest: string

beforeEach(() => {
  work = tempDir('backend')
  stubs = makeStubs()
  home = join(work, 'home')
  scratch = join(work, 'scratch')
  mkdirSync(home)
  tarball = fakeCondorTarball(work)
  digest = sha256(tarball)
})

afterEach(() => {
  rmSync(work, {recursive: true, force: true})
  rmSync(stubs, {recursive: true, force: true})
})

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: scratch, USER: 'alice', HPC_ANNEX_FS_WAIT: '4', ...extra}
}

/** Streams the bundle into a tar file and unpacks it with the system tar, as the login node would. */
async function unpack(files: RenderedFile[], inputs: BundleInputs, name = 'bundle'): Promise<string> {
  const file = join(work, `${name}.tar`)
  await pipeline(bundleStream(files, inputs), createWriteStream(file))
  const dir = join(work, name)
  mkdirSync(dir)
  execFileSync('tar', ['-xf', file, '-C', dir])
  return dir
}

function calls(tool: string): string[][] {
  const path = join(stubs, `${tool}.calls`)
  if (!existsSync(path)) return []
  return readFileSync(path, 'utf8').split('\n\n').filter((c) => c.trim() !== '').map((c) => c.split('\n'))
}

/** Puts a stand-in for TOOL on PATH that records its calls (as makeStubs' do), then runs BODY. */
function recordingTool(tool: string, body = ''): void {
  writeFileSync(join(stubs, tool), `#!/bin/bash\nprintf '%s\\n' "$PWD" "$@" '' >> '${stubs}/${tool}.calls'\n${body}`, {mode: 0o755})
}

/** The bundle as create streams it to the bootstrap: the scripts as one entry, padded to whole tar records. */
async function paddedBundle(files: RenderedFile[], inputs: BundleInputs): Promise<Buffer> {
  const tar = await buffer(bundleStream(files, inputs, {filesAsOneEntry: true}))
  return Buffer.concat([tar, Buffer.alloc((TAR_RECORD_BYTES - (tar.length % TAR_RECORD_BYTES)) % TAR_RECORD_BYTES)])
}

function pilotDirs(): string[] {
  return existsSync(scratch) ? readdirSync(scratch).filter((n) => /^pilot\.[A-Za-z0-9]+$/.test(n)) : []
}

const loginUser = userInfo().username
const benignAp: ApContext = {requestId: 'ap.example.org#7.0#1700000000', collector: 'ap.example.org:9618?sock=ap_collector', scheddName: 'ap.example.org'}

describe('the SLURM back-end, executed with hostile values', {timeout: 60_000}, () => {
  it('treats every user- and AP-supplied value as data: no injected command runs, and the job is submitted once', async () => {
    const mark = join(work, 'INJECTED')
    const hostile = (n: number) => `h'"$(touch ${mark}${n})"\`touch ${mark}${n}b\`;touch ${mark}${n}c;'$(touch ${mark}${n}d)'|x&y`
    const base = planFor({target: 'wholenode@anvil', nodes: '2', project: 'abc123'})
    const plan: Plan = {...base, annexName: hostile(1), owners: [hostile(2), 'bob'], login: {host: hostile(3), user: hostile(4), hostFromFlag: true}}
    const ap: ApContext = {requestId: hostile(5), collector: hostile(6), scheddName: hostile(7), stagedTarballSha256: digest}

    // A project that cannot be a plain #SBATCH word is refused there, not quoted...
    expect(() => renderFiles({...plan, project: hostile(8)}, ap)).toThrow(/#SBATCH/)
    // ...while the back-end itself carries it as a quoted bash word.
    // Job images with hostile names: one travels in the bundle, one is already in the login node's cache.
    const sifs = ['$(touch INJECTED9).sif', "x'y;touch INJECTED10;`touch INJECTED11`.sif"]
    const sifDir = join(work, 'images')
    mkdirSync(sifDir)
    for (const i of sifs.keys()) writeFileSync(join(sifDir, `image${i}`), `image ${i}`)
    const images = sifs.map((name, i) => ({name, sha256: sha256(join(sifDir, `image${i}`))}))
    const cache = join(home, '.hpc-annex', 'cache')
    mkdirSync(cache, {recursive: true})
    writeFileSync(join(cache, images[1]!.sha256), 'image 1')
    const withImages = {...ap, images}
    const files = renderFiles(plan, withImages).map((f) =>
      f.path === 'backend.sh' ? {...f, content: render('backend-slurm.sh.hbs', backendView({...plan, project: hostile(8)}, withImages))} : f)
    for (const file of files) {
      expect(file.content).not.toContain(plan.login.host)
      expect(file.content).not.toContain(plan.login.user)
    }

    // The back-end runs in `work`, where these would leave their marks.
    const bundle = await unpack(files, {
      token: Buffer.from('TOKEN-SECRET'),
      password: Buffer.from('PASSWORD-SECRET'),
      sifs: [{sha256: images[0]!.sha256, path: join(sifDir, 'image0')}],
      condorTarball: {path: tarball, sha256: digest},
    })

    const result = runBash(join(bundle, 'backend.sh'), [], env(), work)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(readdirSync(work).filter((n) => n.startsWith('INJECTED'))).toEqual([])

    const control = controlLines(result.stdout)
    expect(control.PID).toMatch(/^\d+$/)
    expect(control.JOB_ID).toBe('4242')
    const pilotDir = control.PILOT_DIR!
    expect(pilotDir.startsWith(`${scratch}/pilot.`)).toBe(true)
    expect(result.stdout).toContain('\rStep 9 of 9: submitting the batch job\n')

    // Looked for an earlier submission under the job's name, then submitted once, from the pilot directory.
    expect(calls('squeue')).toHaveLength(1)
    expect(calls('squeue')[0]).toContain(`--name=${batchJobName(plan.annexName, ap.requestId)}`)
    // Submitted once, from the pilot directory: the first call (the script on its stdin, asked
    // while the pilot directory is made) only asks SLURM when the same script would start.
    expect(calls('sbatch')).toEqual([[expect.any(String), '--test-only'], [pilotDir, '--parsable', 'batch.slurm']])

    // The pilot directory holds the release, the scripts, the secrets (0600) and the images under their own names.
    expect(statSync(join(pilotDir, 'condor', 'sbin', 'condor_master')).isFile()).toBe(true)
    expect(readFileSync(join(pilotDir, 'secrets', 'token'), 'utf8')).toBe('TOKEN-SECRET')
    expect(statSync(join(pilotDir, 'secrets', 'token')).mode & 0o777).toBe(0o600)
    expect(statSync(join(pilotDir, 'secrets', 'password')).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(pilotDir, 'sif')).sort()).toEqual([...sifs].sort())
    for (const [i, name] of sifs.entries()) expect(readFileSync(join(pilotDir, 'sif', name), 'utf8')).toBe(`image ${i}`)
    // The uploaded image entered the cache under its digest.
    expect(readFileSync(join(cache, images[0]!.sha256), 'utf8')).toBe('image 0')
    expect(existsSync(join(bundle, 'token'))).toBe(false)
    expect(existsSync(join(bundle, 'password'))).toBe(false)

    // The configuration carries the values as ClassAd strings in which HTCondor expands no macro.
    const config = readFileSync(join(pilotDir, 'condor_config'), 'utf8')
    expect(config).toContain(`PILOT_DIR = ${pilotDir}\n`)
    expect(config).toContain(`strcat("${pilotDir}/sif/", MY.ContainerImage)`)
    const literal = (s: string) => JSON.stringify(s).replace(/\$/g, '$(DOLLAR)')
    expect(config).toContain(`AnnexName = ${literal(plan.annexName)}\n`)
    expect(config).toContain(`hpc_annex_request_id = ${literal(ap.requestId)}\n`)
    expect(config).toContain(`stringListMember(TARGET.Owner, ${literal(`${hostile(2)},bob`)})`)
    expect(config).toContain(`COLLECTOR_HOST = ${ap.collector.replace(/\$/g, '$(DOLLAR)')}\n`)

    // The release was cached by digest, unpacked once, next to the tarball.
    expect(existsSync(join(home, '.hpc-annex', 'cache', digest))).toBe(true)
    expect(existsSync(join(home, '.hpc-annex', 'cache', `${digest}.release`, 'sbin', 'condor_master'))).toBe(true)

    // The batch job: one pilot per node, each in its own LOCAL_DIR with node-local LOCK, then the directory goes.
    const job = runBash(join(pilotDir, 'batch.slurm'), [], env({SLURM_SUBMIT_DIR: pilotDir, SLURM_JOB_ID: '4242', CUDA_VISIBLE_DEVICES: '0,1'}), pilotDir)
    expect(job.stderr).toBe('')
    expect(job.status).toBe(0)
    expect(existsSync(pilotDir)).toBe(false)
    expect(calls('srun')[0]).toEqual([pilotDir, '-K0', '-W0', '-n', '2', '--ntasks-per-node=1', `${pilotDir}/pilot.sh`, 'run', pilotDir])
    for (const node of ['node1', 'node2']) {
      const ran = readFileSync(join(`${pilotDir}.logs`, node, 'master-ran'), 'utf8')
      expect(ran).toContain('args=-f\n')
      expect(ran).toContain(`_CONDOR_LOCAL_DIR=${pilotDir}/hosts/${node}\n`)
      expect(ran).toContain(`CONDOR_CONFIG=${pilotDir}/condor_config\n`)
      expect(ran).toMatch(/_CONDOR_LOCK=\/tmp\/hpc-annex-lock\.[A-Za-z0-9]+\n/)
      expect(ran).toMatch(/_CONDOR_ANNEX_SETUP_SECONDS=\d+\n/)
      expect(ran).toContain('CUDA_VISIBLE_DEVICES=0,1\n')
      expect(ran).toMatch(/mode=600 .*tokens\.d\/annex\nmode=600 .*passwords\.d\/POOL\n/)
    }
    expect(readdirSync(work).filter((n) => n.startsWith('INJECTED'))).toEqual([])
  })

  it('refuses a value HTCondor configuration cannot carry (a newline) at render time', () => {
    const plan = planFor({target: 'wholenode@anvil'})
    expect(() => renderFiles(plan, {...benignAp, collector: 'a\nSTART = TRUE'})).toThrow(/control character/)
    expect(() => renderFiles({...plan, owners: ['a\nb']}, benignAp)).toThrow(/control character/)
  })
})

describe('the SLURM back-end', {timeout: 60_000}, () => {
  const plan = () => planFor({target: 'wholenode@anvil', nodes: '2'})
  const secrets = {token: Buffer.from('t'), password: Buffer.from('p')}

  async function backend(ap: ApContext, inputs: Partial<BundleInputs> = {}, name = 'bundle', p: Plan = plan()): Promise<string> {
    return join(await unpack(renderFiles(p, ap), {...secrets, ...inputs}, name), 'backend.sh')
  }

  /** The plan with every HTCondor tarball pinned to `sha`. */
  function pinned(sha: string): Plan {
    const p = plan()
    return {...p, htcondor: {...p.htcondor, tarballs: p.htcondor.tarballs.map(({checksumUrl: _published, ...t}) => ({...t, sha256: sha, verification: 'pinned' as const}))}}
  }

  /** The environment of a login node whose os-release is `osRelease` and whose curl downloads the test tarball. */
  function downloadingNode(osRelease: string): NodeJS.ProcessEnv {
    writeFileSync(join(work, 'os-release'), osRelease)
    copyFileSync(tarball, join(stubs, 'download'))
    return env({HPC_ANNEX_OS_RELEASE: join(work, 'os-release')})
  }

  it('does not submit again when the batch system already has this request\'s job', async () => {
    writeFileSync(join(stubs, 'squeue.out'), '999 /scratch/alice/pilot.Earlier1\n')
    const script = await backend(benignAp)
    const result = runBash(script, [], env(), work)
    expect(readdirSync(join(script, '..')).filter((name) => name.endsWith('.out'))).toEqual([])
    expect(result.status).toBe(0)
    expect(controlLines(result.stdout)).toMatchObject({JOB_ID: '999', PILOT_DIR: '/scratch/alice/pilot.Earlier1'})
    expect(calls('sbatch')).toEqual([])
    expect(pilotDirs()).toEqual([])
  })

  it('through the bootstrap, an earlier submission found: takes in what is still arriving, then ends well', async () => {
    writeFileSync(join(stubs, 'squeue.out'), '999 /scratch/alice/pilot.Earlier1\n')
    // More than a pipe holds: a sender whose stream was left unread would be cut off.
    const image = join(work, 'arriving.sif')
    writeFileSync(image, Buffer.alloc(4 * 1024 * 1024, 5))
    const sifs = [{sha256: sha256(image), path: image}]
    const ap = {...benignAp, stagedTarballSha256: digest}
    const padded = await paddedBundle(renderFiles(plan(), ap), {token: Buffer.from('t'), password: Buffer.from('p'), sifs, condorTarball: {path: tarball, sha256: digest}})
    const child = spawn('bash', ['-c', bootstrapCommand([], {ackTimeout: 60})], {env: env(), cwd: work, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stdinError: unknown
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stdin.on('error', (error) => (stdinError = error))
    const written = new Promise<void>((resolve) => child.stdin.end(padded, () => resolve()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    await written.catch(() => undefined)
    expect(code).toBe(0)
    expect(stdinError).toBeUndefined()
    expect(controlLines(stdout)).toMatchObject({JOB_ID: '999', PILOT_DIR: '/scratch/alice/pilot.Earlier1'})
    expect(calls('sbatch')).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  })

  it('ends the questions it left running in the background when it fails before their answers', async () => {
    // SLURM's estimate never answers; the machine's set-up fails, once that question is surely under way.
    writeFileSync(join(stubs, 'sbatch.test-only-hang'), '')
    const asked = join(stubs, 'sbatch.test-only.pid')
    const failing: Plan = {...plan(), pilotDirFragment: `for _ in $(seq 200); do [ -s ${shellQuote(asked)} ] && break; sleep 0.05; done\nfalse\n`}
    const script = await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}, 'bundle', failing)
    const result = runBash(script, [], env(), work)
    expect(result.status, result.stderr).toBe(BACKEND_EXIT.machineSetup)
    // Nor is what they wrote left in the bundle directory (a bundle run by hand keeps its directory).
    expect(readdirSync(join(script, '..')).filter((name) => name.endsWith('.out'))).toEqual([])
    const pid = Number(readFileSync(asked, 'utf8'))
    const alive = () => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    // Its own bound (timeout 10) would end it only seconds later.
    const until = Date.now() + 5000
    while (alive() && Date.now() < until) await sleep(20)
    expect(alive()).toBe(false)
    expect(pilotDirs()).toEqual([])
  })

  it('removes the pilot directory when sbatch refuses the job, and says why', async () => {
    writeFileSync(join(stubs, 'sbatch.fail'), '')
    const result = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}), [], env(), work)
    expect(result.status).toBe(BACKEND_EXIT.submit)
    expect(result.stderr).toContain('invalid account')
    expect(controlLines(result.stdout).PILOT_DIR).toBeDefined()
    expect(pilotDirs()).toEqual([])
  })

  it('withdraws the job when sbatch printed no job id (the batch system may hold it), and removes the pilot directory', async () => {
    recordingTool('sbatch', "echo 'Submitted, somewhere'\n")
    recordingTool('scancel')
    const result = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}), [], env(), work)
    expect(result.status).toBe(BACKEND_EXIT.submitOutput)
    expect(result.stderr).toContain('sbatch printed no job id: Submitted, somewhere')
    const name = `--name=${batchJobName(plan().annexName, benignAp.requestId)}`
    expect(calls('scancel').map((c) => c.slice(1))).toEqual([[`--user=${loginUser}`, name]])
    // The earlier-submission check, then the wait for the cancelled job to leave before its pilot directory goes.
    expect(calls('squeue').map((c) => c.slice(1))).toEqual([
      ['--noheader', `--user=${loginUser}`, name, '--format=%i %Z'],
      ['--noheader', `--user=${loginUser}`, name, '--format=%i'],
    ])
    expect(pilotDirs()).toEqual([])
  })

  /** Bash that waits (20 s at most) until the batch job has been submitted (sbatch --parsable ran). */
  const untilSubmitted = () => `for _ in $(seq 400); do grep -qx -- --parsable '${stubs}/sbatch.calls' 2>/dev/null && break; sleep 0.05; done`

  /** A tar that unpacks a cached tarball (`tar -xzf FILE`) only as `before` lets it; any other use is the system's tar. */
  function gatedTar(before: string): void {
    writeFileSync(join(stubs, 'tar'), `#!/bin/bash\nif [ "$1" = -xzf ] && [ "$2" != - ]; then\n${before}\nfi\nPATH=/usr/bin:/bin exec tar "$@"\n`, {mode: 0o755})
  }

  it('submits the batch job while HTCondor unpacks, and ends once the release is whole in the pilot directory', async () => {
    // The unpacking starts only once the job is submitted (else it fails): a back-end that
    // waited for it before submitting would fail here.
    gatedTar(`${untilSubmitted()}\ngrep -qx -- --parsable '${stubs}/sbatch.calls' || exit 1`)
    const result = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}), [], env(), work)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const at = ['\rStep 5 of 9: unpacking HTCondor (the batch job will wait for it)\n', '\rStep 9 of 9: submitting the batch job\n', '=-.-= JOB_ID 4242\n'].map((line) => result.stdout.indexOf(line))
    expect(at.every((i) => i >= 0), result.stdout).toBe(true)
    expect([...at].sort((x, y) => x - y)).toEqual(at)
    expect(controlLines(result.stdout).WITHDRAWN).toBeUndefined()
    expect(calls('sbatch').map((c) => c.slice(1))).toEqual([['--test-only'], ['--parsable', 'batch.slurm']])
    const pilotDir = controlLines(result.stdout).PILOT_DIR!
    expect(statSync(join(pilotDir, 'condor', 'sbin', 'condor_master')).mode & 0o100).toBe(0o100)
    expect(existsSync(join(pilotDir, '.condor.partial'))).toBe(false)
    // The release is cached beside the tarball; no unpacking directory is left.
    expect(readdirSync(join(home, '.hpc-annex', 'cache')).sort()).toEqual(['.uses', digest, `${digest}.release`])
  })

  for (const when of ['after', 'before'] as const) {
    it(`fails the request when HTCondor does not unpack: ${when === 'after' ? 'cancels the batch job it submitted and says it did' : 'a failure known before the submission submits nothing'}; the pilot directory goes`, async () => {
        recordingTool('scancel')
      // One top directory, but no sbin/condor_master in it.
      const strange = join(work, 'strange')
      mkdirSync(join(strange, 'top', 'etc'), {recursive: true})
      writeFileSync(join(strange, 'top', 'etc', 'nothing'), '')
      const broken = join(work, 'broken.tar.gz')
      execFileSync('tar', ['-czf', broken, '-C', strange, 'top'])
      const sha = sha256(broken)
      let p = plan()
      if (when === 'after') gatedTar(untilSubmitted())
      // The machine's set-up (step 7) lets the back-end go on only once the unpacking has ended.
      else p = {...p, pilotDirFragment: 'for _ in $(seq 400); do completing_pilot_dir || break; sleep 0.05; done\n'}
      const result = runBash(await backend({...benignAp, stagedTarballSha256: sha}, {condorTarball: {path: broken, sha256: sha}}, 'bundle', p), [], env(), work)
      expect(result.status).toBe(BACKEND_EXIT.unpack)
      expect(result.stderr).toBe('hpc-annex back-end: the HTCondor tarball does not hold one release directory with sbin/condor_master\n')
      const control = controlLines(result.stdout)
      if (when === 'after') {
        expect(control.JOB_ID).toBe('4242')
        expect(control.WITHDRAWN).toBe('')
        expect(calls('scancel').map((c) => c.slice(1))).toEqual([[`--user=${loginUser}`, `--name=${batchJobName(plan().annexName, benignAp.requestId)}`]])
      } else {
        expect(control.JOB_ID).toBeUndefined()
        expect(control.WITHDRAWN).toBeUndefined()
        expect(calls('sbatch').map((c) => c.slice(1))).toEqual([['--test-only']])
        expect(calls('scancel')).toEqual([])
      }
      expect(pilotDirs()).toEqual([])
      expect(readdirSync(join(home, '.hpc-annex', 'cache')).sort()).toEqual(['.uses', sha])
    })
  }

  it('a hang-up while HTCondor unpacks ends the unpacking too, cancels the job and leaves nothing', async () => {
    recordingTool('scancel')
    const unpacking = join(stubs, 'tar.pid')
    gatedTar(`echo $$ > '${unpacking}.new' && mv '${unpacking}.new' '${unpacking}'\nexec sleep 60`)
    const script = await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}})
    const child = spawn('bash', [script], {env: env(), cwd: work, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    const ended = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const until = Date.now() + 20_000
    while (!(existsSync(unpacking) && stdout.includes('waiting for the unpacking of HTCondor to end')) && Date.now() < until) await sleep(20)
    expect(stdout).toContain('=-.-= JOB_ID 4242\n')
    // As sshd does when the connection drops: SIGHUP to the session's process group (the unpacking has a group of its own).
    process.kill(-child.pid!, 'SIGHUP')
    expect(await ended).toBe(129)
    const pid = Number(readFileSync(unpacking, 'utf8'))
    expect(() => process.kill(pid, 0)).toThrow()
    expect(calls('scancel')).toHaveLength(1)
    expect(pilotDirs()).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'cache')).sort()).toEqual(['.uses', digest])
  })

  it('a pilot waits for the release to appear in the pilot directory, and says what never did', async () => {
    const result = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}), [], env(), work)
    expect(result.status).toBe(0)
    const pilotDir = controlLines(result.stdout).PILOT_DIR!
    renameSync(join(pilotDir, 'condor'), join(pilotDir, 'later'))
    // sleep notes each wait, so the release comes back only once the pilot has looked and waited.
    writeFileSync(join(stubs, 'sleep'), `#!/bin/bash\necho "$*" >> '${stubs}/sleep.calls'\nexec /bin/sleep "$@"\n`, {mode: 0o755})
    const pilot = spawn(join(pilotDir, 'pilot.sh'), ['run', pilotDir], {env: env({SLURMD_NODENAME: 'node1'}), stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    pilot.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const ended = new Promise<number | null>((resolve) => pilot.once('exit', (code) => resolve(code)))
    const until = Date.now() + 10_000
    while (!existsSync(join(stubs, 'sleep.calls')) && Date.now() < until) await sleep(20)
    renameSync(join(pilotDir, 'later'), join(pilotDir, 'condor'))
    expect(await ended, stderr).toBe(0)
    expect(readFileSync(join(pilotDir, 'hosts', 'node1', 'log', 'master-ran'), 'utf8')).toContain('args=-f\n')

    renameSync(join(pilotDir, 'condor'), join(pilotDir, 'later'))
    const missing = runBash(join(pilotDir, 'pilot.sh'), ['run', pilotDir], env({HPC_ANNEX_FS_WAIT: '1', SLURMD_NODENAME: 'node2'}), work)
    expect(missing.status).toBe(33)
    expect(missing.stderr).toContain(`HTCondor (${pilotDir}/condor) did not appear on this node within 1 seconds`)
  })

  it('a pilot waits past its limit while the back-end keeps touching .arriving, and no longer once it stops', async () => {
    const result = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}), [], env(), work)
    expect(result.status).toBe(0)
    const pilotDir = controlLines(result.stdout).PILOT_DIR!
    renameSync(join(pilotDir, 'condor'), join(pilotDir, 'later'))
    const marker = join(pilotDir, '.arriving')
    writeFileSync(marker, '')
    // Each of the pilot's waits lasts longer than its limit (1 s); the first three end with the
    // marker touched (a new time each), the fourth with the release in place.
    const count = join(stubs, 'sleep.count')
    const touching = `n=$(( $(cat '${count}' 2>/dev/null || echo 0) + 1 )); echo "$n" > '${count}'\n/bin/sleep 1.1\nif [ "$n" -lt 4 ]; then touch -d "@$((1700000000 + n))" '${marker}'; else mv '${join(pilotDir, 'later')}' '${join(pilotDir, 'condor')}'; rm -f '${marker}'; fi\n`
    writeFileSync(join(stubs, 'sleep'), `#!/bin/bash\n${touching}`, {mode: 0o755})
    const waited = runBash(join(pilotDir, 'pilot.sh'), ['run', pilotDir], env({HPC_ANNEX_FS_WAIT: '1', SLURMD_NODENAME: 'node1'}), work)
    expect(waited.status, waited.stderr).toBe(0)
    expect(readFileSync(count, 'utf8')).toBe('4\n')

    // A marker that no longer changes (a back-end gone) holds the pilot no longer than its limit.
    renameSync(join(pilotDir, 'condor'), join(pilotDir, 'later'))
    writeFileSync(marker, '')
    rmSync(join(stubs, 'sleep'))
    const stale = runBash(join(pilotDir, 'pilot.sh'), ['run', pilotDir], env({HPC_ANNEX_FS_WAIT: '1', SLURMD_NODENAME: 'node2'}), work)
    expect(stale.status).toBe(33)
    expect(stale.stderr).toContain(`HTCondor (${pilotDir}/condor) did not appear on this node within 1 seconds`)
  })

  it('checks an object by the sha256 recorded as it arrived, and hashes it itself when none was', async () => {
    const ap = {...benignAp, stagedTarballSha256: digest}
    const recorded = await unpack(renderFiles(plan(), ap), {...secrets, condorTarball: {path: tarball, sha256: digest}}, 'recorded')
    writeFileSync(join(recorded, 'condor', `${digest}.sha256`), `${'e'.repeat(64)}  -\n`)
    const refused = runBash(join(recorded, 'backend.sh'), [], env(), work)
    expect(refused.status).toBe(BACKEND_EXIT.checksum)
    expect(refused.stderr).toContain(`has sha256 ${'e'.repeat(64)}, expected ${digest}`)
    expect(existsSync(join(home, '.hpc-annex', 'cache', digest))).toBe(false)
    // A record that is not a sha256 is no record.
    const garbled = await unpack(renderFiles(plan(), ap), {...secrets, condorTarball: {path: tarball, sha256: digest}}, 'garbled')
    writeFileSync(join(garbled, 'condor', `${digest}.sha256`), '$(touch INJECTED)\n')
    const taken = runBash(join(garbled, 'backend.sh'), [], env(), work)
    expect(taken.status).toBe(0)
    expect(existsSync(join(home, '.hpc-annex', 'cache', digest))).toBe(true)
    expect(readdirSync(work).filter((n) => n.startsWith('INJECTED'))).toEqual([])
  })

  it('refuses a staged tarball whose sha256 is not the one announced', async () => {
    const wrong = 'f'.repeat(64)
    const result = runBash(await backend({...benignAp, stagedTarballSha256: wrong}, {condorTarball: {path: tarball, sha256: wrong}}), [], env(), work)
    expect(result.status).toBe(BACKEND_EXIT.checksum)
    expect(pilotDirs()).toEqual([])
    expect(existsSync(join(home, '.hpc-annex', 'cache', wrong))).toBe(false)
  })

  /** Publishes a checksum file next to the tarballs (what the curl stub serves by file name). */
  function publish(text: string, name = 'sha256sum.txt'): void {
    mkdirSync(join(stubs, 'served'), {recursive: true})
    writeFileSync(join(stubs, 'served', name), text)
  }
  const almaLinux9 = 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4 (Seafoam Ocelot)"\n'
  const tarballFor = (os: string) => plan().htcondor.tarballs.find((t) => t.os === os)!

  it('verifies an unpinned download against the sha256 published next to it, and says which build it chose', async () => {
    const node = downloadingNode(almaLinux9)
    const {url, checksumUrl} = tarballFor('AlmaLinux9')
    expect(url).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.4/release/condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz')
    publish(`${'0'.repeat(64)}  condor-25.0.4-x86_64_AlmaLinux8-stripped.tar.gz\n${digest} *condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz\n`)
    const first = runBash(await backend(benignAp, {}, 'first'), [], node, work)
    expect(first.stderr).toBe('')
    expect(first.status).toBe(0)
    expect(calls('curl').map((c) => c.at(-1))).toEqual([checksumUrl, url])
    expect(controlLines(first.stdout).NOTICE).toBe(`the pilots run HTCondor 25.0.4 for AlmaLinux9 (the login node runs AlmaLinux 9.4 (Seafoam Ocelot)): ${url}, verified against the sha256 published in ${checksumUrl}`)
    expect(readdirSync(join(home, '.hpc-annex', 'cache')).sort()).toEqual(['.uses', digest, `${digest}.release`])
    // Again: the published sha256 is asked for once more, and the cache holds it.
    const second = runBash(await backend(benignAp, {}, 'second'), [], node, work)
    expect(second.status).toBe(0)
    expect(calls('curl').map((c) => c.at(-1))).toEqual([checksumUrl, url, checksumUrl])
    expect(second.stdout).toContain('using the unpacked HTCondor from the cache')
  })

  it('refuses a download whose published sha256 differs, and leaves nothing behind', async () => {
    const node = downloadingNode(almaLinux9)
    publish(`${'a'.repeat(64)}  condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz\n`)
    const refused = runBash(await backend({...benignAp, allowUnpinnedDownload: true}, {}, 'wrong'), [], node, work)
    expect(refused.status).toBe(BACKEND_EXIT.checksum)
    expect(refused.stderr).toBe(`hpc-annex back-end: ${tarballFor('AlmaLinux9').url} has sha256 ${digest}, expected ${'a'.repeat(64)} (published in ${tarballFor('AlmaLinux9').checksumUrl}); refused. Stage a tarball with --condor-tarball, or pin the right sha256\n`)
    expect(pilotDirs()).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'cache'))).toEqual([])
  })

  it('refuses a download no checksum vouches for (none published, or not listed), unless unpinned downloads are allowed', async () => {
    const node = downloadingNode(almaLinux9)
    const {url, checksumUrl} = tarballFor('AlmaLinux9')
    const missing = runBash(await backend(benignAp, {}, 'missing'), [], node, work)
    expect(missing.status).toBe(BACKEND_EXIT.unpinned)
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)
    expect(missing.stderr).toContain(`no sha256 to verify ${url}: ${checksumUrl}: HTTP 404; refused.`)
    expect(missing.stderr).toContain('--condor-tarball')
    // Asked for the checksum, then only whether the tarball is there (no download).
    expect(calls('curl').map((c) => [c.includes('-I'), c.at(-1)])).toEqual([[false, checksumUrl], [true, url]])
    expect(pilotDirs()).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'cache'))).toEqual([])

    publish(`${'0'.repeat(64)}  condor-25.0.4-x86_64_AlmaLinux8-stripped.tar.gz\n`)
    const unlisted = runBash(await backend(benignAp, {}, 'unlisted'), [], node, work)
    expect(unlisted.status).toBe(BACKEND_EXIT.unpinned)
    expect(unlisted.stderr).toContain(`${checksumUrl} lists no sha256 for condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz; refused.`)

    // Allowed: trust on first use, once; then the cache.
    const first = runBash(await backend({...benignAp, allowUnpinnedDownload: true}, {}, 'first'), [], node, work)
    expect(first.status).toBe(0)
    expect(first.stdout).toContain(`it has sha256 ${digest}`)
    const downloads = () => calls('curl').filter((c) => c.at(-1) === url && !c.includes('-I')).length
    expect(downloads()).toBe(1)
    const second = runBash(await backend({...benignAp, allowUnpinnedDownload: true}, {}, 'second'), [], node, work)
    expect(second.status).toBe(0)
    expect(downloads()).toBe(1)
    expect(second.stdout).toContain('using the unpacked HTCondor from the cache')
  })

  it('names the URL and the HTTP status when the tree has no such release, and suggests --condor-tarball', async () => {
    const node = downloadingNode(almaLinux9)
    rmSync(join(stubs, 'download'))
    const p = planFor({target: 'wholenode@anvil', nodes: '2'}, '25.99.0')
    const {url} = p.htcondor.tarballs.find((t) => t.os === 'AlmaLinux9')!
    expect(url).toContain('/25.x/25.99.0/release/')
    const result = runBash(await backend(benignAp, {}, 'absent', p), [], node, work)
    expect(result.status).toBe(BACKEND_EXIT.download)
    expect(result.stderr).toBe(`hpc-annex back-end: cannot download HTCondor 25.99.0 for AlmaLinux9 from ${url} (HTTP 404); stage a tarball with --condor-tarball, or pin another version with --condor-version\n`)
    expect(pilotDirs()).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'cache'))).toEqual([])
    // With a pinned sha256 the download itself fails the same way.
    const pinnedAbsent = runBash(await backend(benignAp, {}, 'pinned-absent', {...p, htcondor: {...p.htcondor, tarballs: p.htcondor.tarballs.map((t) => ({...t, sha256: digest}))}}), [], node, work)
    expect(pinnedAbsent.status).toBe(BACKEND_EXIT.download)
    expect(pinnedAbsent.stderr).toContain(`from ${url} (HTTP 404); stage a tarball with --condor-tarball`)
  })

  it('verifies a pinned sha256, downloads only on a miss, and refuses a download that does not match', async () => {
    const node = downloadingNode('ID=rocky\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n')
    const bad = runBash(await backend(benignAp, {}, 'bad', pinned('0'.repeat(64))), [], node, work)
    expect(bad.status).toBe(BACKEND_EXIT.checksum)
    expect(calls('curl')[0]!.at(-1)).toContain('AlmaLinux8')
    expect(pilotDirs()).toEqual([])

    // The refused download went.
    const cache = join(home, '.hpc-annex', 'cache')
    expect(readdirSync(cache)).toEqual([])

    const good = runBash(await backend(benignAp, {}, 'good', pinned(digest)), [], node, work)
    expect(good.status).toBe(0)
    expect(calls('curl')).toHaveLength(2)
    // Into a file, with curl's retries; then unpacked beside the submission.
    expect(calls('curl')[1]).toEqual(expect.arrayContaining(['--retry', '3', '-o']))
    expect(good.stdout).toContain('unpacking HTCondor (the batch job will wait for it)')
    expect(readdirSync(cache).sort()).toEqual(['.uses', digest, `${digest}.release`])
    const again = runBash(await backend(benignAp, {}, 'again', pinned(digest)), [], node, work)
    expect(again.status).toBe(0)
    expect(calls('curl')).toHaveLength(2)
  })

  it('leaves no temporary object in the cache when the connection drops during a download', async () => {
    const node = downloadingNode('ID=almalinux\nVERSION_ID="9.4"\n')
    writeFileSync(join(stubs, 'curl.hang'), '')
    // As sshd does when the connection drops: SIGHUP to the session's process group.
    const child = spawn('bash', [await backend(benignAp, {}, 'dropped', pinned(digest))], {env: node, cwd: work, detached: true, stdio: 'ignore'})
    const ended = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    // Once curl runs, its temporary file is made (a kill between making it and noting it
    // would leave it to the day-old sweep).
    while (calls('curl').length === 0) await sleep(20)
    process.kill(-child.pid!, 'SIGHUP')
    expect(await ended).toBe(129)
    expect(readdirSync(join(home, '.hpc-annex', 'cache'))).toEqual([])
    expect(pilotDirs()).toEqual([])
  })

  it('removes temporary objects a back-end killed outright left in the cache, once they are a day old', async () => {
    const cache = join(home, '.hpc-annex', 'cache')
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000)
    // Only the last kind of temporary there: the sweep looks for each kind.
    mkdirSync(cache, {recursive: true})
    writeFileSync(join(cache, '.sums.OLDOLDOL'), 'x')
    utimesSync(join(cache, '.sums.OLDOLDOL'), twoDaysAgo, twoDaysAgo)
    const alone = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}, 'alone'), [], env(), work)
    expect(alone.status).toBe(0)
    expect(readdirSync(cache).sort()).toEqual(['.uses', digest, `${digest}.release`].sort())

    mkdirSync(join(cache, '.unpack.OLDOLDOL', 'tree'), {recursive: true})
    mkdirSync(join(cache, '.download-tree.OLDOLDOL', 'tree'), {recursive: true})
    for (const name of ['.partial.OLDOLDOL', '.download.OLDOLDOL', '.download.NEWNEWNE', '.sums.OLDOLDOL', 'notes.OLD']) writeFileSync(join(cache, name), 'x')
    for (const name of ['.unpack.OLDOLDOL', '.download-tree.OLDOLDOL', '.partial.OLDOLDOL', '.download.OLDOLDOL', '.sums.OLDOLDOL', 'notes.OLD']) utimesSync(join(cache, name), twoDaysAgo, twoDaysAgo)
    const result = runBash(await backend({...benignAp, stagedTarballSha256: digest}, {condorTarball: {path: tarball, sha256: digest}}), [], env(), work)
    expect(result.status).toBe(0)
    // A younger one may belong to a back-end running now; what is not a temporary object stays.
    expect(readdirSync(cache).sort()).toEqual(['.download.NEWNEWNE', '.uses', digest, `${digest}.release`, 'notes.OLD'].sort())
  })

  it('names the HTCondor it uses: the staged tarball by file name and sha256, the machine file\'s version only when it downloads', async () => {
    const staged = runBash(await backend({...benignAp, stagedTarballSha256: digest, stagedTarballName: 'condor-mine.tar.gz'}, {condorTarball: {path: tarball, sha256: digest}}, 'staged'), [], env(), work)
    expect(staged.status).toBe(0)
    const htcondorStep = (stdout: string) => /\rStep 4 of 9: ([^\n]*)\n/.exec(stdout)?.[1]
    expect(htcondorStep(staged.stdout)).toBe(`using the staged HTCondor tarball condor-mine.tar.gz (sha256 ${digest.slice(0, 12)})`)
    expect(staged.stdout).not.toContain(plan().htcondor.version)

    const node = downloadingNode('ID=almalinux\nVERSION_ID="9.4"\n')
    const downloaded = runBash(await backend(benignAp, {}, 'downloaded', pinned(digest)), [], node, work)
    expect(downloaded.status).toBe(0)
    expect(htcondorStep(downloaded.stdout)).toBe(`finding HTCondor ${plan().htcondor.version}`)
  })

  it('names the OS when the machine file has no build for it', async () => {
    const osRelease = join(work, 'os-release')
    writeFileSync(osRelease, 'ID=debian\nVERSION_ID="12"\n')
    const result = runBash(await backend(benignAp), [], env({HPC_ANNEX_OS_RELEASE: osRelease}), work)
    expect(result.status).toBe(BACKEND_EXIT.unsupportedOs)
    expect(result.stderr).toContain('(Debian12)')
    expect(result.stderr).toContain('--condor-tarball')
  })

  it('stops with its own code when the bundle lacks a file', async () => {
    const dir = await unpack(renderFiles(plan(), benignAp).filter((f) => f.path !== 'pilot.conf'), secrets)
    const result = runBash(join(dir, 'backend.sh'), [], env(), work)
    expect(result.status).toBe(BACKEND_EXIT.bundle)
    expect(calls('squeue')).toEqual([])
  })
})

describe('the HTCondor-batch back-end (PATh Facility)', {timeout: 60_000}, () => {
  it('submits one pilot job carrying everything, and its pilot builds a working directory in the job sandbox', async () => {
    const plan = planFor({target: 'cpu@path-facility', cpus: '4', memMb: '8192'})
    const ap = {...benignAp, stagedTarballSha256: digest}
    const bundle = await unpack(renderFiles(plan, ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
    const result = runBash(join(bundle, 'backend.sh'), [], env(), work)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const control = controlLines(result.stdout)
    expect(control.JOB_ID).toBe('77')
    expect(result.stdout).toContain(`\rStep 4 of 7: using the staged HTCondor tarball (sha256 ${digest.slice(0, 12)})\n`)
    const pilotDir = control.PILOT_DIR!
    expect(pilotDir.startsWith(join(home, '.hpc-annex', 'scratch', 'pilot.'))).toBe(true)
    expect(calls('condor_q')[0]).toEqual([expect.any(String), loginUser, '-constraint', `hpc_annex_request_id == "${benignAp.requestId}"`, '-af', 'ClusterId', 'Iwd'])
    expect(calls('condor_submit')).toEqual([[pilotDir, 'pilot.sub']])
    expect(readFileSync(join(pilotDir, 'job_id'), 'utf8')).toBe('77\n')

    // Run the job: its sandbox gets the transferred inputs, and the pilot takes it from there.
    const sandbox = join(work, 'execute', 'dir_1234')
    mkdirSync(join(sandbox), {recursive: true})
    for (const input of ['pilot.sh', 'condor.tar.gz', 'pilot.conf', 'token', 'password']) copyFileSync(join(pilotDir, input), join(sandbox, input))
    mkdirSync(join(sandbox, 'sif'))
    const job = runBash(join(sandbox, 'pilot.sh'), ['sandbox'], env(), sandbox)
    expect(job.stderr).toBe('')
    expect(job.status).toBe(0)
    const hosts = readdirSync(join(sandbox, 'hosts'))
    expect(hosts).toHaveLength(1)
    const ran = readFileSync(join(sandbox, 'hosts', hosts[0]!, 'log', 'master-ran'), 'utf8')
    expect(ran).toContain(`CONDOR_CONFIG=${sandbox}/condor_config\n`)
    // Its job sandboxes are in its own, on the execute node's disk.
    expect(ran).toContain(`_CONDOR_EXECUTE=${sandbox}/hosts/${hosts[0]}/execute\n`)
    expect(ran).toContain('_CONDOR_hpc_annex_execute_on="node-local"\n')
    expect(readFileSync(join(sandbox, 'condor_config'), 'utf8')).toContain('NUM_CPUS = 4\nMEMORY = 8192\n')
  })

  it('through the bootstrap, receives the tarball sent before it submits (the pilot job takes it along)', async () => {
    const ap = {...benignAp, stagedTarballSha256: digest}
    const padded = await paddedBundle(renderFiles(planFor({target: 'cpu@path-facility', cpus: '4', memMb: '8192'}), ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
    const child = spawn('bash', ['-c', bootstrapCommand([], {ackTimeout: 60})], {env: env(), cwd: work, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
      if (/^=-\.-= JOB_ID \d+$/m.test(stdout) && !child.stdin.writableEnded) child.stdin.end(`${JOB_ID_RECORDED}\n`)
    })
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    child.stdin.write(padded)
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const pilotDir = controlLines(stdout).PILOT_DIR!
    expect(calls('condor_submit')).toEqual([[pilotDir, 'pilot.sub']])
    expect(sha256(join(pilotDir, 'condor.tar.gz'))).toBe(digest)
  })

  it('when its connection drops during condor_submit, removes by id only the user\'s own jobs of this request', async () => {
    const plan = planFor({target: 'cpu@path-facility', cpus: '4', memMb: '8192'})
    const ap = {...benignAp, stagedTarballSha256: digest}
    const bundle = await unpack(renderFiles(plan, ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
    // The schedd answers only once the job is submitted (the earlier-submission check finds nothing).
    recordingTool('condor_q', `[ -f '${stubs}/submitted' ] && [ ! -f '${stubs}/removed' ] && printf '77 0\\n77 1\\n'\nexit 0\n`)
    // As sshd does when the connection drops: SIGHUP to the session's process group.
    recordingTool('condor_submit', `touch '${stubs}/submitted'\nkill -HUP 0\n`)
    recordingTool('condor_rm', `touch '${stubs}/removed'\n`)
    const child = spawn('bash', [join(bundle, 'backend.sh')], {env: env(), cwd: work, detached: true, stdio: 'ignore'})
    expect(await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))).toBe(129)
    const constraint = `hpc_annex_request_id == "${benignAp.requestId}"`
    expect(calls('condor_q').map((c) => c.slice(1))).toEqual([
      [loginUser, '-constraint', constraint, '-af', 'ClusterId', 'Iwd'],
      [loginUser, '-constraint', constraint, '-af', 'ClusterId', 'ProcId'],
      // Gone: the pilot directory may go.
      [loginUser, '-constraint', constraint, '-af', 'ClusterId'],
    ])
    expect(calls('condor_rm').map((c) => c.slice(1))).toEqual([['77.0', '77.1']])
    expect(readdirSync(join(home, '.hpc-annex', 'scratch')).filter((n) => n.startsWith('pilot.'))).toEqual([])
  })

  // The bootstrap picks openssl's sha256 when it hashes as sha256sum does (HPC_ANNEX_OPENSSL_SHA256=1); run by hand, sha256sum.
  // openssl here is a stand-in printing as openssl does ("HEX *stdin"), so the test needs no openssl.
  it.each([['sha256sum', '0'], ['openssl', '1']])('never sends a damaged cached tarball to the pool: it is dropped and the staged one taken (hashed by %s)', async (tool, flag) => {
    const plan = planFor({target: 'cpu@path-facility', cpus: '4', memMb: '8192'})
    const ap = {...benignAp, stagedTarballSha256: digest}
    const inputs = {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}}
    const tools = join(work, `tools-${tool}`)
    mkdirSync(tools)
    const uses = join(work, `uses-${tool}`)
    writeFileSync(join(tools, 'openssl'), `#!/bin/sh\n[ "$*" = 'dgst -sha256 -r' ] || exit 2\necho >> '${uses}'\necho "$(sha256sum | cut -c1-64) *stdin"\n`, {mode: 0o755})
    const hashing = () => ({...env(), PATH: `${tools}:${env().PATH}`, HPC_ANNEX_OPENSSL_SHA256: flag})
    expect(runBash(join(await unpack(renderFiles(plan, ap), inputs, 'first'), 'backend.sh'), [], hashing(), work).status).toBe(0)
    const cached = join(home, '.hpc-annex', 'cache', digest)
    writeFileSync(cached, 'damaged')
    const again = runBash(join(await unpack(renderFiles(plan, ap), inputs, 'second'), 'backend.sh'), [], hashing(), work)
    expect(existsSync(uses)).toBe(tool === 'openssl')
    expect(again.status).toBe(0)
    expect(again.stdout).toContain(`Dropping a damaged cached object (${digest}).`)
    expect(sha256(join(controlLines(again.stdout).PILOT_DIR!, 'condor.tar.gz'))).toBe(digest)
    expect(sha256(cached)).toBe(digest)
  })
})

describe('the machine file\'s fragments', {timeout: 60_000}, () => {
  const inputs = () => ({token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
  const withoutScratch = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const {SCRATCH: _unset, ...rest} = env(extra)
    return rest
  }

  it('Delta: `module reset` runs before the pilot directory is made, so the pilot, the release and the images go to the $SCRATCH it defines', async () => {
    const plan = planFor({target: 'cpu@delta', project: 'bbka-delta-cpu', cpus: '4'})
    const sif = join(work, 'image.sif')
    writeFileSync(sif, 'image')
    const ap = {...benignAp, stagedTarballSha256: digest, images: [{name: 'image.sif', sha256: sha256(sif)}]}
    const bundle = await unpack(renderFiles(plan, ap), {...inputs(), sifs: [{sha256: sha256(sif), path: sif}]})
    // Lmod's `module` is a bash function exported in the environment; on Delta, `module reset`
    // with SLURM_JOB_ACCOUNT set is what defines $SCRATCH.
    const projects = join(work, 'work-hdd')
    const module = `() { if [ "$1" = reset ] && [ -n "$SLURM_JOB_ACCOUNT" ]; then export SCRATCH=${projects}/$SLURM_JOB_ACCOUNT; fi; }`
    const result = runBash(join(bundle, 'backend.sh'), [], withoutScratch({'BASH_FUNC_module%%': module}), work)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const pilotDir = controlLines(result.stdout).PILOT_DIR!
    expect(pilotDir.startsWith(`${projects}/bbka-delta-cpu/pilot.`)).toBe(true)
    expect(existsSync(join(pilotDir, 'condor', 'sbin', 'condor_master'))).toBe(true)
    expect(readFileSync(join(pilotDir, 'sif', 'image.sif'), 'utf8')).toBe('image')
    expect(existsSync(join(home, 'hpc-annex'))).toBe(false)
    // And the pilots wait longer for file-transfer plugins, which start slowly there.
    expect(readFileSync(join(pilotDir, 'pilot.conf'), 'utf8')).toMatch(/^FILETRANSFER_PLUGIN_CLASSAD_TIMEOUT = 60$/m)
  })

  it.each([['wholenode@anvil', '9'], ['cpu@path-facility', '7']])('%s: the shell fragment runs first, in the back-end\'s shell; the pilot-directory fragment once the directory is filled', async (target, steps) => {
    const base = planFor({target, ...(target.startsWith('cpu@') ? {cpus: '1'} : {})})
    const place = join(work, 'from-fragment')
    const plan: Plan = {
      ...base,
      scratch: '${FRAGMENT_SCRATCH:?the shell fragment has not run}/scratch',
      shellFragment: `echo "shell fragment: PILOT_DIR=[$PILOT_DIR]"\nFRAGMENT_SCRATCH=${place}\n`,
      pilotDirFragment: 'echo "pilot-directory fragment: $(ls "$PILOT_DIR" | tr "\\n" " ")"\n',
    }
    const bundle = await unpack(renderFiles(plan, {...benignAp, stagedTarballSha256: digest}), inputs())
    const result = runBash(join(bundle, 'backend.sh'), [], withoutScratch(), work)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(controlLines(result.stdout).PILOT_DIR!.startsWith(`${place}/scratch/pilot.`)).toBe(true)
    const lines = result.stdout.split(/[\r\n]/).filter((l) => l !== '')
    expect(lines.slice(1, 3)).toEqual([`Step 1 of ${steps}: running the machine-specific shell set-up`, 'shell fragment: PILOT_DIR=[]'])
    const setUp = lines.find((l) => l.startsWith('pilot-directory fragment: '))!
    // (On a first create the SLURM back-end's release may still be unpacking into condor/.)
    expect(setUp).toContain(target.startsWith('cpu@') ? 'condor.tar.gz' : 'batch.slurm')
    expect(setUp).toContain('pilot.conf')
  })

  it('every built-in system: the back-end evaluates the scratch expression after the shell fragment, and no shell fragment needs the pilot directory', () => {
    const catalog = loadCatalog([projectPath('backends')])
    for (const [key, machine] of catalog.systems) {
      const queue = machine.queues[machine.default_queue]!
      const plan = planFor({target: `${machine.default_queue}@${key}`, project: 'abc123', ...(queue.allocation === 'node' ? {} : {cpus: String(queue.cpus_multiple_of ?? 1)})})
      const backend = renderFiles(plan, benignAp).find((f) => f.path === 'backend.sh')!.content
      const fragmentRuns = backend.indexOf('\nmachine_shell || fail')
      const scratch = backend.indexOf(`"${plan.scratch}"`)
      expect(fragmentRuns, key).toBeGreaterThan(0)
      expect(scratch, key).toBeGreaterThan(fragmentRuns)
      expect(backend.indexOf('\nmachine_setup || fail'), key).toBeGreaterThan(backend.indexOf('\nmake_pilot_dir '))
      expect(plan.shellFragment, key).not.toContain('PILOT_DIR')
    }
  })
})

describe('the back-end\'s check of the annex collector from the login node', {timeout: 60_000}, () => {
  const warnings = (stdout: string) => stdout.split(/[\r\n]/).filter((l) => l.startsWith('=-.-= WARNING ')).map((l) => l.slice('=-.-= WARNING '.length))

  async function run(collector: string, target = 'wholenode@anvil', name = 'bundle') {
    const plan = planFor({target, cpus: target.startsWith('cpu@') ? '1' : undefined})
    const ap = {...benignAp, collector, stagedTarballSha256: digest}
    const bundle = await unpack(renderFiles(plan, ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}}, name)
    return runBash(join(bundle, 'backend.sh'), [], env(), work)
  }

  it('says nothing of a collector that resolves and accepts a connection; warns, and submits all the same, when it does not', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const {port} = server.address() as AddressInfo
    const gone = createServer()
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve))
    const {port: closed} = gone.address() as AddressInfo
    await new Promise((resolve) => gone.close(resolve))
    try {
      for (const [i, collector] of [`127.0.0.1:${port}?sock=ap_collector`, `<127.0.0.1:${port}?addrs=127.0.0.1-${port}&alias=ap.example.org&sock=ap_collector>`, `localhost:${port}`].entries()) {
        const ok = await run(collector, 'wholenode@anvil', `ok${i}`)
        expect(ok.status, ok.stderr).toBe(0)
        expect(warnings(ok.stdout), collector).toEqual([])
      }

      const unresolvable = await run('no-such-host.invalid:9618?sock=ap_collector', 'wholenode@anvil', 'unresolvable')
      expect(unresolvable.status).toBe(0)
      expect(controlLines(unresolvable.stdout).JOB_ID).toBe('4242')
      expect(warnings(unresolvable.stdout)).toEqual([
        'the annex collector no-such-host.invalid:9618 does not resolve on the login node; pilots may not be able to join (see hpc-annex admin check)',
      ])

      const refused = await run(`<127.0.0.1:${closed}?sock=ap_collector>`, 'cpu@path-facility', 'refused')
      expect(refused.status).toBe(0)
      expect(controlLines(refused.stdout).JOB_ID).toBe('77')
      expect(warnings(refused.stdout)).toEqual([
        `the annex collector 127.0.0.1:${closed} does not accept connections from the login node; pilots may not be able to join (see hpc-annex admin check)`,
      ])
    } finally {
      server.close()
    }
  })

  it('quotes the collector\'s host as data', async () => {
    const mark = join(work, 'INJECTED')
    const result = await run(`$(touch ${mark}):9618`, 'wholenode@anvil', 'hostile')
    expect(result.status).toBe(0)
    expect(existsSync(mark)).toBe(false)
    expect(warnings(result.stdout)[0]).toMatch(/^cannot tell the annex collector's host and port from /)
  })
})

describe('the SSH fan-out launcher', {timeout: 60_000}, () => {
  it('starts the pilot on every node of the job over SSH and waits for all', async () => {
    const plan = {...planFor({target: 'wholenode@anvil', nodes: '2'}), fanOut: 'ssh' as const}
    const ap = {...benignAp, stagedTarballSha256: digest}
    const bundle = await unpack(renderFiles(plan, ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
    const result = runBash(join(bundle, 'backend.sh'), [], env(), work)
    expect(result.status).toBe(0)
    const pilotDir = controlLines(result.stdout).PILOT_DIR!
    const job = runBash(join(pilotDir, 'batch.slurm'), [], env({SLURM_SUBMIT_DIR: pilotDir, SLURM_JOB_ID: '4242', SLURM_JOB_NODELIST: 'node[1-2]'}), pilotDir)
    expect(job.status).toBe(0)
    expect(job.stdout).toContain('all 2 pilots finished')
    expect(calls('scontrol')[0]).toEqual([expect.any(String), 'show', 'hostname', 'node[1-2]'])
    const hosts = calls('ssh').map((c) => c[c.length - 2])
    // The whole record, should this fail again: it has, rarely, under load.
    expect(hosts.sort(), readFileSync(join(stubs, 'ssh.calls'), 'utf8')).toEqual(['node1', 'node2'])
    expect(calls('srun')).toEqual([])
    expect(existsSync(pilotDir)).toBe(false)
    for (const node of ['node1', 'node2']) expect(readFileSync(join(`${pilotDir}.logs`, node, 'master-ran'), 'utf8')).toContain(`_CONDOR_LOCAL_DIR=${pilotDir}/hosts/${node}\n`)
  })
})

describe('the back-end keeps its batch job only once the Access Point confirms it recorded the id', {timeout: 60_000}, () => {
  type Answer = 'confirm' | 'end of input' | 'silence' | 'hang-up'

  /** Runs the bootstrap as the login node does, the padded bundle on stdin; once the job id is printed, answers as told. */
  async function session(answer: Answer): Promise<{code: number | null; stdout: string; stderr: string}> {
    recordingTool('scancel')
    const ap = {...benignAp, stagedTarballSha256: digest}
    const padded = await paddedBundle(renderFiles(planFor({target: 'wholenode@anvil', nodes: '2'}), ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
    const command = bootstrapCommand([], {ackTimeout: answer === 'silence' ? 1 : 60})
    const child = spawn('bash', ['-c', command], {env: env(), cwd: work, detached: true, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    let answered = false
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
      if (answered || !/^=-\.-= JOB_ID \d+$/m.test(stdout)) return
      answered = true
      if (answer === 'confirm') child.stdin.end(`${JOB_ID_RECORDED}\n`)
      else if (answer === 'end of input') child.stdin.end()
      // As sshd does when the connection drops: SIGHUP to the session's process group.
      else if (answer === 'hang-up') process.kill(-child.pid!, 'SIGHUP')
    })
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    child.stdin.on('error', () => undefined)
    child.stdin.write(padded)
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    if (!child.stdin.writableEnded) child.stdin.end()
    return {code, stdout, stderr}
  }

  it('confirmed: exits 0 and leaves the job and its pilot directory to each other', async () => {
    const result = await session('confirm')
    expect(result.code).toBe(0)
    expect(controlLines(result.stdout).JOB_ID).toBe('4242')
    expect(controlLines(result.stdout).WITHDRAWN).toBeUndefined()
    expect(calls('scancel')).toEqual([])
    expect(pilotDirs()).toHaveLength(1)
  })

  for (const answer of ['end of input', 'silence', 'hang-up'] as const) {
    it(`no confirmation (${answer}): cancels the job it submitted and removes the pilot directory, secrets and all`, async () => {
      const result = await session(answer)
      expect(result.code).toBe(answer === 'hang-up' ? 129 : BACKEND_EXIT.unconfirmed)
      if (answer !== 'hang-up') expect(result.stderr).toContain('did not confirm recording batch job 4242')
      expect(controlLines(result.stdout).JOB_ID).toBe('4242')
      // Said on the session when someone may still read it: then hpc-annex leaves the job alone.
      expect(controlLines(result.stdout).WITHDRAWN).toBe(answer === 'hang-up' ? undefined : '')
      expect(calls('scancel').map((c) => c.slice(1))).toEqual([[`--user=${loginUser}`, `--name=${batchJobName(planFor({target: 'wholenode@anvil', nodes: '2'}).annexName, benignAp.requestId)}`]])
      expect(pilotDirs()).toEqual([])
    })
  }
})

describe('the SLURM back-end submits while the images and tarball sent still arrive', {timeout: 60_000}, () => {
  /**
   * Runs the bootstrap with the padded bundle on stdin, sending first only the
   * scripts (up to the record where the back-end's own tar takes over), the
   * rest only once sbatch has run: all of it ('whole', then the Access
   * Point's confirmation), or the tarball's first bytes and the end of input ('cut').
   */
  async function arriving(rest: 'whole' | 'cut'): Promise<{code: number | null; stdout: string; stderr: string; submittedFirst: boolean}> {
    // As a batch job that had started does while it stops: its output beside the pilot directory.
    recordingTool('scancel', 'mkdir -p -- "$PILOT_DIR.logs" && echo stopped > "$PILOT_DIR.logs/slurm-4242.out"\n')
    const ap = {...benignAp, stagedTarballSha256: digest}
    const padded = await paddedBundle(renderFiles(planFor({target: 'wholenode@anvil'}), ap), {token: Buffer.from('t'), password: Buffer.from('p'), condorTarball: {path: tarball, sha256: digest}})
    // The scripts' entry, then the filler's header: the filler ends on the next whole record.
    const scripts = 512 + Math.ceil(Number.parseInt(padded.subarray(124, 136).toString('ascii').trim(), 8) / 512) * 512 + 512
    const head = Math.ceil(scripts / TAR_RECORD_BYTES) * TAR_RECORD_BYTES
    expect(padded.subarray(scripts - 512, scripts - 412).toString('ascii')).toMatch(/^files\.filler\0/)
    expect(padded.subarray(head, head + 100).toString('ascii')).toMatch(/^condor\/\0/)
    const child = spawn('bash', ['-c', bootstrapCommand([], {ackTimeout: 60})], {env: env(), cwd: work, detached: true, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    child.stdin.on('error', () => undefined)
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    child.stdin.write(padded.subarray(0, head))
    const submitted = () => existsSync(join(stubs, 'sbatch.calls')) && readFileSync(join(stubs, 'sbatch.calls'), 'utf8').includes('--parsable')
    const until = Date.now() + 20_000
    while (!submitted() && Date.now() < until) await sleep(20)
    const submittedFirst = submitted()
    // Cut: the condor/ directory's header, the tarball's header, and its first bytes.
    if (rest === 'cut') child.stdin.end(padded.subarray(head, head + 1024 + 100))
    else {
      child.stdin.write(padded.subarray(head))
      const told = Date.now() + 20_000
      while (!/^=-\.-= JOB_ID \d+$/m.test(stdout) && Date.now() < told) await sleep(20)
      child.stdin.end(`${JOB_ID_RECORDED}\n`)
    }
    return {code: await exited, stdout, stderr, submittedFirst}
  }

  it('the job is submitted before the tarball has arrived; the release is whole in the pilot directory once the back-end ends', async () => {
    const result = await arriving('whole')
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.submittedFirst).toBe(true)
    expect(result.stdout).toContain('\rStep 5 of 9: receiving and unpacking HTCondor (the batch job will wait for it)\n')
    expect(controlLines(result.stdout).JOB_ID).toBe('4242')
    const pilotDir = controlLines(result.stdout).PILOT_DIR!
    expect(statSync(join(pilotDir, 'condor', 'sbin', 'condor_master')).mode & 0o100).toBe(0o100)
    // The pilots stop waiting on the back-end's word once the directory is complete.
    expect(existsSync(join(pilotDir, '.arriving'))).toBe(false)
    expect(readdirSync(join(home, '.hpc-annex', 'cache')).sort()).toEqual(['.uses', digest, `${digest}.release`])
    expect(calls('scancel')).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  })

  it('an upload cut off after the submission: the back-end cancels the job, says so, and leaves nothing', async () => {
    const result = await arriving('cut')
    expect(result.submittedFirst).toBe(true)
    expect(result.code, result.stderr).toBe(BACKEND_EXIT.bundle)
    expect(result.stderr).toContain('the images and HTCondor tarball sent did not arrive whole')
    expect(controlLines(result.stdout).JOB_ID).toBe('4242')
    expect(controlLines(result.stdout).WITHDRAWN).toBe('')
    expect(calls('scancel').map((c) => c.slice(1))).toEqual([[`--user=${loginUser}`, `--name=${batchJobName(planFor({target: 'wholenode@anvil'}).annexName, benignAp.requestId)}`]])
    expect(pilotDirs()).toEqual([])
    // Nor the withdrawn job's output: no state job is left to find it by.
    expect(readdirSync(scratch).filter((n) => n.endsWith('.logs'))).toEqual([])
    // No cache temporary, no half-received tarball, no staging directory.
    expect(readdirSync(join(home, '.hpc-annex', 'cache')).filter((n) => n !== '.uses')).toEqual([])
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  })
})
