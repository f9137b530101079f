import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {buffer} from 'node:stream/consumers'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {bootstrapCommand, bundleStream, parseCachedObject, renderFiles, sha256File, sifEntryName, writeBundle} from '../../src/backend/index.js'
import {controlLines, fakeCondorTarball, makeStubs, planFor, runBash, sha256, tempDir} from './render-helpers.js'

let work: string
let stubs: string

beforeEach(() => {
  work = tempDir('bundle')
  stubs = makeStubs()
})
afterEach(() => {
  rmSync(work, {recursive: true, force: true})
  rmSync(stubs, {recursive: true, force: true})
})

const ap = {requestId: 'ap.example.org#9.0#1700000000', collector: 'ap.example.org:9618?sock=ap_collector', scheddName: 'ap.example.org'}

/** `tar -tv` as [mode, path] pairs. */
function listing(file: string): [string, string][] {
  return execFileSync('tar', ['-tvf', file], {encoding: 'utf8'})
    .trim()
    .split('\n')
    .map((line) => {
      const fields = line.split(/\s+/)
      return [fields[0]!, fields.at(-1)!]
    })
}

/** A login node's home and a tar of `files` (in order) for the bootstrap to unpack. */
/** A bundle as create streams it (files and secrets as one entry), holding these files; and a home for the bootstrap. */
async function bootstrapFixture(files: Record<string, string>): Promise<{home: string; archive: Buffer}> {
  const home = join(work, 'home')
  mkdirSync(home)
  const rendered = Object.entries(files).map(([path, content]) => ({path, mode: path.endsWith('.sh') ? 0o700 : 0o600, content}))
  const archive = await buffer(bundleStream(rendered, {token: Buffer.from('T'), password: Buffer.from('P')}, {filesAsOneEntry: true}))
  return {home, archive}
}

