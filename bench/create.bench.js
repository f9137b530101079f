// `hpc-annex create` against the loopback site (test/site/up.sh) over
// emulated links (lan, campus, wan), side by side with HTCondor's own
// `htcondor annex create` from the same release (bench/anchor.js), on the same
// real Access Point (bench/access-point.js: a personal pool from the HTCondor
// release, on the measured side of the link), against the same login node and
// the same nodes, whose real pilots (from the same release tarball) join that
// Access Point; plus the CLI's cold start.
// Runs as root: it brings the site up and shapes its link itself.
//
// Figures (each the median of N runs after a warm-up, with min and max):
//   1. create, no images, N nodes: from the start of the command to the
//      batch job id in the state job (the moment the schedd logs it), first
//      (hpc-annex sends the tarball; its cache on the login node is empty) and
//      repeated (cached), vs the anchor (which downloads it every time); from
//      the start to all N pilots advertised in the annex collector; round
//      trips (ssh sessions after the login, counted in the site's sshd log)
//   2. create with a 1 GiB image, first time: upload rate vs
//      `cat file | ssh host 'cat > FILE'` (and, beside it, `'cat > /dev/null'`),
//      both transports; peak RSS
//   3. the same image a second time: bytes sent and time to the batch job id
//      vs the anchor, which sends the image every time
//   4. `hpc-annex --help` and `systems` cold start
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'

import {digestCacheFile} from '../dist/backend/digest.js'

import {apEnv, apTool, asUser, findRelease, giveToUser, startBenchAccessPoint, untilPilotsAdvertised, userSshConfig, watchJobQueue} from './access-point.js'
import {ANCHOR_TARGET, anchorCommand, closeAnchorMaster, prepareAnchorHome} from './anchor.js'
import {MiB, fmtBytes, fmtMs, fmtRate, readRate, sleep, stats, timed} from './lib.js'
import {prepareLoginNode, startDownloadMirror} from './login-node.js'

export const name = 'create'

const here = dirname(fileURLToPath(import.meta.url))
const ROOT = join(here, '..')
const CLI = join(ROOT, 'bin', 'run.js')
// BENCH_CLI: another entry point for create (one that takes the same arguments and prints the same --json).
const BIN = process.env.BENCH_CLI ?? CLI
const SITE_TOOLS = join(ROOT, 'test', 'site')
const SITE_DIR = process.env.SITE_DIR ?? '/tmp/hpc-annex-site'
const MACHINES = join(SITE_TOOLS, 'machines')
/** Nodes per create, for both tools (the site has three). */
const NODES = Number(process.env.BENCH_NODES ?? 2)
/** Seconds: the annexes' lifetime (both tools; the benchmark cancels them as soon as it has its figures). */
const LIFETIME = 1800

/** How many runs of what, per profile. 1 GiB transfers at 100 Mbit/s take ~90 s each, so fewer of them on wan. */
function plan(quick) {
  if (quick) return {imageBytes: 64 * MiB, runs: 2, bigRuns: {lan: 1}, abRuns: 1, secondRuns: 2, anchorBigRuns: {lan: 1}, coldRuns: 3}
  return {
    imageBytes: 1024 * MiB,
    runs: 5,
    // Odd: the median of an even count is its lower middle run, and one slow upload of two set the lan figure.
    bigRuns: {lan: 3, campus: 3, wan: 1},
    /** Uploads per transport with the login node hashing by sha256sum (the A/B of its hashing). */
    abRuns: 1,
    secondRuns: 3,
    anchorBigRuns: {lan: 2, campus: 2, wan: 1},
    coldRuns: 10,
  }
}

function run1(command, args, options = {}) {
  const r = spawnSync(command, args, {encoding: 'utf8', ...options})
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout || '').slice(-1500)}`)
  return r.stdout
}

async function sha256File(path) {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

function quote(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`
}

// ---------------------------------------------------------------- the site

function siteInfo() {
  return JSON.parse(readFileSync(join(SITE_DIR, 'site.json'), 'utf8'))
}

const NET = join(here, 'net.sh')
const NS = process.env.BENCH_NS ?? 'annexbench-ws'
const SITE_FROM_NS = process.env.BENCH_ROOT_IP ?? '10.79.0.1'
const WS_IP = process.env.BENCH_WS_IP ?? '10.79.0.2'
const VETH_ROOT = process.env.BENCH_VETH_ROOT ?? 'annexbench0'

/** Bytes the site's side of the link has received from the benchmark's namespace (the kernel's count, for either tool). */
function wireBytes() {
  return Number(readFileSync(`/sys/class/net/${VETH_ROOT}/statistics/rx_bytes`, 'utf8'))
}

/**
 * Brings the site up (test/site/up.sh, on loopback), registers this run as a
 * user of it, and puts a shapeable link in front of it (bench/net.sh): the
 * measured commands run in their own network namespace, so the site's other
 * users are not slowed down.
 */
