import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it, vi} from 'vitest'

import {findSsh, parseHop, parseSshG, resolveEarly, resolveTarget} from '../../src/ssh/config.js'
import {Ssh2Transport} from '../../src/ssh/ssh2.js'

let home: string
let config: string
let env: NodeJS.ProcessEnv

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'ssh-config-'))
  mkdirSync(join(home, '.ssh'), {mode: 0o700})
  for (const key of ['id_rsa', 'id_ed25519', 'special']) writeFileSync(join(home, '.ssh', key), 'not really a key', {mode: 0o600})
  config = join(home, 'config')
  writeFileSync(
    config,
    [
      'Host hpc',
      '  HostName login.example.org',
      '  Port 2200',
      '  User alice',
      '  IdentityFile ~/.ssh/special',
      '  UserKnownHostsFile ~/hosts',
      '  ProxyJump bastion',
      'Host bastion',
      '  HostName gw.example.org',
      '  User bob',
      'Host plain',
      '  HostName plain.example.org',
      'Host proxied',
      '  HostName p.example.org',
      '  ProxyCommand ssh -W %h:%p gw',
      'Host jumped-first',
      '  ProxyJump bastion',
      '  ProxyCommand nc %h %p',
      'Host fdpass',
      '  ProxyCommand dialer %h %p',
      '  ProxyUseFdpass yes',
      'Host noproxy',
      '  ProxyCommand none',
      '',
    ].join('\n'),
  )
  env = {...process.env, HOME: home}
})
afterAll(() => rmSync(home, {recursive: true, force: true}))

describe('parsers', () => {
  it('reads ProxyJump hops', () => {
    expect(parseHop('gw')).toEqual({host: 'gw'})
    expect(parseHop('bob@gw:2022')).toEqual({host: 'gw', user: 'bob', port: 2022})
    expect(parseHop('ssh://bob@gw:2022')).toEqual({host: 'gw', user: 'bob', port: 2022})
    expect(parseHop('[::1]:2022')).toEqual({host: '::1', port: 2022})
  })

  it('reads ssh -G output, keeping repeated keys', () => {
    const options = parseSshG('hostname h\nidentityfile ~/.ssh/a\nidentityfile ~/.ssh/b\nPort 22\n')
    expect(options.get('identityfile')).toEqual(['~/.ssh/a', '~/.ssh/b'])
    expect(options.get('port')).toEqual(['22'])
  })
})

// The same expectations with ssh -G and with the built-in parser.
const engines: {name: string; ssh: () => Promise<string | null>}[] = [
  {name: 'ssh -G', ssh: findSsh},
  {name: 'ssh-config', ssh: async () => null},
]

