/**
 * A create with no --condor-tarball on real HTCondor: the login node
 * downloads the pilots' HTCondor (the Access Point's own version) from a
 * tree laid out like HTCondor's (<series>/<version>/release/...), verifies it
 * against the checksum file published next to it, and real pilots of that
 * version join. The tree is a local HTTP server on 127.0.0.1: the site's sshd
 * (the login node) shares this machine's network, so it reaches it; the
 * Access Point's ANNEX_TARBALL_URL_BASE points there.
 */
import {randomBytes, createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {deflateRawSync} from 'node:zlib'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnRealHTCondor} from '../site/helpers.js'
import {expectContract} from '../fixtures/json-contract.js'
import {added} from './annex-site.js'
import {realAnnexSite, until, type RealAnnexSite} from './real-site.js'

/**
 * The real release with an empty gzip member appended (a unique header time):
 * it unpacks to the very same tree, but its sha256 is new on every run, so
 * the login node's cache (which other tests fill with the plain tarball)
 * cannot answer for it and the download really happens.
 */
function uniqueCopy(tarball: string): Buffer {
  const header = Buffer.from([0x1f, 0x8b, 8, 0, ...randomBytes(4), 0, 3])
  const trailer = Buffer.alloc(8) // CRC32 and size of nothing
  return Buffer.concat([readFileSync(tarball), header, deflateRawSync(Buffer.alloc(0)), trailer])
}