function siteUp(work, log) {
  if (!existsSync(join(SITE_TOOLS, 'up.sh'))) throw new Error('test/site/up.sh is not in this tree (merge main); the create benchmark needs the loopback site')
  if (process.getuid?.() !== 0) throw new Error('the create benchmark brings up the loopback site and shapes a link to it: run it as root')
  run1('bash', [join(SITE_TOOLS, 'install.sh')], {stdio: ['ignore', 'pipe', 'pipe']})
  log('bringing the site up (test/site/up.sh) and the shaped link (bench/net.sh up)')
  const wasUp = existsSync(join(SITE_DIR, 'site.json'))
  run1('bash', [join(SITE_TOOLS, 'up.sh')], {stdio: ['ignore', 'pipe', 'pipe']})
  const users = join(SITE_TOOLS, 'users.sh')
  run1('bash', [users, 'add', String(process.pid), 'bench/create.bench.js'], {stdio: ['ignore', 'pipe', 'pipe']})
  run1('bash', [NET, 'up'], {stdio: ['ignore', 'pipe', 'pipe']})
  const info = siteInfo()
  // The workstation namespace reaches the site's 127.0.0.1 through the veth.
  const knownHosts = join(work, 'known_hosts')
  writeFileSync(knownHosts, readFileSync(info.knownHosts, 'utf8').replaceAll(`[${info.host}]`, `[${SITE_FROM_NS}]`))
  const sshConfig = join(work, 'ssh_config')
  writeFileSync(sshConfig, readFileSync(info.sshConfig, 'utf8')
    .replace(/^(\s*HostName\s+).*$/gm, `$1${SITE_FROM_NS}`)
    .replace(/^(\s*UserKnownHostsFile\s+).*$/gm, `$1${knownHosts}`))
  return {
    info,
    sshConfig,
    knownHosts,
    release: () => {
      spawnSync('bash', [NET, 'down'], {stdio: 'ignore'})
      spawnSync('bash', [users, 'remove', String(process.pid)], {stdio: 'ignore'})
      // As found: a site this run brought up goes down again, unless another run uses it now (it takes it down then).
      const others = spawnSync('bash', [users, 'live'], {encoding: 'utf8'}).stdout.trim()
      if (!wasUp && others === '' && process.env.SITE_KEEP !== '1') {
        log('taking the site down again (test/site/down.sh)')
        spawnSync('bash', [join(SITE_TOOLS, 'down.sh')], {stdio: 'ignore'})
      }
    },
  }
}

function shape(profile) {
  run1('bash', [NET, 'shape', profile], {stdio: ['ignore', 'pipe', 'pipe']})
}

/** A command as run on the shaped link, from the workstation namespace (as root). */
function inNs(command, args) {
  return ['nsenter', [`--net=/run/netns/${NS}`, command, ...args]]
}

/** The harness's own connection (not measured, not shaped): cleans up between runs. */
function openHarnessMaster(info) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ctl-'))
  const base = ['-F', info.sshConfig, '-o', `ControlPath=${join(dir, 'm')}`, '-o', 'BatchMode=yes']
  run1('ssh', [...base, '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-f', '-N', 'hpc'])
  return {
    remote: (command) => run1('ssh', [...base, '-o', 'ControlMaster=no', 'hpc', command]),
    close: () => {
      spawnSync('ssh', [...base, '-O', 'exit', 'hpc'], {stdio: 'ignore'})
      rmSync(dir, {recursive: true, force: true})
    },
  }
}

/**
 * Sessions (one per exec channel) and logins that the site's key-login sshd
 * logged for connections from the benchmark's namespace since `offset`: what
 * either tool ran on the login node, counted the same way for both.
 */
function sshdLog(info) {
  const file = info.sshdLog.key
  const from = ` from ${WS_IP} port `
  return {
    offset: () => statSync(file).size,
    since(offset) {
      const text = readFileSync(file, 'utf8').slice(offset)
      const lines = text.split('\n').filter((l) => l.includes(from))
      return {
        sessions: lines.filter((l) => l.startsWith('Starting session:')).length,
        logins: lines.filter((l) => /^Accepted \S+ for /.test(l)).length,
      }
    },
  }
}

// ------------------------------------------------------------ what is run

/**
 * Everything a run needs: the site, the Access Point and its user, the two
 * tools' homes and environments, the watchers.
 */
function makeContext({site, bench, loginNode, release, work}) {
  const {ap, home: apHome} = bench
  // HTCondor's tool reads ~/.ssh/config through the passwd entry; hpc-annex is given the same file.
  const sshConfig = userSshConfig(ap, join(apHome, '.ssh'), {sshConfig: site.sshConfig, knownHosts: site.knownHosts, keyFile: site.info.keyFile})
  prepareAnchorHome(ap, apHome)
  // Short: OpenSSH's control socket lives under it, and a socket path has at most 107 bytes.
  const cliHome = giveToUser(ap, mkdtempSync('/tmp/bh-'))
  chmodSync(cliHome, 0o700)
  return {
    site,
    ap,
    apHome,
    collector: bench.collector,
    loginNode,
    work,
    tarball: {path: release.tarball, bytes: statSync(release.tarball).size, sha256: release.sha256},
    sshConfig,
    cliHome,
    cliEnv: apEnv(ap, {HOME: cliHome, HPC_ANNEX_MACHINES: MACHINES, HPC_ANNEX_SSH_CONFIG: sshConfig}),
    jobQueue: watchJobQueue(ap),
    sshd: sshdLog(site.info),
    counter: 0,
  }
}