describe.each(engines)('resolveTarget with $name', ({name, ssh}) => {
  it('applies HostName, Port, User, IdentityFile, UserKnownHostsFile and ProxyJump', async (ctx) => {
    const binary = await ssh()
    if (name === 'ssh -G' && !binary) ctx.skip()
    const resolved = await resolveTarget({host: 'hpc', configFile: config}, {ssh: binary, env})
    expect(resolved).toMatchObject({
      alias: 'hpc',
      host: 'login.example.org',
      port: 2200,
      user: 'alice',
      identityFiles: [join(home, '.ssh', 'special')],
      hostKeyName: 'login.example.org',
    })
    // ssh -G expands ~ from the password database, the parser from $HOME.
    expect(resolved.knownHostsFiles[0]).toMatch(/\/hosts$/)
    expect(resolved.jumps).toHaveLength(1)
    expect(resolved.jumps[0]).toMatchObject({host: 'gw.example.org', port: 22, user: 'bob'})
  })

  it('lets the flags win over the file, and offers their key first', async (ctx) => {
    const binary = await ssh()
    if (name === 'ssh -G' && !binary) ctx.skip()
    const resolved = await resolveTarget(
      {host: 'hpc', configFile: config, user: 'carol', port: 2300, identityFile: join(home, '.ssh', 'id_rsa'), knownHostsFile: '/tmp/kh'},
      {ssh: binary, env},
    )
    expect(resolved).toMatchObject({user: 'carol', port: 2300, knownHostsFiles: ['/tmp/kh']})
    expect(resolved.identityFiles).toEqual([join(home, '.ssh', 'id_rsa'), join(home, '.ssh', 'special')])
  })

  it('reads ProxyCommand unexpanded; ProxyJump, given first, excludes it; none is none', async (ctx) => {
    const binary = await ssh()
    if (name === 'ssh -G' && !binary) ctx.skip()
    const resolve = (host: string): ReturnType<typeof resolveTarget> => resolveTarget({host, configFile: config}, {ssh: binary, env})
    expect(await resolve('proxied')).toMatchObject({host: 'p.example.org', proxyCommand: 'ssh -W %h:%p gw', jumps: []})
    expect((await resolve('proxied')).proxyUseFdpass).toBeUndefined()
    const jumped = await resolve('jumped-first')
    expect(jumped.jumps).toHaveLength(1)
    expect(jumped.proxyCommand).toBeUndefined()
    expect(await resolve('fdpass')).toMatchObject({proxyCommand: 'dialer %h %p', proxyUseFdpass: true})
    expect((await resolve('noproxy')).proxyCommand).toBeUndefined()
    expect((await resolve('plain')).proxyCommand).toBeUndefined()
  })

  it('uses the default keys that exist, ed25519 first, when none is configured', async (ctx) => {
    const binary = await ssh()
    if (name === 'ssh -G' && !binary) ctx.skip()
    const resolved = await resolveTarget({host: 'plain', configFile: config}, {ssh: binary, env})
    expect(resolved).toMatchObject({host: 'plain.example.org', port: 22, jumps: []})
    expect(resolved.identityFiles).toEqual([join(home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'id_rsa')])
  })
})

describe('what the built-in client does not do', () => {
  it('refuses ProxyUseFdpass, naming the OpenSSH transport', async () => {
    const transport = new Ssh2Transport({interactive: false, resolve: {ssh: null, env}})
    try {
      await expect(transport.connect({host: 'fdpass', configFile: config}, {answer: async () => []})).rejects.toThrow(/ProxyUseFdpass .* is not supported by the built-in SSH client; .*--ssh openssh/)
    } finally {
      await transport.close()
    }
  })
})

describe('resolveEarly', () => {
  it('answers the next resolveTarget of the same target and options, once; any other resolves afresh', async () => {
    // An `ssh` that logs each -G it is asked and answers with the host it was given.
    const log = join(home, 'ssh-g.log')
    const fakeSsh = join(home, 'fake-ssh')
    writeFileSync(fakeSsh, `#!/bin/sh\nfor last; do :; done\necho "$last" >> '${log}'\nprintf 'hostname %s.example.org\\nport 22\\nuser u\\n' "$last"\n`, {mode: 0o755})
    const asked = () => readFileSync(log, 'utf8').trim().split('\n')
    const options = {ssh: fakeSsh, env}
    resolveEarly({host: 'hpc', configFile: config}, options)
    // The same target, its fields in another order: the early answer.
    expect(await resolveTarget({configFile: config, host: 'hpc'}, options)).toMatchObject({host: 'hpc.example.org'})
    expect(asked()).toEqual(['hpc'])
    // Taken once: the next asks again.
    await resolveTarget({host: 'hpc', configFile: config}, options)
    expect(asked()).toEqual(['hpc', 'hpc'])
    // Another target, or other options, never takes it.
    resolveEarly({host: 'hpc', configFile: config}, options)
    expect(await resolveTarget({host: 'other', configFile: config}, options)).toMatchObject({host: 'other.example.org'})
    expect(await resolveTarget({host: 'hpc', configFile: config}, {ssh: fakeSsh, env: {...env}})).toMatchObject({host: 'hpc.example.org'})
    expect(asked().sort()).toEqual(['hpc', 'hpc', 'hpc', 'hpc', 'other'])
  })
})

