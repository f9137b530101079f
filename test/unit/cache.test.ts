/**
 * The login node's cache: the back-end's notes of what each pilot directory
 * took, `hpc-annex cache SYSTEM` (list, --prune) and a machine's
 * cache_max_bytes, all run here against a temporary HOME: the scripts as the
 * login node's bash runs them, the command through a local "transport".
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {buffer} from 'node:stream/consumers'
import {pipeline} from 'node:stream/promises'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {showCache, type CacheOptions, type CacheResult} from '../../src/annex/cache.js'
import {bootstrapCommand, bundleStream, renderFiles, type BundleInputs, type RenderedFile} from '../../src/backend/index.js'
import {CACHE_RECENT_SECONDS, cacheEnforceCommand, cacheListCommand, cachePruneCommand, parseCacheReport} from '../../src/backend/cache.js'
import {loadCatalog, parseMachineFile} from '../../src/catalog/index.js'
import {formatBytes, formatCacheList, formatCachePrune, parseByteCount, parseDays} from '../../src/cli/cache-text.js'
import {cacheJson} from '../../src/cli/json/project.js'
import {projectPath} from '../../src/paths.js'
import type {ApContext} from '../../src/render/context.js'
import type {Transport} from '../../src/ssh/transport.js'
import {createFakeCondor, type FakeCondor} from '../fixtures/fake-condor/index.mjs'
import {expectContract} from '../fixtures/json-contract.js'
import {LocalTransport} from '../fixtures/local-transport.js'
import {runCli} from './helpers/cli.js'
import {controlLines, fakeCondorTarball, makeStubs, planFor, runBash, sha256, tempDir} from './render-helpers.js'

const DAY = 86400
let work: string
let home: string
let cache: string
let scratch: string
let stubs: string

beforeEach(() => {
  work = tempDir('cache')
  home = join(work, 'home')
  cache = join(home, '.hpc-annex', 'cache')
  scratch = join(work, 'scratch')
  mkdirSync(home)
  mkdirSync(scratch)
  stubs = makeStubs()
})
afterEach(() => {
  rmSync(work, {recursive: true, force: true})
  rmSync(stubs, {recursive: true, force: true})
})

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: scratch, USER: 'alice', ...extra}
}

const now = () => Math.floor(Date.now() / 1000)

/** Sets a path's modification time to `days` days ago. */
function age(path: string, days: number): void {
  const t = now() - days * DAY
  utimesSync(path, t, t)
}

/** A cached object of `bytes` bytes under its sha256, as the back-end stores it; its digest. */
function object(bytes: number, fill = 'x'): string {
  mkdirSync(cache, {recursive: true})
  const content = Buffer.alloc(bytes, fill)
  const digest = execFileSync('sha256sum', {input: content, encoding: 'utf8'}).split(' ')[0]!
  writeFileSync(join(cache, digest), content)
  return digest
}

/** A note of the back-end: `annex`'s pilot directory `dir` took `entry`, `days` days ago. */
function note(entry: string, annex: string, dir: string, kind: string, label: string, days: number): void {
  mkdirSync(join(cache, '.uses'), {recursive: true})
  const file = join(cache, '.uses', entry)
  writeFileSync(file, `${now() - days * DAY} ${annex} ${dir} ${kind} ${label}\n`, {flag: 'a'})
  age(file, days)
}