/** A container job for the annex NAME that needs IMAGE (so that create stages it), submitted as the user would. */
async function submitImageJob(ctx, annex, image) {
  const file = join(dirname(image.path), `job-${annex}.sub`)
  writeFileSync(
    file,
    [
      'universe = container',
      `container_image = ${image.path}`,
      // HTCondor's tool stages an image only when the job says TransferContainer (condor_submit 25 leaves it undefined).
      'transfer_container = true',
      'executable = /bin/true',
      'should_transfer_files = YES',
      'request_cpus = 1',
      'request_memory = 64',
      `MY.TargetAnnexName = "${annex}"`,
      'queue',
      '',
    ].join('\n'),
  )
  giveToUser(ctx.ap, file)
  const r = await apTool(ctx.ap, 'condor_submit', ['-terse', file], {cwd: dirname(image.path)})
  rmSync(file, {force: true})
  if (r.code !== 0) throw new Error(`condor_submit of the image job failed (${r.code}): ${r.stderr}${r.stdout}`)
  return r.stdout.trim().split(/\s+/)[0].split('.')[0]
}

/** After a run (not timed): the batch job cancelled and gone (its nodes free again), its directories removed, the jobs removed. */
async function finishRun(ctx, {batchJobId, pilotDir, clusters}) {
  const parts = []
  if (batchJobId) {
    const id = quote(batchJobId)
    parts.push(`scancel ${id} 2>/dev/null`)
    parts.push(`for _ in $(seq 300); do case "$(squeue -h -j ${id} -o %T 2>/dev/null)" in PENDING|RUNNING|COMPLETING|CONFIGURING|SUSPENDED) sleep 0.2 ;; *) break ;; esac; done`)
  }
  if (pilotDir && pilotDir.startsWith('/')) parts.push(`rm -rf -- ${quote(pilotDir)} ${quote(`${pilotDir}.logs`)}`)
  if (parts.length) ctx.harness.remote(`${parts.join('; ')}; true`)
  const ids = clusters.filter(Boolean)
  if (ids.length) await apTool(ctx.ap, 'condor_rm', ids)
}

/** The current run's name in the files --trace, --cpu-prof and --pilot-logs keep: its number, two digits. */
function runName(ctx) {
  return String(ctx.counter).padStart(2, '0')
}

/**
 * --pilot-logs DIR: what the pilots of a run that waited for them logged, for
 * reading where the time from the batch job id to the advertised pilots went:
 * DIR/NN-<tool>/ holds the HTCondor logs of each node (copied while the job
 * runs: both tools remove the pilot directory when it ends), the site's SLURM
 * log lines that name the batch job, and timeline.json (epoch ms of the
 * command's start, the batch job id in the state job, all pilots advertised,
 * the command's end).
 */
function keepPilotLogs(ctx, tool, {r, jobIdMs, pilotsMs, batchJobId, pilotDir}) {
  if (!ctx.pilotLogsDir || pilotsMs === undefined || !pilotDir?.startsWith('/')) return
  const dir = join(ctx.pilotLogsDir, `${runName(ctx)}-${ctx.profile}-${tool}`)
  mkdirSync(dir, {recursive: true})
  const epoch = (ms) => Math.round(performance.timeOrigin + r.started + ms)
  writeFileSync(join(dir, 'timeline.json'), `${JSON.stringify({batchJobId, pilotDir, started: epoch(0), jobId: epoch(jobIdMs), pilots: epoch(pilotsMs), exit: epoch(r.ms)}, null, 2)}\n`)
  spawnSync('bash', ['-c', 'cd -- "$1" && find . -path "*/log/*" -type f -exec cp --parents -p -t "$2" {} +', 'keep', pilotDir, dir], {stdio: 'ignore'})
  // The site's SLURM numbers its jobs afresh each time it is brought up: only this run's lines name this job.
  const slurmLogs = join(ctx.site.info.dir, 'slurm', 'log')
  const id = String(batchJobId).replace(/\D/g, '')
  const naming = new RegExp(`(JobId=|job_id[ =:]|StepId=|job |jobid )${id}([^0-9]|$)`)
  const since = epoch(0) - 1000
  const lines = []
  for (const name of existsSync(slurmLogs) ? readdirSync(slurmLogs).filter((n) => n.endsWith('.log')) : []) {
    for (const line of readFileSync(join(slurmLogs, name), 'utf8').split('\n')) {
      const stamp = /^\[(\d{4}-\d\d-\d\dT[\d:.]+)\]/.exec(line)
      if (stamp && Date.parse(stamp[1]) >= since && naming.test(line)) lines.push(line)
    }
  }
  writeFileSync(join(dir, 'slurm.log'), lines.length ? `${lines.join('\n')}\n` : '')
}

/**
 * Empties hpc-annex's caches before a first create: the login node's (the
 * benchmark's own: see bench/login-node.js) and, on the Access Point, the
 * digests it remembers of local files (the tarball, the image), so that a
 * first create hashes them as a user's very first would.
 */
function clearCaches(ctx) {
  ctx.harness.remote(`rm -rf -- ${quote(ctx.loginNode.cacheDir)} && mkdir -p ${quote(ctx.loginNode.cacheDir)}`)
  rmSync(digestCacheFile(ctx.cliEnv), {force: true})
}

function parseJson(stdout) {
  return JSON.parse(stdout.slice(stdout.indexOf('{')))
}

/** When the batch job id landed in the state job, from the start of the command (ms). */
function toJobId(ctx, r, what) {
  const event = ctx.jobQueue.first('hpc_annex_JOB_ID', r.started)
  if (!event) throw new Error(`${what}: the schedd's job queue log shows no batch job id set in a state job`)
  return {ms: event.at - r.started, cluster: event.cluster, batchJobId: event.value}
}

async function pilotsAdvertised(ctx, annex, r, pilots) {
  if (!pilots) return undefined
  const at = await untilPilotsAdvertised(ctx.ap, ctx.collector, annex, NODES)
  return at === undefined ? undefined : at - r.started
}