describe('without OpenSSH', () => {
  it('resolves with the parser, and starts no `ssh -G` once it knows `ssh` is not OpenSSH', async () => {
    const bin = join(home, 'not-openssh')
    mkdirSync(bin)
    writeFileSync(join(bin, 'ssh'), `#!/bin/sh\necho 'Sun_SSH_1.1' >&2\n`, {mode: 0o755})
    const path = process.env.PATH
    process.env.PATH = `${bin}:${path}`
    const started: string[][] = []
    vi.resetModules()
    vi.doMock('execa', async (importOriginal) => {
      const real = await importOriginal<typeof import('execa')>()
      const execa = (file: string, args: string[], options: object) => {
        started.push([file, ...args])
        return real.execa(file, args, options)
      }
      return {...real, execa}
    })
    try {
      const fresh = await import('../../src/ssh/config.js')
      expect(await fresh.findSsh()).toBeNull()
      const resolved = await fresh.resolveTarget({host: 'hpc', configFile: config}, {env: {...env, PATH: process.env.PATH}})
      expect(resolved).toMatchObject({host: 'login.example.org', port: 2200, source: 'ssh-config'})
      expect(started).toEqual([['ssh', '-V']])
    } finally {
      vi.doUnmock('execa')
      vi.resetModules()
      process.env.PATH = path
    }
  })
})

describe('the OpenSSH master socket directory', () => {
  it("is ~/.hpc-annex, HTCondor's, or a private /tmp directory when HOME is too long for a socket path", async () => {
    const {defaultControlDir} = await import('../../src/ssh/openssh.js')
    expect(defaultControlDir({HOME: '/home/alice'})).toBe('/home/alice/.hpc-annex')
    // ssh binds the socket under a temporary name 17 bytes longer (seen with OpenSSH 9.2), then renames it.
    const temporary = (dir: string) => `${dir}/master-${'0'.repeat(40)}.${'x'.repeat(16)}`
    for (const home of [`/home/${'x'.repeat(60)}`, `/tmp/hpc-annex-site/ap/9124-ap/home-omU4Jq`]) {
      const dir = defaultControlDir({HOME: home})
      expect(dir.startsWith('/tmp/hpc-annex-ssh-')).toBe(true)
      expect(Buffer.byteLength(temporary(dir))).toBeLessThanOrEqual(107)
    }
    expect(Buffer.byteLength(temporary('/home/alice/.hpc-annex'))).toBeLessThanOrEqual(107)
  })

  it('is the one the target names (--tmp_dir, ANNEX_TMP_DIR), which must be a short directory of yours that others cannot write', async () => {
    const {controlDirOf, ensureControlDir} = await import('../../src/ssh/openssh.js')
    expect(controlDirOf({host: 'h', controlDir: {path: '/named', from: '--tmp_dir'}}, '/option')).toBe('/named')
    expect(controlDirOf({host: 'h'}, '/option')).toBe('/option')
    const base = mkdtempSync(join(tmpdir(), 'ctl-'))
    // Made, 0700, when missing.
    ensureControlDir(join(base, 'new'), '--tmp_dir')
    expect(statSync(join(base, 'new')).mode & 0o777).toBe(0o700)
    // A directory of the user's keeps its mode.
    mkdirSync(join(base, 'mine'), {mode: 0o755})
    chmodSync(join(base, 'mine'), 0o755)
    ensureControlDir(join(base, 'mine'), 'ANNEX_TMP_DIR')
    expect(statSync(join(base, 'mine')).mode & 0o777).toBe(0o755)
    writeFileSync(join(base, 'file'), '')
    expect(() => ensureControlDir(join(base, 'file'), '--tmp_dir')).toThrow(`The SSH control directory '${join(base, 'file')}' (--tmp_dir) is not a directory; change --tmp_dir.`)
    mkdirSync(join(base, 'shared'))
    chmodSync(join(base, 'shared'), 0o777)
    expect(() => ensureControlDir(join(base, 'shared'), 'ANNEX_TMP_DIR')).toThrow(/is writable by others .*ANNEX_TMP_DIR/)
    const long = join(base, 'x'.repeat(60))
    expect(() => ensureControlDir(long, '--tmp_dir')).toThrow(/is too long for a socket path .*change --tmp_dir/)
    rmSync(base, {recursive: true, force: true})
  })
})
