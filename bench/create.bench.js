// `hpc-annex create` against the loopback site (test/site/up.sh) over
// emulated links (lan, campus, wan), side by side with bench/baseline.sh (the
// sequential OpenSSH way HTCondor's own tool works), plus the CLI's cold start.
// Runs as root: it brings the site up and shapes its link itself.
//
// Figures (each the median of N runs after a warm-up, with min and max):
//   1. create, no images: wall time from command to JOB_ID, first (login
//      node's cache empty) and repeated (HTCondor tarball cached), vs the
//      baseline; round trips (ssh execs after the login)
//   2. create with a 1 GiB image, first time: upload rate vs
//      `cat file | ssh host 'cat > /dev/null'`, both transports; peak RSS
//   3. the same image a second time: bytes sent and wall time vs the baseline
//   4. `hpc-annex --help` and `systems` cold start
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir, userInfo} from 'node:os'
import {dirname, join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'

import {MiB, fmtBytes, fmtMs, fmtRate, readRate, stats, timed} from './lib.js'

export const name = 'create'

const here = dirname(fileURLToPath(import.meta.url))
const ROOT = join(here, '..')
const CLI = join(ROOT, 'bin', 'run.js')
// BENCH_CLI: another entry point for create (one that takes the same arguments and prints the same --json).
const BIN = process.env.BENCH_CLI ?? CLI
const SITE_TOOLS = join(ROOT, 'test', 'site')
const SITE_DIR = process.env.SITE_DIR ?? '/tmp/hpc-annex-site'
const MACHINES = join(SITE_TOOLS, 'machines')
const BASELINE = join(here, 'baseline.sh')
const SCHEDD = 'ap.example.org'

/** How many runs of what, per profile. 1 GiB transfers at 100 Mbit/s take ~90 s each, so fewer of them on wan. */
function plan(quick) {
  if (quick) return {imageBytes: 64 * MiB, runs: 2, bigRuns: {lan: 1}, secondRuns: 2, baselineBigRuns: {lan: 1}, coldRuns: 3}
  return {
    imageBytes: 1024 * MiB,
    runs: 5,
    bigRuns: {lan: 2, campus: 2, wan: 1},
    secondRuns: 3,
    baselineBigRuns: {lan: 2, campus: 2, wan: 1},
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

// ---------------------------------------------------------------- the site

function siteInfo() {
  return JSON.parse(readFileSync(join(SITE_DIR, 'site.json'), 'utf8'))
}

const NET = join(here, 'net.sh')
const NS = process.env.BENCH_NS ?? 'annexbench-ws'
const SITE_FROM_NS = process.env.BENCH_ROOT_IP ?? '10.79.0.1'

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
    release: () => {
      spawnSync('bash', [NET, 'down'], {stdio: 'ignore'})
      spawnSync('bash', [users, 'remove', String(process.pid)], {stdio: 'ignore'})
    },
  }
}

function shape(profile) {
  run1('bash', [NET, 'shape', profile], {stdio: ['ignore', 'pipe', 'pipe']})
}

/** A command as run on the shaped link, from the workstation namespace. */
function inNs(command, args) {
  return ['nsenter', [`--net=/run/netns/${NS}`, command, ...args]]
}

/** The harness's own connection (not measured): cleans up between runs. */
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

// ------------------------------------------------------------ what is run

function quote(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`
}

/**
 * The site's HTCondor tarball (a test double of a few KiB) grown to the size
 * of a real release, so that sending it, and not sending it when cached,
 * cost what they cost users: its release directory gets lib/ballast/, real
 * shared libraries and programs of this machine (they compress as a
 * release's do), until the gzipped tarball is about `mib` MiB
 * (BENCH_TARBALL_MIB, default 50: an HTCondor release tarball is tens of MiB).
 */
async function realisticTarball(work, siteTarball, mib, log) {
  const dir = join(work, 'tarball')
  mkdirSync(dir, {recursive: true})
  run1('tar', ['-xzf', siteTarball, '-C', dir])
  const [top] = readdirSync(dir)
  const ballast = join(dir, top, 'lib', 'ballast')
  mkdirSync(ballast, {recursive: true})
  // Shared libraries and programs compress ~3.3:1 with gzip (measured here); the log shows the size reached.
  const enough = 3.3 * mib * MiB
  let copied = 0
  for (const source of ['/usr/lib/x86_64-linux-gnu', '/usr/bin', '/usr/lib']) {
    if (!existsSync(source)) continue
    for (const name of readdirSync(source).sort()) {
      if (copied >= enough) break
      const path = join(source, name)
      const info = statSync(path, {throwIfNoEntry: false})
      if (!info?.isFile() || info.size < 64 * 1024 || copied + info.size > 1.05 * enough) continue
      copyFileSync(path, join(ballast, `${copied}-${name}`))
      copied += info.size
    }
  }
  const out = join(work, `${top}-bench.tar.gz`)
  run1('bash', ['-c', `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C ${quote(dir)} -cf - ${quote(top)} | gzip -n -6 > ${quote(out)}`])
  rmSync(dir, {recursive: true, force: true})
  const bytes = statSync(out).size
  log(`HTCondor tarball for the benchmark: ${fmtBytes(bytes)} gzipped (${fmtBytes(copied)} of real binaries added to the site's test double)`)
  return {path: out, bytes, sha256: await sha256File(out)}
}

function makeContext(site, fake, work, tarball) {
  const env = {
    ...process.env,
    ...fake.env,
    HPC_ANNEX_MACHINES: MACHINES,
    HPC_ANNEX_SSH_CONFIG: site.sshConfig,
    // Short: OpenSSH's control socket lives under it, and a socket path has at most 107 bytes.
    HOME: mkdtempSync('/tmp/bh-'),
  }
  return {site, fake, work, tarball, env, counter: 0}
}

/** A job that needs IMAGE, so that create stages it. */
function addImageJob(ctx, annex, image) {
  if (image) ctx.fake.addJob({TargetAnnexName: annex, TransferContainer: true, ContainerImage: image.path, Iwd: dirname(image.path)})
}

function cleanupRemote(ctx, jobId, pilotDir) {
  const parts = []
  if (jobId) parts.push(`scancel ${quote(jobId)} 2>/dev/null`)
  if (pilotDir && pilotDir.startsWith('/')) parts.push(`rm -rf -- ${quote(pilotDir)} ${quote(`${pilotDir}.logs`)}`)
  if (parts.length) ctx.harness.remote(`${parts.join('; ')}; true`)
}

function clearRemoteCache(ctx) {
  ctx.harness.remote('rm -rf -- "$HOME/.hpc-annex/cache"')
}

function parseJson(stdout) {
  const text = stdout.slice(stdout.indexOf('{'))
  return JSON.parse(text)
}

async function annexCreate(ctx, {transport = 'ssh2', image, watch = false} = {}) {
  const annex = `bench${process.pid}x${ctx.counter++}`
  addImageJob(ctx, annex, image)
  const args = [BIN, 'create', annex, 'compute@sandbox', '--condor-tarball', ctx.tarball.path, '--ssh', transport, '--json']
  const r = await timed(...inNs(process.execPath, args), {env: ctx.env, watch})
  if (r.code !== 0) throw new Error(`hpc-annex create failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(-1500)}`)
  const result = parseJson(r.stdout)
  cleanupRemote(ctx, result.batchJobId, result.pilotDir)
  if (!result.batchJobId) throw new Error('hpc-annex create reported no batch job id')
  return {ms: r.ms, result, peakRss: r.peakRss, reads: r.reads}
}

/** The same files hpc-annex's bundle carries, in a directory, for baseline.sh. */
async function baselineDir(ctx, annex, image) {
  const {loadCatalog, validateRequest} = await import('../dist/catalog/index.js')
  const {renderFiles} = await import('../dist/backend/index.js')
  const saved = process.env.HPC_ANNEX_MACHINES
  process.env.HPC_ANNEX_MACHINES = MACHINES
  let plan
  try {
    plan = validateRequest(loadCatalog(), {name: annex, target: 'compute@sandbox'}, {defaultOwner: userInfo().username})
  } finally {
    if (saved === undefined) delete process.env.HPC_ANNEX_MACHINES
    else process.env.HPC_ANNEX_MACHINES = saved
  }
  const config = ctx.fake.state().config
  const ap = {
    requestId: `${SCHEDD}#${ctx.counter}.0#${Math.floor(Date.now() / 1000)}`,
    collector: config.ANNEX_COLLECTOR,
    scheddName: SCHEDD,
    images: image ? [{name: image.name, sha256: image.sha256}] : [],
    stagedTarballSha256: ctx.tarball.sha256,
  }
  const dir = join(ctx.work, `baseline-${annex}`)
  for (const file of renderFiles(plan, ap)) {
    mkdirSync(dirname(join(dir, file.path)), {recursive: true})
    writeFileSync(join(dir, file.path), file.content, {mode: file.mode})
  }
  writeFileSync(join(dir, 'token'), 'baseline-token\n', {mode: 0o600})
  writeFileSync(join(dir, 'password'), 'baseline-password\n', {mode: 0o600})
  mkdirSync(join(dir, 'condor'))
  try {
    linkSync(ctx.tarball.path, join(dir, 'condor', ctx.tarball.sha256))
  } catch {
    copyFileSync(ctx.tarball.path, join(dir, 'condor', ctx.tarball.sha256))
  }
  if (image) {
    mkdirSync(join(dir, 'sif'))
    symlinkSync(image.path, join(dir, 'sif', image.sha256))
  }
  const submit = join(ctx.work, `baseline-${annex}.sub`)
  writeFileSync(submit, `universe = local\nexecutable = /bin/true\n+hpc_annex_name = "${annex}"\n+hpc_annex_request_id = "${ap.requestId}"\nqueue\n`)
  return {dir, submit}
}

async function baselineCreate(ctx, {image} = {}) {
  const annex = `base${process.pid}x${ctx.counter++}`
  const {dir, submit} = await baselineDir(ctx, annex, image)
  try {
    const r = await timed(...inNs('bash', [BASELINE, '--ssh-config', ctx.site.sshConfig, '--ap', submit, 'hpc', dir]), {env: {...ctx.env, AP_TOKEN_KEY: ctx.fake.state().config.ANNEX_TOKEN_KEY_NAME}})
    const field = (key) => new RegExp(`^${key} (.*)$`, 'm').exec(r.stdout)?.[1]
    cleanupRemote(ctx, field('JOB_ID'), field('PILOT_DIR'))
    if (r.code !== 0 || !field('JOB_ID')) throw new Error(`baseline.sh failed (exit ${r.code}): ${r.stderr.slice(-1500)}`)
    return {ms: r.ms, execs: Number(field('SSH_EXECS'))}
  } finally {
    rmSync(dir, {recursive: true, force: true})
    rmSync(submit, {force: true})
  }
}

async function catSsh(ctx, image) {
  const cfg = quote(ctx.site.sshConfig)
  const login = await timed(...inNs('bash', ['-c', `ssh -F ${cfg} -o BatchMode=yes hpc true`]))
  const r = await timed(...inNs('bash', ['-c', `cat ${quote(image.path)} | ssh -F ${cfg} -o BatchMode=yes hpc 'cat > /dev/null'`]))
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

async function createFigures(ctx, profile, p, log) {
  const out = {profile}
  // 1. No images: first (cache cold) and repeated (tarball cached), vs the baseline, interleaved.
  log(`${profile}: create without images, ${p.runs} runs after a warm-up`)
  const first = []
  const firstBase = []
  const again = []
  const againBase = []
  const trips = {first: new Set(), again: new Set(), baseline: new Set()}
  for (let i = 0; i <= p.runs; i++) {
    clearRemoteCache(ctx)
    const a = await annexCreate(ctx)
    clearRemoteCache(ctx)
    const b = await baselineCreate(ctx)
    const c = await annexCreate(ctx)
    const d = await baselineCreate(ctx)
    if (i === 0) continue // warm-up
    first.push(a.ms)
    firstBase.push(b.ms)
    again.push(c.ms)
    againBase.push(d.ms)
    trips.first.add(a.result.remoteCommands)
    trips.again.add(c.result.remoteCommands)
    trips.baseline.add(b.execs).add(d.execs)
  }
  out.firstCreate = {annex: stats(first), baseline: stats(firstBase)}
  out.repeatedCreate = {annex: stats(again), baseline: stats(againBase)}
  out.roundTrips = {first: [...trips.first], repeated: [...trips.again], baseline: [...trips.baseline]}

  // 2. A 1 GiB image, first time, both transports; cat | ssh on the same link.
  const bigRuns = p.bigRuns[profile] ?? 1
  log(`${profile}: first create with a ${fmtBytes(ctx.image.bytes)} image, ${bigRuns} run(s) per transport`)
  out.bigFirst = {runs: bigRuns}
  const S = ctx.image.bytes
  for (const transport of ['ssh2', 'openssh']) {
    const walls = []
    const rates = []
    let peak = 0
    for (let i = 0; i < bigRuns; i++) {
      clearRemoteCache(ctx)
      const r = await annexCreate(ctx, {transport, image: ctx.image, watch: true})
      walls.push(r.ms)
      // The CLI reads the tarball (its digest), the image (its checksum), then streams the image before the
      // tarball: the middle of the image's second read is the upload.
      const T = ctx.tarball.bytes
      const rate = readRate(r.reads, T + 1.2 * S, T + 1.8 * S)
      if (rate !== undefined) rates.push(rate)
      peak = Math.max(peak, r.peakRss)
      if (r.result.images?.[0]?.sent !== true) throw new Error('the first create did not send the image')
    }
    out.bigFirst[transport] = {wall: stats(walls), rate: stats(rates), peakRss: peak}
  }
  const cats = []
  for (let i = 0; i < bigRuns; i++) cats.push((await catSsh(ctx, ctx.image)).rate)
  out.bigFirst.catSsh = stats(cats)

  // 3. The same image again (it is in the login node's cache now), vs the baseline, which sends it every time.
  log(`${profile}: second create with the same image, ${p.secondRuns} runs after a warm-up; baseline ${p.baselineBigRuns[profile] ?? 1} run(s)`)
  const secondWalls = []
  const secondBytes = []
  await annexCreate(ctx, {image: ctx.image}) // warm-up (and makes sure the image is cached)
  for (let i = 0; i < p.secondRuns; i++) {
    const r = await annexCreate(ctx, {image: ctx.image})
    if (r.result.images?.[0]?.sent !== false) throw new Error('the second create sent the image again')
    secondWalls.push(r.ms)
    secondBytes.push(r.result.bytesSent)
  }
  const baseWalls = []
  for (let i = 0; i < (p.baselineBigRuns[profile] ?? 1); i++) baseWalls.push((await baselineCreate(ctx, {image: ctx.image})).ms)
  out.bigSecond = {annex: stats(secondWalls), bytesSent: stats(secondBytes), baseline: stats(baseWalls)}
  clearRemoteCache(ctx)
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
    out.push([P, 'create, no images, first (wall, to JOB_ID)', fmtMs(f.firstCreate.annex), fmtMs(f.firstCreate.baseline), fmtRatio(ratio(f.firstCreate.annex, f.firstCreate.baseline), P === 'wan' ? '≤ 0.9' : '')])
    out.push([P, 'create, no images, repeated (tarball cached)', fmtMs(f.repeatedCreate.annex), fmtMs(f.repeatedCreate.baseline), fmtRatio(ratio(f.repeatedCreate.annex, f.repeatedCreate.baseline), P === 'wan' ? '≤ 0.5' : '')])
    out.push([P, 'round trips after the login (ssh execs)', trips(f.roundTrips.first), trips(f.roundTrips.baseline), P === 'wan' ? 'goal ≤ 3' : ''])
    const n = f.bigFirst.runs
    for (const t of ['ssh2', 'openssh']) {
      out.push([P, `${big} image, first create, upload rate (--ssh ${t})${n < p.runs ? `, ${n} run(s)` : ''}`, fmtRate(f.bigFirst[t].rate), `cat|ssh ${fmtRate(f.bigFirst.catSsh)}`, fmtRatio(ratio(f.bigFirst[t].rate, f.bigFirst.catSsh), P === 'wan' ? '≥ 0.9' : '')])
      out.push([P, `${big} image, first create, wall (--ssh ${t})${n < p.runs ? `, ${n} run(s)` : ''}`, fmtMs(f.bigFirst[t].wall), '', ''])
      out.push([P, `peak RSS of the CLI during the upload (--ssh ${t})`, fmtBytes(f.bigFirst[t].peakRss), '', f.bigFirst[t].peakRss < 150 * MiB ? 'goal < 150 MiB: met' : 'goal < 150 MiB: NOT met'])
    }
    out.push([P, `${big} image, second create: bytes sent (${f.bigSecond.annex.n} runs)`, fmtBytes(f.bigSecond.bytesSent.median), fmtBytes(figures.imageBytes), f.bigSecond.bytesSent.median < MiB ? 'goal < 1 MiB: met' : 'goal < 1 MiB: NOT met'])
    out.push([P, `${big} image, second create: wall (${f.bigSecond.annex.n} runs; baseline ${f.bigSecond.baseline.n})`, fmtMs(f.bigSecond.annex), fmtMs(f.bigSecond.baseline), fmtRatio(ratio(f.bigSecond.annex, f.bigSecond.baseline), '')])
  }
  if (figures.coldStart) {
    out.push(['-', 'cold start: hpc-annex --help', fmtMs(figures.coldStart['--help']), '', 'goal ≤ 300 ms'])
    out.push(['-', 'cold start: hpc-annex systems', fmtMs(figures.coldStart.systems), '', 'goal ≤ 300 ms'])
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
  const figures = {imageBytes: p.imageBytes, runs: p.runs, profiles: [], notes: []}

  const env = {...process.env, HPC_ANNEX_MACHINES: MACHINES}
  log(`cold start, ${p.coldRuns} runs after a warm-up`)
  figures.coldStart = await coldStart(env, p.coldRuns)

  const work = mkdtempSync(join(tmpdir(), 'bench-create-'))
  const site = siteUp(work, log)
  const {createFakeCondor} = await import('../test/fixtures/fake-condor/index.mjs')
  const fake = createFakeCondor({config: {HPC_ANNEX_REQUIRE_JOB: 'false'}})
  fake.advertise({MyType: 'Scheduler', Name: SCHEDD, MyAddress: '<127.0.0.1:9618>'})
  writeFileSync(fake.state().config.ANNEX_PASSWORD_FILE, 'bench-password\n', {mode: 0o600})
  let harness
  let ctxHome
  try {
    const tarball = await realisticTarball(work, site.info.condorTarball, Number(process.env.BENCH_TARBALL_MIB ?? 50), log)
    figures.tarballBytes = tarball.bytes
    const ctx = makeContext(site, fake, work, tarball)
    ctxHome = ctx.env.HOME
    const imagePath = join(work, 'jobs', 'bench.sif')
    mkdirSync(dirname(imagePath), {recursive: true})
    log(`writing a ${fmtBytes(p.imageBytes)} image of random bytes`)
    run1('bash', ['-c', `head -c ${p.imageBytes} /dev/urandom > ${quote(imagePath)}`])
    ctx.image = {path: imagePath, name: 'bench.sif', bytes: p.imageBytes, sha256: await sha256File(imagePath)}

    const profiles = options.profiles ?? (options.quick ? ['lan'] : ['lan', 'campus', 'wan'])
    for (const profile of profiles) {
      log(`shaping the link: ${profile}`)
      shape(profile)
      harness?.close()
      harness = openHarnessMaster(site.info)
      ctx.harness = harness
      figures.profiles.push(await createFigures(ctx, profile, p, log))
    }
  } finally {
    harness?.close()
    site.release()
    fake.cleanup()
    rmSync(work, {recursive: true, force: true})
    if (ctxHome) rmSync(ctxHome, {recursive: true, force: true})
  }

  const body = rows(figures, p)
  lines.push(...markdown(['profile', 'figure', 'hpc-annex', 'baseline', 'ratio / goal'], body))
  lines.push('')
  lines.push(`Median [min–max] of ${p.runs} runs after a warm-up unless a row says otherwise; ${fmtBytes(p.imageBytes)} image of random bytes; the HTCondor tarball (--condor-tarball) is the site's test double grown with real binaries to ${fmtBytes(figures.tarballBytes)}, the size of a release.`)
  lines.push('Baseline: bench/baseline.sh, OpenSSH ControlMaster + one ssh per step (mkdir, tar populate, tar -h images, back-end), same files and back-end, with the same Access Point steps (token, state job, qedit) on the same condor tools.')
  lines.push('Profiles (bench/net.sh, the measured side in its own network namespace): lan +0.2 ms RTT; campus +10 ms RTT, 1 Gbit/s; wan +100 ms RTT, 100 Mbit/s. The condor tools are the test fakes (node scripts), so the Access Point steps cost more than with HTCondor\'s own.')
  for (const note of figures.notes) lines.push(`Note: ${note}`)
  return {lines, results: figures}
}