function run(command: string, extra: NodeJS.ProcessEnv = {}, input?: Buffer) {
  const r = spawnSync('bash', ['-c', command], {env: env(extra), cwd: work, encoding: 'utf8', ...(input ? {input} : {})})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

function entryNames(): string[] {
  return existsSync(cache) ? readdirSync(cache).filter((n) => !n.startsWith('.')).sort() : []
}

/** showCache over a local "login node" (this machine, HOME = the test's). */
function localLogin(extra: NodeJS.ProcessEnv = {}): CacheOptions['login'] & {targets: unknown[]} {
  const targets: unknown[] = []
  return {
    targets,
    open: (group): Transport => {
      targets.push(group.target)
      return new LocalTransport(env(extra), work)
    },
    interaction: () => ({answer: async () => { throw new Error('no prompts expected') }}),
  }
}

async function cacheOf(prune?: CacheOptions['prune'], extra: NodeJS.ProcessEnv = {}): Promise<CacheResult> {
  return showCache({system: 'anvil', loginHost: 'login.example', loginName: 'alice', login: localLogin(extra), ...(prune ? {prune} : {})})
}

const byName = (result: CacheResult, name: string) => result.entries.find((e) => e.name === name)!

describe('the back-end notes what each pilot directory takes from the cache', {timeout: 60_000}, () => {
  const ap: ApContext = {requestId: 'ap.example.org#7.0#1700000000', collector: 'ap.example.org:9618?sock=ap_collector', scheddName: 'ap.example.org'}
  const secrets = {token: Buffer.from('t'), password: Buffer.from('p')}

  async function unpack(files: RenderedFile[], inputs: BundleInputs, name: string): Promise<string> {
    const file = join(work, `${name}.tar`)
    await pipeline(bundleStream(files, inputs), createWriteStream(file))
    const dir = join(work, name)
    mkdirSync(dir)
    execFileSync('tar', ['-xf', file, '-C', dir])
    return dir
  }

  it('one line per use: tarball, release and images, with the annex and the pilot directory; cache lists them, and what a live pilot directory took is in use', async () => {
    const tarball = fakeCondorTarball(work)
    const digest = sha256(tarball)
    const images = join(work, 'images')
    mkdirSync(images)
    writeFileSync(join(images, 'one'), 'image one')
    writeFileSync(join(images, 'two'), 'image two')
    const one = {name: "it's one.sif", sha256: sha256(join(images, 'one'))}
    const two = {name: 'two.sif', sha256: sha256(join(images, 'two'))}
    const create = async (annex: string, image: {name: string; sha256: string}, path: string) => {
      const plan = planFor({name: annex, target: 'wholenode@anvil'})
      const context = {...ap, requestId: `${ap.requestId}${annex}`, stagedTarballSha256: digest, stagedTarballName: 'condor-test.tar.gz', images: [image]}
      const bundle = await unpack(renderFiles(plan, context), {...secrets, condorTarball: {path: tarball, sha256: digest}, sifs: [{sha256: image.sha256, path}]}, annex)
      const result = runBash(join(bundle, 'backend.sh'), [], env(), work)
      expect(result.stderr).toBe('')
      expect(result.status).toBe(0)
      return controlLines(result.stdout).PILOT_DIR!
    }
    const first = await create('first', one, join(images, 'one'))
    const second = await create('second', two, join(images, 'two'))

    const uses = (entry: string) => readFileSync(join(cache, '.uses', entry), 'utf8').trim().split('\n').map((l) => l.split(' ').slice(1))
    expect(uses(digest)).toEqual([['first', first, 'tarball', 'condor-test.tar.gz'], ['second', second, 'tarball', 'condor-test.tar.gz']])
    expect(uses(`${digest}.release`)).toEqual([['first', first, 'release', 'condor-test.tar.gz'], ['second', second, 'release', 'condor-test.tar.gz']])
    expect(uses(one.sha256)).toEqual([['first', first, 'image', "it's", 'one.sif']])
    expect(uses(two.sha256)).toEqual([['second', second, 'image', 'two.sif']])

    // The first pilot has ended (its batch job removed its directory); the second runs.
    rmSync(first, {recursive: true})
    const listed = await cacheOf()
    expect(listed.cacheDir).toBe(cache)
    expect(listed.entries.map((e) => [e.name, e.kind, e.label, e.annexes, e.usedBy, e.inUse])).toEqual(
      expect.arrayContaining([
        [digest, 'tarball', 'condor-test.tar.gz', ['second', 'first'], [{annex: 'second', pilotDir: second}], true],
        [`${digest}.release`, 'release', 'condor-test.tar.gz', ['second', 'first'], [{annex: 'second', pilotDir: second}], true],
        [one.sha256, 'image', "it's one.sif", ['first'], [], false],
        [two.sha256, 'image', 'two.sif', ['second'], [{annex: 'second', pilotDir: second}], true],
      ]),
    )
    expect(listed.entries).toHaveLength(4)
    expect(byName(listed, one.sha256).bytes).toBe('image one'.length)
    expect(byName(listed, `${digest}.release`).bytes).toBeGreaterThan(0)
    expect(listed.totalBytes).toBe(listed.entries.reduce((s, e) => s + e.bytes, 0))
    expect(listed.fileSystem?.bytes).toBeGreaterThan(0)
    // What `cache --json` prints, in the published shape.
    expect(expectContract('cache', {...cacheJson(listed), warnings: []})).toMatchObject({totalBytes: listed.totalBytes, fileSystem: {sizeBytes: listed.fileSystem!.bytes}})

    // A prune takes the first annex's image only: the rest is the running pilot's.
    const pruned = await cacheOf({dryRun: false})
    expect(pruned.entries.filter((e) => e.decision === 'removed').map((e) => e.name)).toEqual([one.sha256])
    expectContract('cache', {...cacheJson(pruned), warnings: []})
    expect(entryNames()).toEqual([digest, `${digest}.release`, two.sha256].sort())
    expect(existsSync(join(cache, '.uses', one.sha256))).toBe(false)
  })

  it('keeps its notes short: past 100 lines, those of pilot directories that still exist and the last 20', async () => {
    const tarball = fakeCondorTarball(work)
    const digest = sha256(tarball)
    const live = join(scratch, 'pilot.Live0001')
    mkdirSync(live)
    mkdirSync(join(cache, '.uses'), {recursive: true})
    const lines = Array.from({length: 120}, (_, i) => `${1700000000 + i} old${i} ${i === 3 ? live : join(scratch, `pilot.Gone${i}`)} release HTCondor\n`)
    writeFileSync(join(cache, '.uses', `${digest}.release`), lines.join(''))
    const plan = planFor({name: 'trim', target: 'wholenode@anvil'})
    const bundle = await unpack(renderFiles(plan, {...ap, stagedTarballSha256: digest}), {...secrets, condorTarball: {path: tarball, sha256: digest}}, 'trim')
    const result = runBash(join(bundle, 'backend.sh'), [], env(), work)
    expect(result.status).toBe(0)
    const kept = readFileSync(join(cache, '.uses', `${digest}.release`), 'utf8').trim().split('\n')
    expect(kept).toHaveLength(21)
    expect(kept[0]).toBe(`1700000003 old3 ${live} release HTCondor`)
    expect(kept.at(-1)).toMatch(/^\d+ trim \/.*\/pilot\.\w+ release HTCondor [\d.]+$/)
    expect(readdirSync(join(cache, '.uses')).filter((n) => n.startsWith('.'))).toEqual([])
  })
})

describe('hpc-annex cache SYSTEM --prune', () => {
  /** A cache as a login node might hold it after some weeks. */
  function weeksOfUse() {
    const live = join(scratch, 'pilot.Running1')
    mkdirSync(live)
    const gone = join(scratch, 'pilot.Ended001')
    const a = object(4000, 'a') // 40 days unused
    note(a, 'old', gone, 'image', 'a.sif', 40)
    const b = object(3000, 'b') // 20 days unused
    note(b, 'old', gone, 'image', 'b.sif', 20)
    const c = object(2000, 'c') // 50 days, but a running pilot's
    note(c, 'running', live, 'image', 'c.sif', 50)
    const d = object(1000, 'd') // 60 days, no notes, but another hard link to it exists (an older tool's pilot directory)
    linkSync(join(cache, d), join(scratch, 'copy.sif'))
    age(join(cache, d), 60)
    const e = object(500, 'e') // used two days ago
    note(e, 'new', gone, 'image', 'e.sif', 2)
    mkdirSync(join(cache, `${e}.release`, 'sbin'), {recursive: true})
    writeFileSync(join(cache, `${e}.release`, 'sbin', 'condor_master'), 'm')
    note(`${e}.release`, 'new', gone, 'release', 'HTCondor 25.0.4', 30)
    writeFileSync(join(cache, `url-${'0'.repeat(64)}`), `${a}\n`)
    writeFileSync(join(cache, '.partial.Abc12345'), 'half')
    writeFileSync(join(cache, 'notes.txt'), 'mine')
    return {live, a, b, c, d, e, release: `${e}.release`}
  }

  it('--dry-run says what would go, least recently used first, and removes nothing', async () => {
    const {a, b, c, d, e, release} = weeksOfUse()
    const before = entryNames()
    const result = await cacheOf({dryRun: true, olderThanDays: 10})
    expect(entryNames()).toEqual(before)
    expect(result.entries.map((x) => [x.name, x.decision, x.reason ?? null])).toEqual([
      [d, 'kept', 'linked'],
      [c, 'kept', 'in-use'],
      [a, 'would-remove', null],
      [release, 'would-remove', null],
      [b, 'would-remove', null],
      [e, 'kept', 'recent'],
      [expect.stringMatching(/^\.partial\.|^notes\.txt$/), 'kept', expect.stringMatching(/^(temporary|other)$/)],
      [expect.stringMatching(/^\.partial\.|^notes\.txt$/), 'kept', expect.stringMatching(/^(temporary|other)$/)],
    ])
    expect(result.prune).toMatchObject({dryRun: true, removed: 3, removedBytes: 4000 + 3000 + byName(result, release).bytes, failed: 0})
    const text = formatCachePrune(result)
    expect(text).toMatch(/^Would remove 3 entries \(.*\) from the cache of anvil on alice@login\.example \(.*\); nothing was removed \(--dry-run\)\.$/m)
    expect(text).toMatch(/would remove {2}image a\.sif \(sha256 [0-9a-f]{12}\), 3\.9 KiB, last used 40 days ago/)
    expect(text).toContain(`kept  image c.sif (sha256 ${c.slice(0, 12)}), 2.0 KiB: in use by ${join(scratch, 'pilot.Running1')} (annex running)`)
    expect(text).toMatch(/kept {2}object sha256 \w+, 1000 B: in use: 1 other hard link to it/)
    expect(text).toMatch(/kept {2}image e\.sif .*: used 2 days ago, within --older-than 10 days/)
    expect(text).toMatch(/would remove {2}HTCondor release, unpacked \(HTCondor [\d.]+, sha256 [0-9a-f]{12}\), .*, last used 30 days ago/)
    expect(text).toContain("notes.txt (not hpc-annex's), 4 B: not one of hpc-annex's objects: never removed")
  })

  it('--older-than and --keep-bytes: least recently used first, only what is older, only until the cache fits; never what a pilot uses', async () => {
    const {a, b, c, d, e, release} = weeksOfUse()
    const total = (await cacheOf()).totalBytes
    // Enough room is made by removing a alone: b stays.
    const first = await cacheOf({dryRun: false, olderThanDays: 10, keepBytes: total - 4000})
    expect(first.entries.filter((x) => x.decision === 'removed').map((x) => x.name)).toEqual([a])
    expect(byName(first, release)).toMatchObject({decision: 'kept', reason: 'within-limit'})
    expect(byName(first, b)).toMatchObject({decision: 'kept', reason: 'within-limit'})
    expect(first.prune!.totalBytesAfter).toBe(total - 4000)
    expect(entryNames()).not.toContain(a)
    // The url- file that named a went with it; a's notes too.
    expect(existsSync(join(cache, `url-${'0'.repeat(64)}`))).toBe(false)
    expect(existsSync(join(cache, '.uses', a))).toBe(false)
    expect(formatCachePrune(first)).toMatch(/kept {2}image b\.sif .*: the cache is within --keep-bytes .* without removing it/)

    // No bounds: everything no pilot uses goes; the temporary (a create may be writing it) and others' files stay.
    const all = await cacheOf({dryRun: false})
    expect(all.entries.filter((x) => x.decision === 'removed').map((x) => x.name)).toEqual([release, b, e])
    expect(entryNames()).toEqual([c, d, 'notes.txt'].sort())
    expect(existsSync(join(cache, '.partial.Abc12345'))).toBe(true)
    expect(readdirSync(join(cache, '.uses'))).toEqual([c])
  })

  it('removes a temporary a killed back-end left a day ago, and a release as a whole', async () => {
    const {a, release} = weeksOfUse()
    age(join(cache, '.partial.Abc12345'), 2)
    // A checksum file's download, cut off by the kill.
    writeFileSync(join(cache, '.sums.Def67890'), 'half')
    age(join(cache, '.sums.Def67890'), 2)
    const result = await cacheOf({dryRun: false, olderThanDays: 25})
    expect(result.entries.filter((x) => x.decision === 'removed').map((x) => x.name).sort()).toEqual(['.partial.Abc12345', '.sums.Def67890', a, release].sort())
    expect(readdirSync(cache).filter((n) => /^\.(remove|partial|sums)\./.test(n))).toEqual([])
  })

  it('an empty or missing cache, and a cache directory with shell in its name', async () => {
    const missing = await cacheOf()
    expect(missing).toMatchObject({exists: false, entries: [], totalBytes: 0})
    expect(formatCacheList(missing)).toContain('It does not exist yet')
    const odd = join(work, `c $(touch INJECTED) 'q'`)
    mkdirSync(odd)
    writeFileSync(join(odd, 'f'.repeat(64)), 'ffff')
    const result = await cacheOf({dryRun: false}, {HPC_ANNEX_CACHE: odd})
    expect(result.cacheDir).toBe(odd)
    expect(result.entries.map((x) => [x.name, x.decision])).toEqual([['f'.repeat(64), 'removed']])
    expect(readdirSync(work).filter((n) => n.startsWith('INJECTED'))).toEqual([])
  })

  it('the list: a table least recently used first, the total, what is in use, and the space', async () => {
    weeksOfUse()
    writeFileSync(join(stubs, 'quota'), "#!/bin/sh\necho 'Disk quotas for user alice (uid 1000):'\necho '  /dev/sda1  120M  10000M  12000M'\n", {mode: 0o755})
    const result = await cacheOf()
    expect(result.quota).toEqual(['Disk quotas for user alice (uid 1000):', '  /dev/sda1  120M  10000M  12000M'])
    const text = formatCacheList(result)
    const lines = text.split('\n')
    expect(lines[0]).toBe(`The cache of anvil on alice@login.example: ${cache}`)
    expect(lines[1]).toMatch(/^SIZE +LAST USED +IN USE +ANNEXES +OBJECT$/)
    expect(lines[2]).toMatch(/^1000 B +60 days ago +linked +- +object sha256 [0-9a-f]{12}$/)
    expect(lines[3]).toMatch(/^2\.0 KiB +50 days ago +1 pilot dir +running +image c\.sif/)
    expect(text).toMatch(/^Total: .* in 8 entries\.$/m)
    expect(text).toContain(`In use by pilot directories that still exist (never pruned):\n    image c.sif (sha256 `)
    expect(text).toContain('Quota (quota -s):\n    Disk quotas for user alice (uid 1000):\n')
    expect(text).toMatch(/^File system .* \(on .*\): .* used of .*, .* available \(df\)\.$/m)
  })

  it('logs in where create would: the flags, else the admin\'s overrides, else the machine file', async () => {
    const fake: FakeCondor = createFakeCondor()
    const restore = fake.install()
    try {
      fake.update((s) => {
        s.config.HPC_ANNEX_ANVIL_USER_NAME = 'x123'
        s.config.HPC_ANNEX_ANVIL_HOST_NAME = 'login07.anvil.example'
      })
      const login = localLogin()
      await showCache({system: 'anvil', login})
      await showCache({system: 'Anvil', loginHost: 'login03.anvil.example', login: {...login, sshConfigFile: '/etc/ssh-test.conf'}})
      fake.update((s) => {
        delete s.config.HPC_ANNEX_ANVIL_USER_NAME
        delete s.config.HPC_ANNEX_ANVIL_HOST_NAME
      })
      await showCache({system: 'expanse', login})
      expect(login.targets).toEqual([
        {host: 'login07.anvil.example', user: 'x123'},
        {host: 'login03.anvil.example', user: 'x123', configFile: '/etc/ssh-test.conf'},
        {host: 'login.expanse.sdsc.edu'},
      ])
    } finally {
      restore()
      fake.cleanup()
    }
    await expect(showCache({system: 'nowhere', loginHost: 'h', loginName: 'u', login: localLogin()})).rejects.toThrow(/^Unknown system 'nowhere'; systems: /)
  })

  it('a failing remote command is a one-line error naming the login node', async () => {
    const broken = join(work, 'bin')
    mkdirSync(broken)
    // No bash on the "login node": the command fails before the script runs.
    writeFileSync(join(broken, 'bash'), '#!/bin/sh\necho "bash: cannot run" >&2\nexit 127\n', {mode: 0o755})
    const options: CacheOptions = {system: 'anvil', loginHost: 'login.example', loginName: 'alice', login: {
      open: () => new LocalTransport(env({PATH: `${broken}:/usr/bin:/bin`}), work),
      interaction: () => ({answer: async () => { throw new Error('no prompts expected') }}),
    }}
    // LocalTransport runs `bash -c` itself; the command's own `bash -c` finds the broken one.
    await expect(showCache(options)).rejects.toThrow(/^Reading the cache on alice@login\.example failed \(exit status 127\): bash: cannot run$/)
  })
})

describe('cache_max_bytes: room is made before a request\'s objects arrive', {timeout: 60_000}, () => {
  const script = (max: number, objects: Map<string, number>) => cacheEnforceCommand({maxBytes: max, system: 'anvil', objects})

  it('removes what no pilot uses, least recently used first, until the cache and what arrives fit; never the request\'s objects, a pilot\'s, or the last minutes\'', () => {
    const live = join(scratch, 'pilot.Running1')
    mkdirSync(live)
    const old = object(1000, 'o')
    note(old, 'x', join(scratch, 'gone'), 'image', 'old.sif', 30)
    const older = object(1000, 'p')
    note(older, 'x', join(scratch, 'gone'), 'image', 'older.sif', 40)
    const needed = object(1000, 'n')
    note(needed, 'x', join(scratch, 'gone'), 'tarball', 'HTCondor', 90)
    const running = object(1000, 'r')
    note(running, 'x', live, 'image', 'running.sif', 80)
    const fresh = object(1000, 'f') // just arrived for another request: no notes yet
    const arriving = 'a'.repeat(64)
    // 5000 held + 1500 arriving, at most 5600: one object must go, the least recently used that may.
    const result = run(script(5600, new Map([[needed, 1000], [arriving, 1500]])))
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    expect(result.stdout).toBe("Removed 1 object(s) (1000 B) from the login node's cache, least recently used first, to keep it within cache_max_bytes (5.4 KiB).\n")
    expect(entryNames()).toEqual([old, needed, running, fresh].sort())
    expect(existsSync(join(cache, '.uses', older))).toBe(false)

    // It cannot fit: everything left is needed, a pilot's, or recent. A warning, and the request goes on.
    const tight = run(script(1000, new Map([[needed, 1000]])))
    expect(tight.status).toBe(0)
    expect(entryNames()).toEqual([needed, running, fresh].sort())
    expect(controlLines(tight.stdout).WARNING).toMatch(
      new RegExp(`^the login node's cache \\(${cache}\\) holds 2\\.9 KiB, more than cache_max_bytes \\(1000 B\\): the rest is used by running pilots or was used in the last ${CACHE_RECENT_SECONDS / 60} minutes \\(hpc-annex cache anvil lists it\\)$`),
    )
    // Within the limit: nothing is said, nothing removed.
    const roomy = run(script(1 << 30, new Map()))
    expect(roomy).toEqual({status: 0, stdout: '', stderr: ''})
  })

  it('runs in the one command of a create, before the cache question, and a failure there never stops the request', async () => {
    const unused = object(2000, 'u')
    note(unused, 'x', join(scratch, 'gone'), 'image', 'u.sif', 30)
    const mine = object(100, 'm')
    note(mine, 'x', join(scratch, 'gone'), 'image', 'm.sif', 30)
    const files: RenderedFile[] = [{path: 'backend.sh', mode: 0o700, content: 'echo back-end ran; ls -A "$HOME/.hpc-annex/cache"\n'}]
    const bundle = await buffer(bundleStream(files, {token: Buffer.from('t'), password: Buffer.from('p')}, {filesAsOneEntry: true}))
    const limit = {maxBytes: 1000, system: 'anvil', objects: new Map([[mine, 100]])}
    const command = bootstrapCommand([mine], {cacheLimit: limit})
    expect(bootstrapCommand([mine])).not.toContain('hpc-annex-cache')
    const result = run(command, {}, bundle)
    expect(result.status).toBe(0)
    const lines = result.stdout.split('\n')
    expect(lines[0]).toMatch(/^Removed 1 object\(s\)/)
    expect(lines[1]).toBe(`=-.-= CACHED ${mine} 100`)
    expect(lines[2]).toBe('=-.-= CACHE_END')
    expect(lines).toContain('back-end ran')
    expect(entryNames()).toEqual([mine])

    // A cache it cannot use: the request still runs.
    const blocked = join(work, 'not-a-dir')
    writeFileSync(blocked, '')
    const failing = run(command, {HPC_ANNEX_CACHE: join(blocked, 'cache')}, bundle)
    expect(failing.status).toBe(0)
    expect(failing.stdout).toContain('back-end ran')
  })

  it('is in the machine file: a positive whole number of bytes, on the Plan for the back-end', () => {
    const base = readFileSync(join(projectPath('backends'), 'anvil.toml'), 'utf8')
    const dir = join(work, 'machines')
    mkdirSync(dir)
    writeFileSync(join(dir, 'capped.toml'), `cache_max_bytes = 20000000000\n${base}`)
    const catalog = loadCatalog([projectPath('backends'), dir])
    expect(catalog.problems).toEqual([])
    expect(catalog.systems.get('capped')?.cache_max_bytes).toBe(20_000_000_000)
    expect(planFor({target: 'wholenode@anvil'}).system.cacheMaxBytes).toBeUndefined()
    for (const bad of ['0', '-5', '1.5', '"20G"']) {
      const parsed = parseMachineFile(join(dir, 'bad.toml'), `cache_max_bytes = ${bad}\n${base}`)
      expect(parsed.problems.map((p) => `${p.line}: ${p.key}`)).toEqual(['1: cache_max_bytes'])
    }
  })
})

describe('the script and its pieces', () => {
  it('passes bash -n and shellcheck; its arguments are quoted words and numbers only', () => {
    const file = join(projectPath('templates'), 'cache.sh')
    expect(spawnSync('bash', ['-n', file]).status).toBe(0)
    const check = spawnSync('shellcheck', ['--shell=bash', '--severity=style', file], {encoding: 'utf8'})
    if (check.error === undefined) expect(check.stdout).toBe('')
    expect(cachePruneCommand({dryRun: true, olderThanSeconds: 86400, keepBytes: 5})).toMatch(/ hpc-annex-cache 'prune' '1' '86400' '5'$/)
    expect(cacheListCommand()).toMatch(/ hpc-annex-cache 'list'$/)
    expect(() => cachePruneCommand({dryRun: false, keepBytes: -1})).toThrow(TypeError)
    expect(() => cacheEnforceCommand({maxBytes: 1, system: "a'b", objects: new Map()})).toThrow(TypeError)
    expect(() => cacheEnforceCommand({maxBytes: 1, system: 'a', objects: new Map([['$(x)', 1]])})).toThrow(TypeError)
  })

  it('reads a report defensively: unknown lines and values are skipped', () => {
    const report = parseCacheReport(
      ['cache\t/h/c\t1\t100', `entry\t${'a'.repeat(64)}\tweird\tNaN\t5\tbogus\tnope\tx,y\tx:/p q bad\t3\tlabel\twith tab`, 'junk', 'df\tfs\t10\t4\t6\t/mnt/a b'].join('\n'),
    )
    expect(report).toEqual({
      cacheDir: '/h/c',
      exists: true,
      now: 100,
      quota: [],
      fileSystem: {name: 'fs', bytes: 10, usedBytes: 4, availableBytes: 6, mountedOn: '/mnt/a b'},
      entries: [{name: 'a'.repeat(64), kind: 'other', bytes: 0, lastUse: 5, annexes: ['x', 'y'], usedBy: [{annex: 'x', pilotDir: '/p'}], links: 3, inUse: true, label: 'label with tab'}],
    })
  })

  it('byte counts and days as the flags take them', () => {
    expect(parseByteCount('20G', '--keep-bytes')).toBe(20 * 1024 ** 3)
    expect(parseByteCount('500MiB', '--keep-bytes')).toBe(500 * 1024 ** 2)
    expect(parseByteCount('1.5k', '--keep-bytes')).toBe(1536)
    expect(parseByteCount('12345', '--keep-bytes')).toBe(12345)
    for (const bad of ['', '-1', '1.5', '20X', 'lots']) expect(() => parseByteCount(bad, '--keep-bytes')).toThrow(/^--keep-bytes '.*' is not a number of bytes .*; change --keep-bytes\.$/)
    expect(parseDays('0.5', '--older-than')).toBe(0.5)
    for (const bad of ['', '-1', 'week']) expect(() => parseDays(bad, '--older-than')).toThrow(/^--older-than '.*' is not a number of days/)
    expect([0, 1023, 1024, 1536, 10 * 1024 ** 3, 300 * 1024 ** 2].map(formatBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10.0 GiB', '300 MiB'])
  })

  it('the verb: --older-than, --keep-bytes and --dry-run go with --prune (exit 1, naming the flag)', () => {
    for (const flag of [['--older-than', '3'], ['--keep-bytes', '1G'], ['--dry-run']]) {
      const r = runCli(['cache', 'anvil', ...flag])
      expect(r.status).toBe(1)
      expect(r.stderr).toBe(`Error: ${flag[0]} goes with --prune; add --prune, or drop ${flag[0]}.\n`)
    }
    const bad = runCli(['cache', 'anvil', '--prune', '--keep-bytes', 'lots'])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(/^Error: --keep-bytes 'lots' is not a number of bytes/)
    const help = runCli(['cache', '--help'])
    expect(help.stdout).toContain('--older-than=DAYS')
  })
})