/**
 * SLURM starts a batch job at its controller's next scheduling pass, about
 * once a second on the site (never at submit: the pilots' logs show 0-1 s
 * from submit to allocation, spread evenly). A run that starts as soon as the
 * previous run's job is gone submits at much the same point of that cycle
 * each time, so one tool's submits kept landing just before a pass and the
 * other's just after (the faster one's). An untimed pause of a random
 * fraction of that second before each create gives both tools the same spread.
 */
async function offCycle() {
  await sleep(Math.random() * 1000)
}

/** `download`: the login node downloads the tarball (hpc-annex's default, from the stand-in mirror) instead of being sent it (--condor-tarball). */
async function annexCreate(ctx, {transport = 'ssh2', image, watch = false, pilots = false, download = false} = {}) {
  const annex = `bench${process.pid}x${ctx.counter++}`
  const job = image ? await submitImageJob(ctx, annex, image) : undefined
  const tarball = download ? [] : ['--condor-tarball', ctx.tarball.path]
  const args = [BIN, 'create', annex, 'compute@sandbox', '--nodes', String(NODES), '--lifetime', String(LIFETIME), ...tarball, '--ssh', transport, '--json']
  const env = download ? {...ctx.cliEnv, _CONDOR_ANNEX_TARBALL_URL_BASE: ctx.mirror.base} : {...ctx.cliEnv}
  // --trace DIR / --cpu-prof DIR: where this run's time went, as NN-<how>.trace (HPC_ANNEX_TRACE) and NN.cpuprofile.
  const run = runName(ctx)
  if (ctx.traceDir) env.HPC_ANNEX_TRACE = join(ctx.traceDir, `${run}-${ctx.profile}-${transport}${download ? '-download' : ''}${image ? '-image' : ''}.trace`)
  if (ctx.cpuProfDir) args.unshift('--cpu-prof', `--cpu-prof-dir=${ctx.cpuProfDir}`, `--cpu-prof-name=${run}.cpuprofile`)
  await offCycle()
  const offset = ctx.sshd.offset()
  const wire = wireBytes()
  const r = await timed(...asUser(ctx.ap, process.execPath, args), {env, watch, cwd: ctx.cliHome})
  const sent = wireBytes() - wire
  let result
  try {
    if (r.code !== 0) throw new Error(`hpc-annex create failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(-1500)}`)
    result = parseJson(r.stdout)
    if (!result.batchJobId) throw new Error('hpc-annex create reported no batch job id')
    const jobId = toJobId(ctx, r, 'hpc-annex create')
    const pilotsMs = await pilotsAdvertised(ctx, annex, r, pilots)
    keepPilotLogs(ctx, 'hpc-annex', {r, jobIdMs: jobId.ms, pilotsMs, batchJobId: result.batchJobId, pilotDir: result.pilotDir})
    return {ms: jobId.ms, exitMs: r.ms, pilotsMs, ssh: ctx.sshd.since(offset), sent, result, peakRss: r.peakRss, reads: r.reads}
  } finally {
    await finishRun(ctx, {batchJobId: result?.batchJobId, pilotDir: result?.pilotDir, clusters: [result?.stateJobId?.split('.')[0], job]})
  }
}

/** HTCondor's tool gives up staging images that take longer than this (its own words, when it does). */
const ANCHOR_SIF_LIMIT = /Failed to transfer \.sif files in (\d+) seconds/

/** `imageLimitOk`: the tool giving up on the image transfer (ANCHOR_SIF_LIMIT) is a result ({limit}), not an error. */
async function anchorCreate(ctx, {image, pilots = false, imageLimitOk = false} = {}) {
  const annex = `anchor${process.pid}x${ctx.counter++}`
  const job = image ? await submitImageJob(ctx, annex, image) : undefined
  const command = anchorCommand(ctx.ap, ctx.apHome, {name: annex, nodes: NODES, lifetime: LIFETIME, loginHost: 'hpc'})
  await offCycle()
  const offset = ctx.sshd.offset()
  const wire = wireBytes()
  const r = await timed(...asUser(ctx.ap, command.program, command.args), {env: command.env, cwd: ctx.apHome})
  const sent = wireBytes() - wire
  let jobId
  try {
    const limit = ANCHOR_SIF_LIMIT.exec(r.stdout + r.stderr)
    if (r.code !== 0 && imageLimitOk && limit) return {limit: Number(limit[1]), exitMs: r.ms, sent}
    if (r.code !== 0) throw new Error(`htcondor annex create failed (exit ${r.code}): ${(r.stdout + r.stderr).slice(-2500)}`)
    jobId = toJobId(ctx, r, 'htcondor annex create')
    const pilotsMs = await pilotsAdvertised(ctx, annex, r, pilots)
    keepPilotLogs(ctx, 'anchor', {r, jobIdMs: jobId.ms, pilotsMs, batchJobId: jobId.batchJobId, pilotDir: ctx.jobQueue.values(jobId.cluster).hpc_annex_PILOT_DIR})
    return {ms: jobId.ms, exitMs: r.ms, pilotsMs, ssh: ctx.sshd.since(offset), sent}
  } finally {
    await closeAnchorMaster(ctx.ap, ctx.apHome)
    const values = jobId ? ctx.jobQueue.values(jobId.cluster) : {}
    await finishRun(ctx, {batchJobId: jobId?.batchJobId, pilotDir: values.hpc_annex_PILOT_DIR, clusters: [jobId?.cluster, job]})
  }
}

