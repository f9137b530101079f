import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {
  checkUrlBase,
  DEFAULT_TARBALL_URL_BASE,
  describeDownload,
  parseCondorVersion,
  parsePins,
  pinVersion,
  resolveDownload,
  TARBALL_URL_BASE_KNOB,
  urlRule,
  validateRequest,
  loadCatalog,
  parseMachineFile,
  formatProblem,
} from '../../src/catalog/index.js'
import {releaseSeries, tarballUrl} from '../../src/catalog/download.js'
import {projectPath} from '../../src/paths.js'

const catalog = () => loadCatalog([projectPath('backends')])
const anvil = () => validateRequest(catalog(), {name: 'x', target: 'wholenode@anvil'}, {defaultOwner: 'alice'}).htcondor

describe('the URL of a release tarball, as HTCondor lays out its tree', () => {
  it('puts a long-term release (minor version 0) under <major>.0 and a feature release under <major>.x', () => {
    expect(releaseSeries('25.0.4')).toBe('25.0')
    expect(releaseSeries('25.13.2')).toBe('25.x')
    expect(releaseSeries('24.12.23')).toBe('24.x')
    expect(releaseSeries('24.0.10')).toBe('24.0')
    expect(() => releaseSeries('25.0')).toThrow(/not an HTCondor version/)
  })

  it('names the build by version, architecture and platform, for each platform', () => {
    const base = DEFAULT_TARBALL_URL_BASE
    expect(tarballUrl(base, '25.0.4', 'AlmaLinux8')).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.4/release/condor-25.0.4-x86_64_AlmaLinux8-stripped.tar.gz')
    expect(tarballUrl(base, '25.0.4', 'AlmaLinux9')).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.4/release/condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz')
    expect(tarballUrl(base, '25.13.2', 'Debian12')).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_Debian12-stripped.tar.gz')
    expect(tarballUrl(base, '25.13.2', 'Ubuntu22')).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_Ubuntu22-stripped.tar.gz')
    expect(tarballUrl(base, '25.13.2', 'Ubuntu24')).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_Ubuntu24-stripped.tar.gz')
  })
})

