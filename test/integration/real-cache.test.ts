/**
 * The login node's cache on the loopback site, with real HTCondor: two
 * creates with different images fill it; `hpc-annex cache` lists them, with
 * the annexes that used them and which a running pilot uses; a prune with
 * --older-than and --keep-bytes (and --dry-run first) takes the ended
 * request's images, least recently used first, and leaves every object of the
 * pilot that still runs.
 *
 * hpcuser's cache is shared with every other test of the site (the HTCondor
 * release among them), so this test's images are made to look unused for 20
 * years or more, and --older-than 3650 lets nothing else be removed.
 */
import {execFileSync} from 'node:child_process'
import {chownSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import type {CacheOutput} from '../../src/cli/json/schemas.js'
import {expectContract} from '../fixtures/json-contract.js'
import {describeOnRealHTCondor} from '../site/helpers.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

const MiB = 1024 * 1024

describeOnRealHTCondor("the login node's cache", () => {
  let a: RealAnnexSite
  const images: Record<string, {path: string; sha256: string; bytes: number}> = {}
  const batchJobs: string[] = []
  beforeAll(() => {
    a = realAnnexSite()
    // Random bytes: digests no other test has. The large one is what --keep-bytes is measured against.
    for (const [name, mib] of [['large', 96], ['small', 1], ['running', 1]] as const) {
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
    a.onSite(`cd ~/.hpc-annex/cache && rm -f -- ${Object.values(images).flatMap((i) => [i.sha256, `.uses/${i.sha256}`]).join(' ')}`)
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

  const create = async (annex: string): Promise<{pilotDir: string; batchJobId: string}> => {
    const r = await a.cli(['create', annex, 'compute@sandbox', '--nodes', '1', '--condor-tarball', a.tarball, '--json'])
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
})

function sha256Of(path: string): string {
  return execFileSync('sha256sum', [path], {encoding: 'utf8'}).split(' ')[0]!
}