/**
 * `cat image | ssh hpc 'cat > FILE'`: the same bytes over the same link with
 * OpenSSH's own defaults, stored in a file beside hpc-annex's cache on the
 * login node (the same file system), as an upload must be; with `toNull`,
 * thrown away instead (`cat > /dev/null`: the link and ssh alone). The file
 * goes after each run, untimed.
 */
async function catSsh(ctx, image, {toNull = false} = {}) {
  const cfg = quote(ctx.site.sshConfig)
  const file = join(dirname(ctx.loginNode.cacheDir), 'cat-baseline.bin')
  const login = await timed(...inNs('bash', ['-c', `ssh -F ${cfg} -o BatchMode=yes hpc true`]))
  const r = await timed(...inNs('bash', ['-c', `cat ${quote(image.path)} | ssh -F ${cfg} -o BatchMode=yes hpc ${quote(`cat > ${toNull ? '/dev/null' : quote(file)}`)}`]))
  if (!toNull) ctx.harness.remote(`rm -f -- ${quote(file)}`)
  if (r.code !== 0) throw new Error(`cat | ssh failed: ${r.stderr}`)
  return {ms: r.ms, login: login.ms, rate: image.bytes / ((r.ms - login.ms) / 1000)}
}

// ------------------------------------------------------------- the figures

function ratio(a, b) {
  return a.n && b.n ? a.median / b.median : NaN
}

function fmtRatio(r, goal) {
  if (!Number.isFinite(r)) return 'n/a'
  return `${r.toFixed(2)}×${goal ? ` (goal ${goal})` : ''}`
}

/** Issue 22's goals, per figure and profile. */
const GOALS = {
  first: {lan: '≤ 1.0', campus: '≤ 1.0', wan: '≤ 0.7'},
  repeated: {lan: '≤ 0.5', campus: '≤ 0.5', wan: '≤ 0.5'},
  pilots: {lan: '≤ 0.8', campus: '≤ 0.8', wan: '≤ 0.6'},
  upload: {lan: '≥ 0.9', campus: '≥ 0.9', wan: '≥ 0.9'},
}

const defined = (xs) => xs.filter((x) => x !== undefined)