describe('the self-service bundle (--bundle)', () => {
  it('holds the rendered files, pilots, secrets, images and staged HTCondor, with their modes, under one directory', async () => {
    const tarball = fakeCondorTarball(work)
    const digest = await sha256File(tarball)
    expect(digest).toBe(sha256(tarball))
    await expect(sha256File(work)).rejects.toThrow(/EISDIR/)
    const image = join(work, 'image.sif')
    // Larger than any stream buffer: it must arrive whole.
    writeFileSync(image, Buffer.alloc(3 * 1024 * 1024 + 17, 7))
    const file = join(work, 'out', 'annex-demo.tar')
    const plan = planFor({target: 'wholenode@anvil', nodes: '2'})
    const imageDigest = sha256(image)
    await writeBundle(file, renderFiles(plan, {...ap, stagedTarballSha256: digest, images: [{name: 'analysis.sif', sha256: imageDigest}]}, {setup: true}), {
      token: Buffer.from('TOKEN'),
      password: Buffer.from('PASSWORD'),
      sifs: [{sha256: imageDigest, path: image}],
      condorTarball: {path: tarball, sha256: digest},
    }, {prefix: 'hpc-annex-demo'})

    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(listing(file)).toEqual([
      ['drwx------', 'hpc-annex-demo/'],
      ['-rwx------', 'hpc-annex-demo/backend.sh'],
      ['-rwx------', 'hpc-annex-demo/batch.slurm'],
      ['-rwx------', 'hpc-annex-demo/node-local.sh'],
      ['-rw-------', 'hpc-annex-demo/pilot.conf'],
      ['-rwx------', 'hpc-annex-demo/pilot.sh'],
      ['-rwx------', 'hpc-annex-demo/launcher.sh'],
      ['-rwx------', 'hpc-annex-demo/setup.sh'],
      ['-rw-------', 'hpc-annex-demo/token'],
      ['-rw-------', 'hpc-annex-demo/password'],
      ['drwx------', 'hpc-annex-demo/sif/'],
      ['-rw-------', `hpc-annex-demo/sif/${imageDigest}`],
      ['drwx------', 'hpc-annex-demo/condor/'],
      ['-rw-------', `hpc-annex-demo/condor/${digest}`],
    ])

    // On the "login node": unpack and run setup.sh by hand.
    const login = join(work, 'login')
    const home = join(login, 'home')
    mkdirSync(home, {recursive: true})
    execFileSync('tar', ['-xf', file, '-C', login])
    const result = runBash(join(login, 'hpc-annex-demo', 'setup.sh'), [], {PATH: `${stubs}:/usr/bin:/bin`, HOME: home, SCRATCH: join(login, 'scratch')}, login)
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const control = controlLines(result.stdout)
    expect(control.JOB_ID).toBe('4242')
    expect(result.stdout).toContain('The batch job for annex demo was submitted')
    expect(readFileSync(join(control.PILOT_DIR!, 'secrets', 'token'), 'utf8')).toBe('TOKEN')
    expect(statSync(join(control.PILOT_DIR!, 'sif', 'analysis.sif')).size).toBe(3 * 1024 * 1024 + 17)
    expect(readdirSync(join(login, 'hpc-annex-demo'))).not.toContain('token')
  })

  it('setup.sh deletes the secrets it was given when the set-up fails', async () => {
    const file = join(work, 'annex-demo.tar')
    const plan = planFor({target: 'wholenode@anvil'})
    await writeBundle(file, renderFiles(plan, ap, {setup: true}), {token: Buffer.from('T'), password: Buffer.from('P')}, {prefix: 'b'})
    execFileSync('tar', ['-xf', file, '-C', work])
    const osRelease = join(work, 'os-release')
    writeFileSync(osRelease, 'ID=debian\nVERSION_ID=12\n')
    const result = runBash(join(work, 'b', 'setup.sh'), [], {PATH: `${stubs}:/usr/bin:/bin`, HOME: work, SCRATCH: join(work, 'scratch'), HPC_ANNEX_OS_RELEASE: osRelease}, work)
    expect(result.status).not.toBe(0)
    expect(result.stderr).toContain('The set-up failed')
    expect(readdirSync(join(work, 'b'))).not.toContain('token')
    expect(readdirSync(join(work, 'b'))).not.toContain('password')
  })

  it('stages job images only under their own plain names', () => {
    expect(sifEntryName('$(touch x).sif')).toBe('$(touch x).sif')
    for (const bad of ['../escape.sif', 'dir/x.sif', '..', '', 'new\nline.sif']) expect(() => sifEntryName(bad)).toThrow(/cannot be staged/)
  })

  it('the SSH bootstrap unpacks the stream into a private directory, runs the back-end, and removes the directory', async () => {
    const {home, archive} = await bootstrapFixture({'backend.sh': 'echo "=-.-= PID $$"; here=$(dirname "$0"); echo "$here"; stat -c %a "$here"\n'})
    const run = spawnSync('bash', ['-c', bootstrapCommand()], {input: archive, env: {...process.env, HOME: home}, encoding: 'utf8'})
    expect(run.status).toBe(0)
    const [pid, dir, mode] = run.stdout.trim().split('\n')
    expect(pid).toMatch(/^=-\.-= PID \d+$/)
    expect(dir!.startsWith(join(home, '.hpc-annex', 'tmp', 'bundle.'))).toBe(true)
    expect(mode).toBe('700')
    expect(existsSync(dir!)).toBe(false)
  })

  it('the bootstrap writes each file with its mode, and the back-end receives the images and tarballs after, hashed as they arrive', async () => {
    const tarball = fakeCondorTarball(work)
    const image = join(work, 'image.sif')
    writeFileSync(image, Buffer.alloc(70_000, 3))
    const imageDigest = await sha256File(image)
    const home = join(work, 'home')
    mkdirSync(home)
    const run = async (source: string, options: Parameters<typeof bootstrapCommand>[1], env: NodeJS.ProcessEnv = {}) => {
      const digest = await sha256File(source)
      // The back-end receives what follows the scripts, reports what it found beside it, then the bootstrap removes it all.
      const report = [
        'cd "$(dirname "$0")"',
        'sh -c "$HPC_ANNEX_RECEIVE" <&"$HPC_ANNEX_BUNDLE_FD"',
        `stat -c "%a %s %n" backend.sh token password condor condor/${digest} sif/${imageDigest}`,
        `cat condor/${digest}.sha256 sif/${imageDigest}.sha256`,
        'echo "openssl: $HPC_ANNEX_OPENSSL_SHA256"',
      ].join('\n')
      const files = [{path: 'backend.sh', mode: 0o700, content: `${report}\n`}]
      const inputs = {token: Buffer.from('T'), password: Buffer.alloc(0), sifs: [{sha256: imageDigest, path: image}], condorTarball: {path: source, sha256: digest}}
      const bundle = await buffer(bundleStream(files, inputs, {filesAsOneEntry: true}))
      const ran = spawnSync('bash', ['-c', bootstrapCommand([], options)], {input: bundle, env: {...process.env, HOME: home, ...env}, encoding: 'utf8'})
      expect(ran.stderr).toBe('')
      expect(ran.status).toBe(0)
      expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
      return ran.stdout.trim().split('\n')
    }

    const digest = await sha256File(tarball)
    // sha256sum prints "HEX  -", openssl "HEX *stdin": the back-end reads the first 64 characters.
    const hashed = (hex: string) => expect.stringMatching(new RegExp(`^${hex} `))
    expect(await run(tarball, {})).toEqual([
      expect.stringMatching(/^700 \d+ backend\.sh$/),
      '600 1 token',
      '600 0 password',
      expect.stringMatching(/^700 \d+ condor$/),
      `600 ${statSync(tarball).size} condor/${digest}`,
      `600 70000 sif/${imageDigest}`,
      hashed(digest),
      hashed(imageDigest),
      expect.stringMatching(/^openssl: [01]$/),
    ])

    // The faster openssl is used when it hashes as sha256sum does (a stand-in that notes each use here),
    // and sha256sum when it does not; the digests are the same either way.
    const tools = (name: string, script: string) => {
      const dir = join(work, name)
      mkdirSync(dir)
      writeFileSync(join(dir, 'openssl'), `#!/bin/sh\n${script}\n`, {mode: 0o755})
      return {PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`}
    }
    const uses = join(work, 'openssl-uses')
    const working = tools('good-openssl', `echo >> '${uses}'; h=$(sha256sum | cut -c1-64); echo "$h *stdin"`)
    const viaOpenssl = await run(tarball, {}, working)
    expect(viaOpenssl.slice(-3)).toEqual([`${digest} *stdin`, `${imageDigest} *stdin`, 'openssl: 1'])
    // Checked once on empty input, then once per hashed file.
    expect(readFileSync(uses, 'utf8')).toBe('\n\n\n')
    const broken = tools('broken-openssl', 'cat >/dev/null; echo 0000 *stdin')
    expect((await run(tarball, {}, broken)).slice(-3)).toEqual([`${digest}  -`, `${imageDigest}  -`, 'openssl: 0'])

    // A tarball tar cannot read arrives whole and hashed all the same, for the back-end to judge.
    const damaged = join(work, 'damaged.tar.gz')
    writeFileSync(damaged, Buffer.concat([readFileSync(tarball).subarray(0, 200), Buffer.alloc(5000, 7)]))
    const refused = await run(damaged, {})
    expect(refused).toContainEqual(hashed(await sha256File(damaged)))
    expect(refused).toContain(`600 5200 condor/${await sha256File(damaged)}`)
  })

  it('a cut-off upload of the scripts runs nothing and leaves nothing', async () => {
    const {home, archive} = await bootstrapFixture({big: randomBytes(64 * 1024).toString('base64'), 'backend.sh': 'touch "$HOME/RAN"\n'})
    const cut = archive.subarray(0, 20 * 1024)
    const run = spawnSync('bash', ['-c', bootstrapCommand()], {input: cut, env: {...process.env, HOME: home}, encoding: 'utf8'})
    expect(run.status).not.toBe(0)
    expect(existsSync(join(home, 'RAN'))).toBe(false)
    expect(readdirSync(join(home, '.hpc-annex', 'tmp'))).toEqual([])
  })

  it('the bootstrap first names exactly the cached objects, with their sizes, then unpacks what follows', async () => {
    const cache = join(work, 'cache')
    mkdirSync(cache)
    const a = 'a'.repeat(64)
    const b = 'b'.repeat(64)
    writeFileSync(join(cache, a), 'twelve bytes')
    const {home, archive} = await bootstrapFixture({'backend.sh': 'echo ran\n'})
    const env = {...process.env, HOME: home, HPC_ANNEX_CACHE: cache}
    const run = spawnSync('bash', ['-c', bootstrapCommand([a, b])], {input: archive, env, encoding: 'utf8'})
    expect(run.status).toBe(0)
    expect(run.stdout).toBe(`=-.-= CACHED ${a} 12\n=-.-= CACHE_END\nran\n`)
    expect(parseCachedObject(`${a} 12`)).toEqual([a, 12])
    expect(parseCachedObject('$(reboot) 1')).toBeUndefined()
    const none = spawnSync('bash', ['-c', bootstrapCommand([a])], {input: archive, env: {...env, HPC_ANNEX_CACHE: join(work, 'nope')}, encoding: 'utf8'})
    expect(none.stdout).toBe('=-.-= CACHE_END\nran\n')
    expect(() => bootstrapCommand(['$(reboot)'])).toThrow(/not a sha256/)
  })

  it('the bundle leaves out what the receiver has cached at the same size, and sends the rest after the answer', async () => {
    const one = join(work, 'one.sif')
    const two = join(work, 'two.sif')
    writeFileSync(one, Buffer.alloc(3000, 1))
    writeFileSync(two, Buffer.alloc(5000, 2))
    const [s1, s2] = [await sha256File(one), await sha256File(two)]
    const files = [{path: 'backend.sh', mode: 0o700, content: 'true\n'}]
    const names = async (cached: Map<string, number>) => {
      let answer!: (m: Map<string, number>) => void
      const later = new Promise<Map<string, number>>((resolve) => (answer = resolve))
      const chunks: Buffer[] = []
      const stream = bundleStream(files, {token: Buffer.from('T'), password: Buffer.from('P'), sifs: [{sha256: s1, path: one}, {sha256: s2, path: two}]}, {cached: later})
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      // The rendered files and secrets go before the answer.
      await new Promise((resolve) => setTimeout(resolve, 50))
      const early = Buffer.concat(chunks).toString('latin1')
      expect(early).toContain('backend.sh')
      expect(early).not.toContain('sif/')
      answer(cached)
      await new Promise((resolve) => stream.on('end', resolve))
      const archive = join(work, `b${cached.size}.tar`)
      writeFileSync(archive, Buffer.concat(chunks))
      return execFileSync('tar', ['-tf', archive], {encoding: 'utf8'}).trim().split('\n')
    }
    expect(await names(new Map([[s1, 3000]]))).toEqual(['backend.sh', 'token', 'password', 'sif/', `sif/${s2}`])
    // A cached copy of another size is not the same object.
    expect(await names(new Map([[s1, 3000], [s2, 4999]]))).toEqual(['backend.sh', 'token', 'password', 'sif/', `sif/${s2}`])
    expect(await names(new Map([[s1, 3000], [s2, 5000]]))).toEqual(['backend.sh', 'token', 'password'])
  })

})