describeOnRealHTCondor('the pilots\' HTCondor downloaded on the login node', () => {
  let a: RealAnnexSite
  let server: Server
  let base: string
  /** Path → body of the tree served; every request's method and path. */
  const served = new Map<string, Buffer | string>()
  const requests: string[] = []
  let version: string
  let body: Buffer
  let digest: string
  let name: string

  beforeAll(async () => {
    a = realAnnexSite()
    version = a.ap.release.version
    body = uniqueCopy(a.tarball)
    digest = createHash('sha256').update(body).digest('hex')
    // The build for what the login node's /etc/os-release says (the sandbox allows Debian12 only).
    name = `condor-${version}-x86_64_Debian12-stripped.tar.gz`
    const series = version.split('.')[1] === '0' ? `${version.split('.')[0]}.0` : `${version.split('.')[0]}.x`
    const release = `${series}/${version}/release`
    served.set(`/good/${release}/${name}`, body)
    served.set(`/good/${release}/sha256sum.txt`, `${'0'.repeat(64)}  condor-${version}-x86_64_AlmaLinux9-stripped.tar.gz\n${digest}  ${name}\n`)
    served.set(`/wrong/${release}/${name}`, body)
    served.set(`/wrong/${release}/sha256sum.txt`, `${'e'.repeat(64)}  ${name}\n`)
    served.set(`/unpublished/${release}/${name}`, body)
    server = createServer((request, response) => {
      requests.push(`${request.method} ${request.url}`)
      const content = served.get(request.url ?? '')
      response.writeHead(content === undefined ? 404 : 200, {'content-type': 'application/octet-stream'})
      response.end(request.method === 'HEAD' ? undefined : content)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    a?.close()
    // The object this file put in the login node's cache goes (its sha256 is this run's alone).
    if (digest) a?.onSite(`rm -rf ~/.hpc-annex/cache/${digest} ~/.hpc-annex/cache/${digest}.release ~/.hpc-annex/cache/.uses/${digest} ~/.hpc-annex/cache/.uses/${digest}.release`)
    await new Promise((resolve) => server?.close(resolve))
  })

  const create = (annex: string, tree: string, extra: string[] = []) =>
    a.cli(['create', annex, 'compute@sandbox', '--nodes', '1', '--lifetime', '1800', ...extra], {_CONDOR_ANNEX_TARBALL_URL_BASE: `${base}/${tree}/`})
  const cached = () => a.onSite('ls -A ~/.hpc-annex/cache 2>/dev/null').stdout.split('\n').filter(Boolean)
  const tarballUrl = (tree: string, v = version) => `${base}/${tree}/${v.split('.')[1] === '0' ? `${v.split('.')[0]}.0` : `${v.split('.')[0]}.x`}/${v}/release/condor-${v}-x86_64_Debian12-stripped.tar.gz`

  /** A refused create: a one-line error, exit 2, and nothing left behind here or on the site. */
  async function refused(annex: string, tree: string, extra: string[] = []): Promise<string> {
    await a.submitJob(annex)
    const before = a.leftovers()
    const run = await create(annex, tree, extra)
    expect(run.code, run.stdout + run.stderr).toBe(2)
    // Progress lines (plain, not on a terminal), then the error: once, on one line.
    const lines = run.stderr.trim().split('\n').filter((l) => /error/i.test(l))
    expect(lines, run.stderr).toHaveLength(1)
    expect(run.stderr.trim().split('\n').at(-1)).toBe(lines[0])
    expect(lines[0]).toMatch(/^Error: Staging and submitting the SLURM job on hpc failed: /)
    // Other runs share the site: this request's batch job is found by its name, its pilot directory by what the
    // back-end reported to the (removed) state job; a bundle directory of another run goes when that run ends.
    expect(a.leftovers().jobs.filter((job) => job.startsWith(`hpc-annex.${annex}.`))).toEqual([])
    const removed = a.condor('condor_q', ['-constraint', `hpc_annex_name == "${annex}"`, '-af', 'hpc_annex_PILOT_DIR']).stdout.trim() ||
      a.condor('condor_history', ['-constraint', `hpc_annex_name == "${annex}"`, '-af', 'hpc_annex_PILOT_DIR']).stdout.trim()
    expect(removed).toMatch(/\/pilot\.[A-Za-z0-9]+$/)
    expect(a.onSite(`test -e '${removed}' && echo left || echo gone`).stdout.trim()).toBe('gone')
    await until('the staging directories of this request to go', () => added(before, a.leftovers()).staging.length === 0, 60_000)
    // The refused tarball did not enter the cache (its temporary files are the unit tests' to count: other runs share this cache).
    expect(cached().filter((entry) => entry.includes(digest))).toEqual([])
    expect(a.jobs(`hpc_annex_name == "${annex}" && JobUniverse == 12 && JobStatus =!= 3`)).toEqual([])
    return lines[0]!
  }

  it('refuses a tarball whose published sha256 differs, naming both', async () => {
    const line = await refused('dlwrong', 'wrong')
    expect(line).toContain(`${tarballUrl('wrong')} has sha256 ${digest}, expected ${'e'.repeat(64)} (published in ${base}/wrong/`)
    expect(line).toContain('--condor-tarball')
    expect(requests).toContain(`GET ${new URL(tarballUrl('wrong')).pathname}`)
  })

  it('refuses a tarball no checksum file vouches for, without downloading it', async () => {
    const line = await refused('dlmissing', 'unpublished')
    const sums = tarballUrl('unpublished').replace(/[^/]*$/, 'sha256sum.txt')
    expect(line).toContain(`no sha256 to verify ${tarballUrl('unpublished')}: ${sums}: HTTP 404; refused.`)
    expect(line).toContain('--condor-tarball')
    expect(requests).not.toContain(`GET ${new URL(tarballUrl('unpublished')).pathname}`)
  })

  it('names the URL and the HTTP status when the tree has no such version', async () => {
    const line = await refused('dlnoversion', 'good', ['--condor-version', '25.99.0'])
    expect(line).toContain(`could not download HTCondor on the login node: cannot download HTCondor 25.99.0 for Debian12 from ${tarballUrl('good', '25.99.0')} (HTTP 404); stage a tarball with --condor-tarball`)
  })

  it('downloads the Access Point\'s version, verifies it, and runs real pilots of that version', async () => {
    await a.submitJob('dl')
    const run = await create('dl', 'good', ['--json'])
    expect(run.code, run.stderr).toBe(0)
    const result = expectContract('create', run.stdout) as {batchJobId: string; pilotDir: string; notices: string[]; htcondor: {version: string; versionFrom: string; urlBaseFrom: string}}
    expect(result.htcondor).toMatchObject({version, versionFrom: 'Access Point', urlBaseFrom: 'ANNEX_TARBALL_URL_BASE'})
    const sums = tarballUrl('good').replace(/[^/]*$/, 'sha256sum.txt')
    expect(result.notices).toContainEqual(expect.stringMatching(new RegExp(`^the pilots run HTCondor ${version.replaceAll('.', '\\.')} for Debian12 \\(the login node runs Debian[^)]*\\)\\): `)))
    expect(result.notices.join('\n')).toContain(`${tarballUrl('good')}, verified against the sha256 published in ${sums}`)
    expect(requests).toEqual(expect.arrayContaining([`GET ${new URL(sums).pathname}`, `GET ${new URL(tarballUrl('good')).pathname}`]))
    expect(cached()).toContain(digest)

    // The pilot joins, and its ads say which HTCondor it runs: the Access Point's.
    // (Other runs' annexes may hold the site's nodes for a while: the batch job waits its turn.)
    const slots = await until('the pilot to join', () => {
      const ads = a.ads('dl')
      return ads.length > 0 ? ads : undefined
    }, 300_000)
    for (const ad of slots) expect(String(ad.CondorVersion)).toMatch(new RegExp(`^\\$CondorVersion: ${version.replaceAll('.', '\\.')} `))
    const ap = a.condor('condor_version', []).stdout
    expect(ap).toContain(`$CondorVersion: ${version} `)

    const off = await a.cli(['shutdown', 'dl'])
    expect(off.code, off.stderr).toBe(0)
    await until('the pilots to leave', () => a.ads('dl', 'master').length === 0, 60_000)
    await until('pilot dir gone', () => a.onSite(`test -e '${result.pilotDir}' || echo gone`).stdout.includes('gone'), 60_000)
  }, 480_000)
})