async function createFigures(ctx, profile, p, log) {
  const out = {profile, nodes: NODES, missedPilots: 0}
  // 1. No images: first (cache cold) and repeated (tarball cached), each followed by the anchor; then first
  // again with the login node downloading the tarball, as the anchor's does; every run until its pilots are in.
  log(`${profile}: create without images, ${NODES} nodes, ${p.runs} runs after a warm-up (hpc-annex first, anchor, hpc-annex repeated, anchor, hpc-annex first downloading)`)
  const runs = {first: [], again: [], anchor: [], downloaded: []}
  for (let i = 0; i <= p.runs; i++) {
    clearCaches(ctx)
    const a = await annexCreate(ctx, {pilots: true})
    const b = await anchorCreate(ctx, {pilots: true})
    const c = await annexCreate(ctx, {pilots: true})
    const d = await anchorCreate(ctx, {pilots: true})
    clearCaches(ctx)
    const e = await annexCreate(ctx, {pilots: true, download: true})
    log(`${profile}: run ${i}${i === 0 ? ' (warm-up)' : ''}: to JOB_ID ${[a, b, c, d, e].map((x) => `${(x.ms / 1000).toFixed(2)}`).join(' / ')} s; pilots ${[a, b, c, d, e].map((x) => (x.pilotsMs === undefined ? '-' : `${(x.pilotsMs / 1000).toFixed(2)}`)).join(' / ')} s`)
    if (e.result.htcondor?.urlBaseFrom !== 'ANNEX_TARBALL_URL_BASE' || e.result.htcondor.stagedTarball !== undefined) throw new Error(`the downloading create did not download from the stand-in: ${JSON.stringify(e.result.htcondor)}`)
    if (i === 0) continue // warm-up
    runs.first.push(a)
    runs.again.push(c)
    runs.anchor.push(b, d)
    runs.downloaded.push(e)
  }
  const fig = (xs, key) => stats(defined(xs.map((x) => x[key])))
  out.missedPilots = [...runs.first, ...runs.again, ...runs.anchor, ...runs.downloaded].filter((x) => x.pilotsMs === undefined).length
  out.firstCreate = {annex: fig(runs.first, 'ms'), anchor: fig(runs.anchor, 'ms')}
  out.firstDownloaded = {annex: fig(runs.downloaded, 'ms'), anchor: fig(runs.anchor, 'ms')}
  out.firstDownloadedPilots = {annex: fig(runs.downloaded, 'pilotsMs'), anchor: fig(runs.anchor, 'pilotsMs')}
  out.repeatedCreate = {annex: fig(runs.again, 'ms'), anchor: fig(runs.anchor, 'ms')}
  out.firstPilots = {annex: fig(runs.first, 'pilotsMs'), anchor: fig(runs.anchor, 'pilotsMs')}
  out.repeatedPilots = {annex: fig(runs.again, 'pilotsMs'), anchor: fig(runs.anchor, 'pilotsMs')}
  out.exit = {first: fig(runs.first, 'exitMs'), repeated: fig(runs.again, 'exitMs'), anchor: fig(runs.anchor, 'exitMs')}
  const set = (xs, key) => [...new Set(xs.map((x) => x.ssh[key]))].sort()
  out.roundTrips = {first: set(runs.first, 'sessions'), repeated: set(runs.again, 'sessions'), anchor: set(runs.anchor, 'sessions')}
  out.logins = {annex: set([...runs.first, ...runs.again], 'logins'), anchor: set(runs.anchor, 'logins')}

  // 2. A large image, first time, both transports; cat | ssh on the same link.
  const bigRuns = p.bigRuns[profile] ?? 1
  log(`${profile}: first create with a ${fmtBytes(ctx.image.bytes)} image, ${bigRuns} run(s) per transport`)
  out.bigFirst = {runs: bigRuns}
  const S = ctx.image.bytes
  const upload = async (transport) => {
    clearCaches(ctx)
    const r = await annexCreate(ctx, {transport, image: ctx.image, watch: true})
    if (r.result.images?.[0]?.sent !== true) throw new Error('the first create did not send the image')
    // The CLI reads the tarball (its digest), the image (its checksum), then streams the image before the
    // tarball: the middle of the image's second read is the upload.
    const T = ctx.tarball.bytes
    return {wall: r.exitMs, rate: readRate(r.reads, T + 1.2 * S, T + 1.8 * S), peakRss: r.peakRss}
  }
  for (const transport of ['ssh2', 'openssh']) {
    const runs = []
    for (let i = 0; i < bigRuns; i++) runs.push(await upload(transport))
    // The A/B: the same upload with the login node hashing what arrives with coreutils' sha256sum instead of openssl.
    const slower = await ctx.loginNode.bySha256sum(p.abRuns, () => upload(transport))
    out.bigFirst[transport] = {
      wall: stats(runs.map((r) => r.wall)),
      rate: stats(defined(runs.map((r) => r.rate))),
      peakRss: Math.max(...runs.map((r) => r.peakRss)),
      sha256sum: {wall: stats(slower.map((r) => r.wall)), rate: stats(defined(slower.map((r) => r.rate)))},
    }
  }
  const cats = []
  const catsToNull = []
  for (let i = 0; i < bigRuns; i++) {
    cats.push((await catSsh(ctx, ctx.image)).rate)
    catsToNull.push((await catSsh(ctx, ctx.image, {toNull: true})).rate)
  }
  out.bigFirst.catSsh = stats(cats)
  out.bigFirst.catSshToNull = stats(catsToNull)

  // 3. The same image again (it is in the login node's cache now), vs the anchor, which sends it every time.
  const anchorRuns = p.anchorBigRuns[profile] ?? 1
  log(`${profile}: second create with the same image, ${p.secondRuns} runs after a warm-up; anchor ${anchorRuns} run(s)`)
  const second = []
  await annexCreate(ctx, {image: ctx.image}) // warm-up (and makes sure the image is cached)
  for (let i = 0; i < p.secondRuns; i++) {
    const r = await annexCreate(ctx, {image: ctx.image})
    if (r.result.images?.[0]?.sent !== false) throw new Error('the second create sent the image again')
    second.push(r)
  }
  // The A/B: the login node checks the cached image again before use, hashing with sha256sum instead of openssl.
  const secondBySha256sum = await ctx.loginNode.bySha256sum(p.abRuns, () => annexCreate(ctx, {image: ctx.image}))
  const anchorImage = []
  for (let i = 0; i < anchorRuns; i++) anchorImage.push(await anchorCreate(ctx, {image: ctx.image, imageLimitOk: true}))
  const gaveUp = anchorImage.filter((r) => r.limit !== undefined)
  out.bigSecond = {
    // Runs in which HTCondor's tool gave up on sending the image (its time limit, in seconds), and after how long.
    anchorGaveUp: gaveUp.length ? {runs: gaveUp.length, limit: gaveUp[0].limit, exit: stats(gaveUp.map((r) => r.exitMs))} : undefined,
    annex: stats(second.map((r) => r.ms)),
    annexBySha256sum: stats(secondBySha256sum.map((r) => r.ms)),
    // On the wire (the kernel's count of what left the namespace, ssh and TCP included), the same way for both tools.
    bytesSent: stats(second.map((r) => r.sent)),
    reportedBytesSent: stats(second.map((r) => r.result.sentBytes ?? r.result.bytesSent)),
    anchor: stats(defined(anchorImage.map((r) => r.ms))),
    anchorBytesSent: stats(anchorImage.map((r) => r.sent)),
  }
  clearCaches(ctx)
  return out
}

async function coldStart(env, runs) {
  const figures = {}
  for (const [label, args] of [['--help', ['--help']], ['systems', ['systems']]]) {
    const times = []
    for (let i = 0; i <= runs; i++) {
      const r = await timed(process.execPath, [CLI, ...args], {env})
      if (r.code !== 0) throw new Error(`hpc-annex ${args.join(' ')} failed: ${r.stderr.slice(-500)}`)
      if (i > 0) times.push(r.ms)
    }
    figures[label] = stats(times)
  }
  return figures
}

