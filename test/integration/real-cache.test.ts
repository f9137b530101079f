/**
 * The login node's cache on the loopback site, with real HTCondor: two
 * creates with different images fill it; `hpc-annex cache` lists them, with
 * the annexes that used them and which a running pilot uses; a prune with
 * --older-than and --keep-bytes (and --dry-run first) takes the ended
 * request's images, least recently used first, and leaves every object of the
 * pilot that still runs.
 *
 * Then a machine with a small cache_max_bytes: the next create makes room
 * before its image arrives, removing the least recently used object and never
 * the image of a pilot that still runs.
 *
 * hpcuser's cache is shared with every other test of the site (the HTCondor
 * release among them), so this test's images are made to look unused for 20
 * years or more, --older-than 3650 lets nothing else be removed, and the
 * limit leaves room for half the evicted object to spare.
 */
import {execFileSync} from 'node:child_process'
import {chmodSync, chownSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {CacheOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'
import {describeOnRealHTCondor} from '../site/helpers.js'
import {ROOT} from './annex-site.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

const MiB = 1024 * 1024

describeOnRealHTCondor("the login node's cache", () => {
  let a: RealAnnexSite
  const images: Record<string, {path: string; sha256: string; bytes: number}> = {}
  const batchJobs: string[] = []
  /** Objects the test put into the cache itself. */
  const placed: string[] = []
  beforeAll(() => {
    a = realAnnexSite()
    // Random bytes: digests no other test has. The large one is what --keep-bytes is measured against.
    for (const [name, mib] of [['large', 96], ['small', 1], ['running', 1], ['capped-running', 1], ['capped-second', 1]] as const) {
      const path = join(a.home, `${name}.sif`)
      execFileSync('bash', ['-c', `head -c ${mib * MiB} /dev/urandom > '${path}'`])
      chownSync(path, a.ap.uid, a.ap.gid)
      images[name] = {path, sha256: execFileSync('sha256sum', [path], {encoding: 'utf8'}).split(' ')[0]!, bytes: mib * MiB}
    }
  })
  afterAll(() => {
    if (!a) return
    for (const id of batchJobs) a.onSite(`scancel ${id}`)
    // What this test put in the cache goes (the release and tarball stay: other tests use them).
    const ours = [...Object.values(images).map((i) => i.sha256), ...placed]
    a.onSite(`cd ~/.hpc-annex/cache && rm -f -- ${ours.flatMap((sha) => [sha, `.uses/${sha}`]).join(' ')}`)
    a.close()
  })

  /** A container job for `annex` with `image`, queued as the user would. */
  const containerJob = (annex: string, image: string, n: number): void => {
    const file = join(a.home, `cache-${annex}-${n}.sub`)
    writeFileSync(
      file,
      ['universe = container', `container_image = ${image}`, 'executable = /bin/true', 'request_cpus = 1', 'request_memory = 64', `MY.TargetAnnexName = "${annex}"`, 'queue', ''].join('\n'),
    )
    chownSync(file, a.ap.uid, a.ap.gid)
    const r = a.condor('condor_submit', ['-terse', file])
    expect(r.code, r.stderr).toBe(0)
  }

  const create = async (annex: string, system = 'sandbox', env: NodeJS.ProcessEnv = {}): Promise<{pilotDir: string; batchJobId: string}> => {
    const r = await a.cli(['create', annex, `compute@${system}`, '--nodes', '1', '--condor-tarball', a.tarball, '--json'], env)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const made = JSON.parse(r.stdout) as {pilotDir: string; batchJobId: string}
    batchJobs.push(made.batchJobId)
    return made
  }

  const cache = async (args: string[] = []): Promise<CacheOutput> => {
    const r = await a.cli(['cache', 'sandbox', ...args, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    return expectContract('cache', r.stdout) as CacheOutput
  }
  const entry = (result: CacheOutput, name: string) => result.entries.find((e) => e.name === name)
  const onSiteOk = (command: string) => {
    const r = a.onSite(command)
    expect(r.code, r.stderr).toBe(0)
    return r.stdout
  }

  it('lists what two creates staged; a prune takes the ended request\'s images, least recently used first, and keeps the running pilot\'s', async () => {
    containerJob('cache-ended', images.large!.path, 1)
    containerJob('cache-ended', images.small!.path, 2)
    containerJob('cache-running', images.running!.path, 3)
    const ended = await create('cache-ended')
    const running = await create('cache-running')

    // The first request's pilot ends (its batch job removes its directory); the second's runs.
    onSiteOk(`scancel ${ended.batchJobId}`)
    await until('the ended pilot directory to go', () => a.onSite(`test -e '${ended.pilotDir}'`).code !== 0, 90_000)
    await until('the second batch job to run', () => a.onSite(`squeue -h -j ${running.batchJobId} -o %T`).stdout.trim() === 'RUNNING', 90_000)

    const listed = await cache()
    expect(listed.system).toBe('sandbox')
    expect(listed.cacheDir).toBe('/home/hpcuser/.hpc-annex/cache')
    expect(entry(listed, images.large!.sha256)).toMatchObject({kind: 'image', label: 'large.sif', sizeBytes: images.large!.bytes, annexes: ['cache-ended'], usedBy: [], inUse: false})
    expect(entry(listed, images.small!.sha256)).toMatchObject({kind: 'image', label: 'small.sif', annexes: ['cache-ended'], inUse: false})
    const pilot = {annexName: 'cache-running', pilotDir: running.pilotDir}
    expect(entry(listed, images.running!.sha256)).toMatchObject({kind: 'image', label: 'running.sif', annexes: ['cache-running'], usedBy: [pilot], inUse: true})
    const tarball = sha256Of(a.tarball)
    for (const name of [tarball, `${tarball}.release`]) {
      expect(entry(listed, name)!.annexes).toEqual(expect.arrayContaining(['cache-running', 'cache-ended']))
      expect(entry(listed, name)!.usedBy).toContainEqual(pilot)
    }
    expect(entry(listed, `${tarball}.release`)!.kind).toBe('release')
    expect(listed.totalBytes).toBe(listed.entries.reduce((sum, e) => sum + e.sizeBytes, 0))
    expect(listed.totalBytes).toBeGreaterThan(images.large!.bytes)
    expect(listed.fileSystem?.availableBytes).toBeGreaterThan(0)
    const text = await a.cli(['cache', 'sandbox'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^SIZE +LAST USED +IN USE +ANNEXES +OBJECT$/m)
    expect(text.stdout).toMatch(/^96\.0 MiB +.* ago +- +cache-ended +image large\.sif \(sha256 [0-9a-f]{12}\)$/m)
    expect(text.stdout).toContain(`image running.sif (sha256 ${images.running!.sha256.slice(0, 12)}): ${running.pilotDir} (annex cache-running)`)
    expect(text.stdout).toMatch(/^Total: .* in \d+ entries\.$/m)

    // This test's images, as if unused for decades: the large one longest.
    const backdate = (sha: string, years: number) => onSiteOk(`touch -d '${years} years ago' ~/.hpc-annex/cache/.uses/${sha}`)
    backdate(images.large!.sha256, 30)
    backdate(images.small!.sha256, 25)
    backdate(images.running!.sha256, 40)

    // --keep-bytes: enough that removing the large image alone fits (half of it to spare for other tests' objects arriving meanwhile).
    const keep = (await cache()).totalBytes - images.large!.bytes / 2
    const bounds = ['--prune', '--older-than', '3650', '--keep-bytes', String(keep)]
    const dry = await cache([...bounds, '--dry-run'])
    expect(dry.prune).toMatchObject({dryRun: true, removed: 1, removedBytes: images.large!.bytes, failed: 0})
    expect(entry(dry, images.large!.sha256)!.decision).toBe('would-remove')
    expect(entry(dry, images.small!.sha256)).toMatchObject({decision: 'kept', reason: 'within-limit'})
    expect(entry(dry, images.running!.sha256)).toMatchObject({decision: 'kept', reason: 'in-use'})
    expect(onSiteOk(`ls ~/.hpc-annex/cache`)).toContain(images.large!.sha256)

    const pruned = await a.cli(['cache', 'sandbox', ...bounds])
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(pruned.stdout).toMatch(/^Removed 1 entry \(96\.0 MiB\) from the cache of sandbox on .*\.$/m)
    expect(pruned.stdout).toMatch(/^ {4}removed {2}image large\.sif \(sha256 [0-9a-f]{12}\), 96\.0 MiB, last used \d+ days ago$/m)
    expect(pruned.stdout).toMatch(/^ {4}kept {2}image small\.sif .*: the cache is within --keep-bytes .* without removing it$/m)
    expect(pruned.stdout).toContain(`kept  image running.sif (sha256 ${images.running!.sha256.slice(0, 12)}), 1.0 MiB: in use by ${running.pilotDir} (annex cache-running)`)

    // --older-than alone: the small image goes too; the running pilot's image, release and tarball stay.
    const rest = await cache(['--prune', '--older-than', '3650'])
    expect(rest.entries.filter((e) => e.decision === 'removed').map((e) => e.name)).toEqual([images.small!.sha256])
    expect(entry(rest, images.running!.sha256)).toMatchObject({decision: 'kept', reason: 'in-use'})
    const left = onSiteOk('ls ~/.hpc-annex/cache')
    expect(left).not.toContain(images.large!.sha256)
    expect(left).not.toContain(images.small!.sha256)
    for (const name of [images.running!.sha256, tarball, `${tarball}.release`]) expect(left).toContain(name)
    // The running pilot's image is still whole, in the cache and in its pilot directory.
    expect(onSiteOk(`sha256sum ~/.hpc-annex/cache/${images.running!.sha256} '${running.pilotDir}/sif/running.sif' | cut -d' ' -f1 | sort -u`).trim()).toBe(images.running!.sha256)
  })

  it('with a small cache_max_bytes, the next create removes the least recently used object and keeps the one a running pilot uses', async () => {
    containerJob('capped-running', images['capped-running']!.path, 4)
    const running = await create('capped-running')
    // An object no pilot uses, as if last used 50 years ago; the running pilot's image, 60 years (older still).
    const old = {bytes: 64 * MiB, sha256: ''}
    old.sha256 = onSiteOk(
      [
        'set -e',
        'f=$(mktemp ~/.hpc-annex/capped.XXXXXXXX)',
        `head -c ${old.bytes} /dev/urandom > "$f"`,
        'sha=$(sha256sum "$f" | cut -c1-64)',
        'mv -- "$f" ~/.hpc-annex/cache/"$sha"',
        `printf '%s capped-old /nonexistent/pilot.gone image old.sif\n' "$(date +%s)" > ~/.hpc-annex/cache/.uses/"$sha"`,
        `touch -d '50 years ago' ~/.hpc-annex/cache/.uses/"$sha"`,
        `touch -d '60 years ago' ~/.hpc-annex/cache/.uses/${images['capped-running']!.sha256}`,
        'echo "$sha"',
      ].join('\n'),
    ).trim()
    placed.push(old.sha256)
    expect(old.sha256).toMatch(/^[0-9a-f]{64}$/)

    // The limit: the second image fits only once the old object goes (half of it to spare for other tests' objects).
    containerJob('capped-second', images['capped-second']!.path, 5)
    const before = await cache()
    expect(entry(before, images['capped-running']!.sha256)).toMatchObject({inUse: true})
    const max = before.totalBytes + images['capped-second']!.bytes - old.bytes / 2
    const machines = mkdtempSync(join(a.home, 'machines-'))
    chmodSync(machines, 0o755)
    const sandbox = readFileSync(join(ROOT, 'test', 'site', 'machines', 'sandbox.toml'), 'utf8')
    writeFileSync(join(machines, 'capped.toml'), sandbox.replace('Loopback sandbox', 'Capped sandbox').replace(/^(name = .*)$/m, `$1\ncache_max_bytes = ${max}`))
    await create('capped-second', 'capped', {HPC_ANNEX_MACHINES: `${machines}:${join(ROOT, 'test', 'site', 'machines')}`})

    const after = await cache()
    expect(entry(after, old.sha256)).toBeUndefined()
    expect(entry(after, images['capped-running']!.sha256)).toMatchObject({inUse: true, usedBy: [{annexName: 'capped-running', pilotDir: running.pilotDir}]})
    expect(entry(after, images['capped-second']!.sha256)).toMatchObject({kind: 'image', label: 'capped-second.sif', annexes: ['capped-second']})
    expect(after.totalBytes).toBeLessThanOrEqual(max)
  })
})

function sha256Of(path: string): string {
  return execFileSync('sha256sum', [path], {encoding: 'utf8'}).split(' ')[0]!
}