describe('the pilots\' HTCondor of a built-in system', () => {
  it('is the Access Point\'s version, from HTCondor\'s tree, one build per allowed platform, verified by the published checksum', () => {
    const h = anvil()
    expect(h).toMatchObject({versionFrom: 'Access Point', urlBase: DEFAULT_TARBALL_URL_BASE, urlBaseFrom: 'default', platforms: ['AlmaLinux8', 'AlmaLinux9'], tarballs: []})
    expect(h.version).toBeUndefined()
    expect(urlRule(h)).toBe('https://htcss-downloads.chtc.wisc.edu/tarball/<series>/<version>/release/condor-<version>-x86_64_<platform>-stripped.tar.gz')
    const resolved = resolveDownload(h, {apVersion: '25.13.2'})
    expect(resolved.version).toBe('25.13.2')
    expect(resolved.tarballs).toEqual([
      {
        os: 'AlmaLinux8',
        url: 'https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_AlmaLinux8-stripped.tar.gz',
        checksumUrl: 'https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/sha256sum.txt',
        verification: 'published',
      },
      {
        os: 'AlmaLinux9',
        url: 'https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_AlmaLinux9-stripped.tar.gz',
        checksumUrl: 'https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/sha256sum.txt',
        verification: 'published',
      },
    ])
    // Every built-in machine file inherits the one default.
    for (const machine of catalog().systems.values()) expect(machine.htcondor.url_base ?? machine.htcondor.url).toBeUndefined()
  })

  it('takes the base from the Access Point\'s ANNEX_TARBALL_URL_BASE, over the machine file\'s', () => {
    const base = checkUrlBase('https://mirror.example.org/htcondor/tarball', TARBALL_URL_BASE_KNOB)
    expect(base).toBe('https://mirror.example.org/htcondor/tarball/')
    const resolved = resolveDownload(anvil(), {apVersion: '25.0.4', urlBase: base})
    expect(resolved.urlBaseFrom).toBe('ANNEX_TARBALL_URL_BASE')
    expect(resolved.tarballs[1]).toMatchObject({
      url: 'https://mirror.example.org/htcondor/tarball/25.0/25.0.4/release/condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz',
      checksumUrl: 'https://mirror.example.org/htcondor/tarball/25.0/25.0.4/release/sha256sum.txt',
    })
    const machine = {...anvil(), urlBase: 'https://site.example.edu/condor/', urlBaseFrom: 'machine file' as const}
    expect(resolveDownload(machine, {apVersion: '25.0.4'}).tarballs[0]!.url).toBe('https://site.example.edu/condor/25.0/25.0.4/release/condor-25.0.4-x86_64_AlmaLinux8-stripped.tar.gz')
    expect(resolveDownload(machine, {apVersion: '25.0.4', urlBase: base}).tarballs[0]!.url).toMatch(/^https:\/\/mirror\.example\.org\//)
  })

  it('refuses a base that is not https (plain http only to a loopback address), naming where it came from', () => {
    expect(() => checkUrlBase('http://mirror.example.org/t/', TARBALL_URL_BASE_KNOB)).toThrow(
      'ANNEX_TARBALL_URL_BASE = http://mirror.example.org/t/ must be an https:// URL (plain http only to a loopback address); change it.',
    )
    expect(() => checkUrlBase('not a url', TARBALL_URL_BASE_KNOB)).toThrow(/ANNEX_TARBALL_URL_BASE = not a url is not a URL/)
    expect(() => checkUrlBase('https://u:p@mirror.example.org/', TARBALL_URL_BASE_KNOB)).toThrow(/no query, fragment or credentials/)
    expect(checkUrlBase('http://127.0.0.1:8123/tarball', TARBALL_URL_BASE_KNOB)).toBe('http://127.0.0.1:8123/tarball/')
    expect(checkUrlBase('http://localhost/t/', TARBALL_URL_BASE_KNOB)).toBe('http://localhost/t/')
  })

  it('pins a version with --condor-version; a bad one is a one-line error naming the flag', () => {
    const pinned = pinVersion(anvil(), '25.0.9')
    expect(pinned).toMatchObject({version: '25.0.9', versionFrom: '--condor-version'})
    expect(pinned.tarballs.map((t) => t.url)).toEqual([
      'https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.9/release/condor-25.0.9-x86_64_AlmaLinux8-stripped.tar.gz',
      'https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.9/release/condor-25.0.9-x86_64_AlmaLinux9-stripped.tar.gz',
    ])
    expect(() => pinVersion(anvil(), '25.x')).toThrow("--condor-version '25.x' is not an HTCondor version like 25.0.4; change it.")
  })
})

describe('which verification applies', () => {
  const digest = 'ab'.repeat(32)
  const other = 'cd'.repeat(32)

  it('a sha256 pinned in the Access Point\'s configuration (by file name) wins', () => {
    const pins = parsePins(`condor-25.13.2-x86_64_AlmaLinux9-stripped.tar.gz=${digest.toUpperCase()}, other.tar.gz=${other}`)
    const [el8, el9] = resolveDownload(anvil(), {apVersion: '25.13.2', pins}).tarballs
    expect(el9).toEqual({os: 'AlmaLinux9', url: expect.stringContaining('AlmaLinux9'), sha256: digest, verification: 'pinned'})
    expect(el8).toMatchObject({verification: 'published'})
  })

  it('the machine file\'s sha256 holds for its own version only, and the Access Point\'s pin wins over it', () => {
    const machine = {...anvil(), version: '25.0.4', versionFrom: 'machine file' as const, machineSha256: {AlmaLinux9: digest}}
    expect(resolveDownload(machine).tarballs[1]).toMatchObject({sha256: digest, verification: 'pinned'})
    expect(resolveDownload(machine, {pins: {'condor-25.0.4-x86_64_AlmaLinux9-stripped.tar.gz': other}}).tarballs[1]!.sha256).toBe(other)
    // Another version (--condor-version) is verified by what is published for it.
    expect(pinVersion(machine, '25.0.5').tarballs[1]).toMatchObject({verification: 'published'})
  })

  it('says so in the dry run: the exact URL and its check, or the rule while the version is the Access Point\'s', () => {
    const rule = describeDownload(anvil()).join('\n')
    expect(rule).toContain("the Access Point's own version (condor_version at create time; pin one with --condor-version)")
    expect(rule).toContain('https://htcss-downloads.chtc.wisc.edu/tarball/ (the Access Point\'s ANNEX_TARBALL_URL_BASE replaces it)')
    expect(rule).toContain('<series>/<version>/release/condor-<version>-x86_64_<platform>-stripped.tar.gz')
    expect(rule).toContain('the one published in sha256sum.txt next to it (refused if it lists none or differs)')
    expect(rule).toContain('among AlmaLinux8, AlmaLinux9')
    const exact = describeDownload(pinVersion(anvil(), '25.13.2'), {allowUnpinned: true}).join('\n')
    expect(exact).toContain(
      '  https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_AlmaLinux9-stripped.tar.gz — verified against the sha256 published in https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/sha256sum.txt; if none is published, downloaded unverified (--allow-unpinned-download)',
    )
    const pinned = resolveDownload(anvil(), {apVersion: '25.13.2', pins: {'condor-25.13.2-x86_64_AlmaLinux8-stripped.tar.gz': digest}})
    expect(describeDownload(pinned).join('\n')).toContain(`AlmaLinux8-stripped.tar.gz — verified against the pinned sha256 ${digest.slice(0, 12)}…`)
    expect(describeDownload(anvil(), {staged: 'condor-mine.tar.gz'})).toEqual([
      "The pilots' HTCondor: the tarball condor-mine.tar.gz (--condor-tarball), staged into the login node's cache; nothing is downloaded.",
    ])
  })

  it('refuses a malformed pin with a one-line error naming the knob', () => {
    expect(() => parsePins('condor.tar.gz=123')).toThrow("ANNEX_TARBALL_SHA256 has 'condor.tar.gz=123'; each entry must be TARBALL-FILE-NAME=SHA256 (64 hex digits). Ask your HTCondor administrator to fix it.")
    expect(() => parsePins(`=${digest}`)).toThrow(/TARBALL-FILE-NAME=SHA256/)
    expect(parsePins(undefined)).toEqual({})
  })
})

describe('the Access Point\'s version', () => {
  it('is read from condor_version as HTCondor prints it', () => {
    expect(parseCondorVersion('$CondorVersion: 25.13.2 2026-08-20 $\n$CondorPlatform: X86_64-Debian_12 $\n')).toBe('25.13.2')
    expect(parseCondorVersion('$CondorVersion: 25.0.4 2025-11-20 BuildID: 812345 PackageID: 25.0.4-1 GitSHA: abc $\n')).toBe('25.0.4')
    expect(parseCondorVersion('garbage')).toBeUndefined()
  })
})

describe('a machine file\'s [htcondor]', () => {
  const file = (htcondor: string) =>
    parseMachineFile('/m/mini.toml', `name = "Mini"\nhost = "mini.example.org"\nbatch = "slurm"\ndefault_queue = "q"\nscratch = "/tmp"\n[htcondor]\n${htcondor}\n[queues.q]\nallocation = "node"\nmax_nodes = 1\nmax_duration = 60\n`)
  const problems = (htcondor: string) => file(htcondor).problems.map(formatProblem).join('\n')

  it('takes url_base, version, sha256 and checksum_file; os alone inherits the rest', () => {
    expect(file('os = ["Debian12"]').machine?.htcondor).toEqual({os: ['Debian12']})
    expect(problems(`url_base = "https://mirror.example.edu/t/"\nversion = "25.0.4"\nchecksum_file = "SHA256SUMS"\nos = ["Debian12"]\nsha256 = {Debian12 = "${'a'.repeat(64)}"}`)).toBe('')
  })

  it('refuses a sha256 without a version, a plain-http base, and url with url_base', () => {
    expect(problems(`os = ["Debian12"]\nsha256 = {Debian12 = "${'a'.repeat(64)}"}`)).toContain('pins the tarballs of one version: set htcondor.version too')
    expect(problems('os = ["Debian12"]\nurl_base = "http://mirror.example.edu/t/"')).toContain('must be an https:// URL')
    expect(problems('os = ["Debian12"]\nurl_base = "https://a.example/"\nurl = "https://b.example/{version}/{os}.tar.gz"')).toContain('give url_base or url, not both')
    expect(problems('os = ["Debian12"]\nurl = "https://b.example/{os}.tar.gz"')).toContain('must contain {version} unless htcondor.version is set')
  })
})

describe('create --dry-run about the pilots\' HTCondor', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'run.js')
  const cli = (...args: string[]) => spawnSync(process.execPath, [bin, 'create', 'x', 'wholenode@anvil', '--dry-run', ...args], {encoding: 'utf8', env: {...process.env, HPC_ANNEX_MACHINES: ''}})

  it('prints the rule and the verification, in text and JSON, when the version is the Access Point\'s', () => {
    const text = cli()
    expect(text.status).toBe(0)
    expect(text.stdout).toContain("The pilots' HTCondor: the Access Point's own version (condor_version at create time; pin one with --condor-version)")
    const json = JSON.parse(cli('--json').stdout) as {htcondor: Record<string, unknown>}
    expect(json.htcondor).toEqual({
      versionFrom: 'Access Point',
      urlBase: 'https://htcss-downloads.chtc.wisc.edu/tarball/',
      urlBaseFrom: 'default',
      urlRule: 'https://htcss-downloads.chtc.wisc.edu/tarball/<series>/<version>/release/condor-<version>-x86_64_<platform>-stripped.tar.gz',
      platforms: ['AlmaLinux8', 'AlmaLinux9'],
      checksumFile: 'sha256sum.txt',
      tarballs: [],
    })
  })

  it('prints the exact URLs with --condor-version, and refuses it beside --condor-tarball', () => {
    const text = cli('--condor-version', '25.0.4')
    expect(text.stdout).toContain("The pilots' HTCondor 25.0.4 (--condor-version), downloaded on the login node (unless its cache holds it) from:\n  https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.4/release/condor-25.0.4-x86_64_AlmaLinux8-stripped.tar.gz — verified against the sha256 published in https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.4/release/sha256sum.txt; refused if it lists none or differs\n")
    const json = JSON.parse(cli('--condor-version', '25.13.2', '--json').stdout) as {htcondor: {version: string; tarballs: {url: string; verification: string; checksumUrl: string}[]}}
    expect(json.htcondor.version).toBe('25.13.2')
    expect(json.htcondor.tarballs[1]).toEqual({
      os: 'AlmaLinux9',
      url: 'https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/condor-25.13.2-x86_64_AlmaLinux9-stripped.tar.gz',
      checksumUrl: 'https://htcss-downloads.chtc.wisc.edu/tarball/25.x/25.13.2/release/sha256sum.txt',
      verification: 'published',
    })
    // An HTCondor-batch system runs the build for its pilots' container, whatever the login node runs.
    const path = spawnSync(process.execPath, [bin, 'create', 'x', 'cpu@path-facility', '--cpus', '1', '--dry-run', '--condor-version', '25.13.2'], {encoding: 'utf8', env: {...process.env, HPC_ANNEX_MACHINES: ''}})
    expect(path.stdout).toContain('condor-25.13.2-x86_64_AlmaLinux8-stripped.tar.gz — verified')
    expect(path.stdout).not.toContain('AlmaLinux9-stripped')
    expect(path.stdout).toContain("The platform is AlmaLinux8, the pilots' container's (whatever the login node runs).")
    const bad = cli('--condor-version', 'latest')
    expect(bad.status).toBe(1)
    expect(bad.stderr.trim()).toMatch(/--condor-version 'latest' is not an HTCondor version like 25\.0\.4; change it\.$/)
    const both = cli('--condor-version', '25.0.4', '--condor-tarball', bin)
    expect(both.status).toBe(1)
    expect(both.stderr).toContain('--condor-version and --condor-tarball cannot be used together')
  })
})