function rows(figures, p) {
  const out = []
  for (const f of figures.profiles) {
    const P = f.profile
    const big = fmtBytes(figures.imageBytes)
    const trips = (xs) => xs.join('/')
    const n = f.nodes
    out.push([P, 'create, first (hpc-annex sends the tarball; the anchor downloads it), start → batch job id in the state job', fmtMs(f.firstCreate.annex), fmtMs(f.firstCreate.anchor), fmtRatio(ratio(f.firstCreate.annex, f.firstCreate.anchor), GOALS.first[P])])
    out.push([P, 'create, first (both download the tarball on the login node, from the local stand-ins), start → batch job id in the state job', fmtMs(f.firstDownloaded.annex), fmtMs(f.firstDownloaded.anchor), fmtRatio(ratio(f.firstDownloaded.annex, f.firstDownloaded.anchor), GOALS.first[P])])
    out.push([P, 'create, repeated (tarball cached), start → batch job id in the state job', fmtMs(f.repeatedCreate.annex), fmtMs(f.repeatedCreate.anchor), fmtRatio(ratio(f.repeatedCreate.annex, f.repeatedCreate.anchor), GOALS.repeated[P])])
    out.push([P, `create start → all ${n} pilots advertised, first`, fmtMs(f.firstPilots.annex), fmtMs(f.firstPilots.anchor), fmtRatio(ratio(f.firstPilots.annex, f.firstPilots.anchor), GOALS.pilots[P])])
    out.push([P, `create start → all ${n} pilots advertised, first, both downloading`, fmtMs(f.firstDownloadedPilots.annex), fmtMs(f.firstDownloadedPilots.anchor), fmtRatio(ratio(f.firstDownloadedPilots.annex, f.firstDownloadedPilots.anchor), GOALS.pilots[P])])
    out.push([P, `create start → all ${n} pilots advertised, repeated`, fmtMs(f.repeatedPilots.annex), fmtMs(f.repeatedPilots.anchor), fmtRatio(ratio(f.repeatedPilots.annex, f.repeatedPilots.anchor), GOALS.pilots[P])])
    out.push([P, 'logins / round trips after the login (sshd log: sessions)', `${trips(f.logins.annex)} / ${trips(f.roundTrips.first)}`, `${trips(f.logins.anchor)} / ${trips(f.roundTrips.anchor)}`, ''])
    const runs = f.bigFirst.runs
    for (const t of ['ssh2', 'openssh']) {
      out.push([P, `${big} image, first create, upload rate (--ssh ${t})${runs < p.runs ? `, ${runs} run(s)` : ''}`, fmtRate(f.bigFirst[t].rate), `cat|ssh 'cat > file' ${fmtRate(f.bigFirst.catSsh)}`, fmtRatio(ratio(f.bigFirst[t].rate, f.bigFirst.catSsh), GOALS.upload[P])])
      // Beside it, the same upload against ssh alone, its bytes thrown away on arrival.
      if (f.bigFirst.catSshToNull) out.push([P, `… the same rate against \`cat > /dev/null\` on the login node (the link and ssh alone)`, fmtRate(f.bigFirst[t].rate), `cat|ssh 'cat > /dev/null' ${fmtRate(f.bigFirst.catSshToNull)}`, fmtRatio(ratio(f.bigFirst[t].rate, f.bigFirst.catSshToNull), '')])
      out.push([P, `${big} image, first create, wall (--ssh ${t})${runs < p.runs ? `, ${runs} run(s)` : ''}`, fmtMs(f.bigFirst[t].wall), '', ''])
      const ab = f.bigFirst[t].sha256sum
      out.push([P, `… the same, the login node hashing with coreutils' sha256sum instead of openssl (A/B, ${ab.rate.n} run(s))`, fmtRate(ab.rate), `cat|ssh 'cat > file' ${fmtRate(f.bigFirst.catSsh)}`, fmtRatio(ratio(ab.rate, f.bigFirst.catSsh), '')])
      out.push([P, `peak RSS of the CLI during the upload (--ssh ${t})`, fmtBytes(f.bigFirst[t].peakRss), '', f.bigFirst[t].peakRss < 150 * MiB ? 'goal < 150 MiB: met' : 'goal < 150 MiB: NOT met'])
    }
    out.push([P, `${big} image, second create: bytes on the wire (${f.bigSecond.annex.n} runs; anchor ${f.bigSecond.anchorBytesSent.n})`, fmtBytes(f.bigSecond.bytesSent.median), `${fmtBytes(f.bigSecond.anchorBytesSent.median)}${f.bigSecond.anchorGaveUp ? ' (until it gave up)' : ''}`, f.bigSecond.bytesSent.median < MiB ? 'goal < 1 MiB: met' : 'goal < 1 MiB: NOT met'])
    const gaveUp = f.bigSecond.anchorGaveUp
    // Every run of the anchor gave up: there is no time of its to compare with.
    const onlyAnnex = gaveUp !== undefined && !f.bigSecond.anchor.n
    const anchorSecond = onlyAnnex ? `gave up: its ${gaveUp.limit} s limit on sending images (exit after ${fmtMs(gaveUp.exit)})` : fmtMs(f.bigSecond.anchor)
    out.push([P, `${big} image, second create: start → batch job id (${f.bigSecond.annex.n} runs; anchor ${f.bigSecond.anchor.n + (gaveUp?.runs ?? 0)})`, fmtMs(f.bigSecond.annex), anchorSecond, onlyAnnex ? 'only hpc-annex gets an annex' : fmtRatio(ratio(f.bigSecond.annex, f.bigSecond.anchor), '')])
    out.push([P, `… the same, the login node checking the cached image with coreutils' sha256sum instead of openssl (A/B, ${f.bigSecond.annexBySha256sum.n} run(s))`, fmtMs(f.bigSecond.annexBySha256sum), anchorSecond, onlyAnnex ? '' : fmtRatio(ratio(f.bigSecond.annexBySha256sum, f.bigSecond.anchor), '')])
  }
  if (figures.coldStart) {
    out.push(['-', 'cold start: hpc-annex --help', fmtMs(figures.coldStart['--help']), '', 'goal ≤ 200 ms'])
    out.push(['-', 'cold start: hpc-annex systems', fmtMs(figures.coldStart.systems), '', 'goal ≤ 200 ms'])
  }
  return out
}

function markdown(header, body) {
  const esc = (c) => String(c ?? '').replace(/\|/g, '\\|')
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.map(esc).join(' | ')} |`)]
}

export async function run(options = {}) {
  const p = plan(options.quick)
  const log = (text) => console.error(`[bench create] ${text}`)
  const lines = []
  const figures = {imageBytes: p.imageBytes, runs: p.runs, nodes: NODES, profiles: [], notes: []}

  const env = {...process.env, HPC_ANNEX_MACHINES: MACHINES}
  log(`cold start, ${p.coldRuns} runs after a warm-up`)
  figures.coldStart = await coldStart(env, p.coldRuns)

  const work = mkdtempSync(join(tmpdir(), 'bench-create-'))
  chmodSync(work, 0o755)
  const site = siteUp(work, log)
  let harness
  let bench
  let loginNode
  let ctx
  try {
    const release = await findRelease(log)
    figures.htcondor = {version: release.version, tarball: release.tarball}
    figures.tarballBytes = statSync(release.tarball).size
    bench = await startBenchAccessPoint({release, netns: NS, wsIp: WS_IP, log})
    loginNode = prepareLoginNode({siteUser: site.info.user, wsIp: WS_IP, anchor: {tarball: release.tarball}, subSecondLogs: Boolean(options.pilotLogs), log})
    ctx = makeContext({site, bench, loginNode, release, work})
    // Written by the benchmark's Access Point user.
    for (const [option, key] of [['trace', 'traceDir'], ['cpuProf', 'cpuProfDir'], ['pilotLogs', 'pilotLogsDir']]) {
      if (!options[option]) continue
      mkdirSync(options[option], {recursive: true})
      chmodSync(options[option], 0o1777)
      ctx[key] = options[option]
    }
    ctx.mirror = await startDownloadMirror({tarball: release.tarball, version: release.version})
    const imagePath = join(work, 'jobs', 'bench.sif')
    mkdirSync(dirname(imagePath), {recursive: true})
    giveToUser(bench.ap, dirname(imagePath))
    log(`writing a ${fmtBytes(p.imageBytes)} image of random bytes`)
    run1('bash', ['-c', `head -c ${p.imageBytes} /dev/urandom > ${quote(imagePath)} && chmod 644 ${quote(imagePath)}`])
    ctx.image = {path: imagePath, name: 'bench.sif', bytes: p.imageBytes, sha256: await sha256File(imagePath)}

    const profiles = options.profiles ?? (options.quick ? ['lan'] : ['lan', 'campus', 'wan'])
    for (const profile of profiles) {
      log(`shaping the link: ${profile}`)
      shape(profile)
      ctx.profile = profile
      harness?.close()
      harness = openHarnessMaster(site.info)
      ctx.harness = harness
      figures.profiles.push(await createFigures(ctx, profile, p, log))
    }
  } finally {
    ctx?.jobQueue.close()
    await ctx?.mirror?.close()
    harness?.close()
    if (bench) {
      await apTool(bench.ap, 'condor_rm', ['-all'])
      await bench.stop()
    }
    loginNode?.remove()
    site.release()
    rmSync(work, {recursive: true, force: true})
    if (ctx) rmSync(ctx.cliHome, {recursive: true, force: true})
  }

  const body = rows(figures, p)
  lines.push(...markdown(['profile', 'figure', 'hpc-annex', `htcondor annex (${figures.htcondor.version})`, 'ratio / goal'], body))
  lines.push('')
  lines.push(`Median [min–max] of ${p.runs} runs after a warm-up unless a row says otherwise (the anchor ran twice per run: ${p.runs * 2} runs); ${NODES} nodes per create; ${fmtBytes(p.imageBytes)} image of random bytes; the HTCondor tarball is the release's own (${fmtBytes(figures.tarballBytes)}), given to hpc-annex with --condor-tarball (or, in the rows that say so, downloaded on the login node from a stand-in of HTCondor's download server on its loopback) and served to the anchor by the stand-in download; the pilots are real.`)
  lines.push(`Anchor: HTCondor ${figures.htcondor.version}'s own \`htcondor annex create\` as ${ANCHOR_TARGET} --nodes ${NODES} --cpus 2 (hpc-annex: compute@sandbox --nodes ${NODES}; both get ${NODES} whole 2-CPU nodes), on the same Access Point, link, login node and nodes, with the stand-ins listed in the README.`)
  lines.push('Batch job id: when the schedd logged it in the state job (its job queue log, watched through inotify); pilots: the annex collector polled every 100 ms from the end of the command; round trips: sessions the site\'s sshd logged from the benchmark\'s address.')
  lines.push('Profiles (bench/net.sh, the measured side, the Access Point with it, in its own network namespace): lan +0.2 ms RTT; campus +10 ms RTT, 1 Gbit/s; wan +100 ms RTT, 100 Mbit/s; the pilots reach the Access Point over the same link.')
  for (const f of figures.profiles) if (f.missedPilots) figures.notes.push(`${f.profile}: ${f.missedPilots} run(s) saw their pilots not all advertised within 180 s (left out of the pilot rows).`)
  for (const note of figures.notes) lines.push(`Note: ${note}`)
  return {lines, results: figures}
}
