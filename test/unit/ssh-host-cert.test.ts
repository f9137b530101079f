/**
 * Host certificates as ssh-keygen makes them, checked as `ssh` checks them
 * against `@cert-authority` and `@revoked` lines; and the expansion of a
 * ProxyCommand's tokens.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AnnexError} from '../../src/errors.js'
import {checkHostCertificate, parseCertificate, plainKeyType, verifySshSignature, type CertificateCheck} from '../../src/ssh/host-cert.js'
import {verifyHostKey} from '../../src/ssh/known-hosts.js'
import {expandProxyCommand} from '../../src/ssh/proxy-command.js'
import type {Interaction, Prompt} from '../../src/ssh/transport.js'

let dir: string
let count = 0

const KINDS = {
  ed25519: ['-t', 'ed25519'],
  ecdsa256: ['-t', 'ecdsa', '-b', '256'],
  ecdsa384: ['-t', 'ecdsa', '-b', '384'],
  ecdsa521: ['-t', 'ecdsa', '-b', '521'],
  rsa: ['-t', 'rsa', '-b', '2048'],
}
type Kind = keyof typeof KINDS

interface Key {
  file: string
  /** `type base64`, as a known_hosts line has it. */
  line: string
  blob: Buffer
}

function makeKey(kind: Kind): Key {
  const file = join(dir, `key-${count++}`)
  execFileSync('ssh-keygen', ['-q', ...KINDS[kind], '-N', '', '-C', '', '-f', file])
  const [type, base64] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/)
  return {file, line: `${type} ${base64}`, blob: Buffer.from(base64!, 'base64')}
}

/** Signs `host`'s key with `ca`; `args` are more ssh-keygen options (-n, -V, -O, ...). Returns the certificate blob. */
function certify(ca: Key, host: Key, args: string[], hostCertificate = true): Buffer {
  execFileSync('ssh-keygen', ['-q', '-s', ca.file, '-I', 'login1', ...(hostCertificate ? ['-h'] : []), ...args, `${host.file}.pub`], {stdio: ['ignore', 'pipe', 'pipe']})
  return Buffer.from(readFileSync(`${host.file}-cert.pub`, 'utf8').trim().split(/\s+/)[1]!, 'base64')
}

function knownHosts(lines: string[]): string {
  const file = join(dir, `known_hosts-${count++}`)
  writeFileSync(file, lines.map((line) => `${line}\n`).join(''))
  return file
}

const HOST = 'login.example.org'

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'host-cert-'))
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('host certificates of every key type and CA type', () => {
  const hosts: Kind[] = ['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa']
  const cas: Kind[] = ['ed25519', 'ecdsa256', 'ecdsa521', 'rsa']
  for (const caKind of cas) {
    it(`reads and accepts a certificate of each host key type signed by an ${caKind} CA`, () => {
      const ca = makeKey(caKind)
      const files = [knownHosts([`@cert-authority *.example.org ${ca.line}`])]
      for (const hostKind of hosts) {
        const host = makeKey(hostKind)
        const blob = certify(ca, host, ['-n', HOST, '-V', '-5m:+1h'])
        const cert = parseCertificate(blob)
        // The certified key is the host's plain key, as a server without certificates shows it.
        expect(cert.key.equals(host.blob)).toBe(true)
        expect(plainKeyType(cert.type)).toBe(host.line.split(' ')[0])
        expect(cert).toMatchObject({certType: 2, keyId: 'login1', principals: [HOST]})
        expect(cert.caKey.equals(ca.blob)).toBe(true)
        const check = checkHostCertificate(blob, {files, host: HOST, port: 22})
        expect(check.status, check.status === 'invalid' ? `${hostKind}: ${check.reason}` : '').toBe('valid')
      }
    })
  }
})

describe('what makes a certificate unusable', () => {
  let ca: Key
  let host: Key
  let files: string[]

  beforeAll(() => {
    ca = makeKey('ed25519')
    host = makeKey('ed25519')
    files = [knownHosts([`@cert-authority ${HOST},[other.example.org]:2222 ${ca.line}`])]
  })

  const check = (blob: Buffer, options: {host?: string; port?: number; files?: string[]; now?: number} = {}): CertificateCheck =>
    checkHostCertificate(blob, {files: options.files ?? files, host: options.host ?? HOST, port: options.port ?? 22, ...(options.now !== undefined ? {now: options.now} : {})})
  const reason = (result: CertificateCheck): string => (result.status === 'invalid' ? result.reason : `not invalid: ${result.status}`)

  it('a window that has passed, or not begun', () => {
    expect(reason(check(certify(ca, host, ['-n', HOST, '-V', '20200101:20200102'])))).toMatch(/expired on 2020-01-02/)
    expect(reason(check(certify(ca, host, ['-n', HOST, '-V', '+1d:+2d'])))).toMatch(/not yet valid/)
    const forever = certify(ca, host, ['-n', HOST])
    expect(check(forever).status).toBe('valid')
    expect(check(forever, {now: Date.UTC(2200, 0, 1)}).status).toBe('valid')
  })

  it('principals that do not name the host; wildcards in them match, as in OpenSSH', () => {
    expect(reason(check(certify(ca, host, ['-n', 'other.example.org'])))).toMatch(/login\.example\.org is not among its principals \(other\.example\.org\)/)
    expect(reason(check(certify(ca, host, [])))).toMatch(/no principals/)
    const wild = certify(ca, host, ['-n', '*.example.org'])
    expect(check(wild).status).toBe('valid')
    expect(reason(check(wild, {host: 'example.org', files: [knownHosts([`@cert-authority * ${ca.line}`])]}))).toMatch(/example\.org is not among its principals \(\*\.example\.org\)/)
  })

  it('a user certificate, critical options', () => {
    expect(reason(check(certify(ca, host, ['-n', HOST], false)))).toMatch(/not a host certificate/)
    expect(reason(check(certify(ca, host, ['-n', HOST, '-O', 'force-command=true'])))).toMatch(/critical options/)
  })

  it('a CA that is not trusted for the host, or another CA', () => {
    const blob = certify(ca, host, ['-n', `${HOST},other.example.org`])
    // The CA line names [other.example.org]:2222, not port 22.
    expect(reason(check(blob, {host: 'other.example.org'}))).toMatch(/not an @cert-authority for other\.example\.org/)
    expect(check(blob, {host: 'other.example.org', port: 2222}).status).toBe('valid')
    const stranger = makeKey('ed25519')
    expect(reason(check(certify(stranger, host, ['-n', HOST])))).toMatch(/its CA \(SHA256:.*\) is not an @cert-authority/)
  })

  it('a signature that does not verify, or one made with SHA-1', () => {
    const blob = Buffer.from(certify(ca, host, ['-n', HOST]))
    // Change one character of the key id, which the CA signed.
    const at = blob.indexOf('login1')
    blob[at] = 'L'.charCodeAt(0)
    expect(reason(check(blob))).toMatch(/CA signature does not verify \(bad signature\)/)
    const rsaCa = makeKey('rsa')
    const sha1 = certify(rsaCa, host, ['-n', HOST, '-t', 'ssh-rsa'])
    expect(reason(check(sha1, {files: [knownHosts([`@cert-authority * ${rsaCa.line}`])]}))).toMatch(/ssh-rsa is not allowed/)
    expect(check(certify(rsaCa, host, ['-n', HOST, '-t', 'rsa-sha2-256']), {files: [knownHosts([`@cert-authority * ${rsaCa.line}`])]}).status).toBe('valid')
  })

  it('a revoked host key or CA', () => {
    const blob = certify(ca, host, ['-n', HOST])
    expect(check(blob, {files: [...files, knownHosts([`@revoked * ${host.line}`])]})).toMatchObject({status: 'revoked', what: 'host key'})
    expect(check(blob, {files: [...files, knownHosts([`@revoked * ${ca.line}`])]})).toMatchObject({status: 'revoked', what: 'CA key'})
  })

  it('garbage', () => {
    expect(reason(check(Buffer.from('not a certificate')))).toMatch(/cannot be read/)
    expect(reason(check(host.blob))).toMatch(/unsupported certificate type ssh-ed25519/)
    expect(verifySshSignature(host.blob, Buffer.from('x'), Buffer.from('data'))).toBeInstanceOf(Error)
  })
})

describe('verifyHostKey with a certificate', () => {
  let ca: Key
  let host: Key
  let blob: Buffer

  beforeAll(() => {
    ca = makeKey('ed25519')
    host = makeKey('ed25519')
    blob = certify(ca, host, ['-n', HOST])
  })

  function person(): Interaction & {asked: Prompt[]; said: string[]} {
    const asked: Prompt[] = []
    const said: string[] = []
    return {asked, said, interactive: true, answer: async (prompts) => (asked.push(...prompts), prompts.map(() => 'no')), progress: (message) => said.push(message)}
  }

  async function verify(files: string[], key: Buffer, interactive: boolean, interaction = person()): Promise<unknown> {
    const certificate = checkHostCertificate(blob, {files, host: HOST, port: 22})
    return verifyHostKey({host: HOST, port: 22, key, files, appendTo: files[0]!, interaction, interactive, certificate}).then(
      () => undefined,
      (error: unknown) => error,
    )
  }

  it('lets in the key its certificate vouches for, asking nothing and writing nothing', async () => {
    const files = [knownHosts([`@cert-authority * ${ca.line}`])]
    const interaction = person()
    expect(await verify(files, host.blob, false, interaction)).toBeUndefined()
    expect(interaction.asked).toEqual([])
    expect(interaction.said.join('\n')).toMatch(/shows a host certificate \(login1\) of the CA in .*:1/)
    expect(readFileSync(files[0]!, 'utf8')).toBe(`@cert-authority * ${ca.line}\n`)
  })

  it('treats another key as a plain one, saying why the certificate did not count', async () => {
    const files = [knownHosts([`@cert-authority * ${ca.line}`])]
    const other = makeKey('ed25519')
    const error = await verify(files, other.blob, false)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as Error).message).toMatch(/is not in .* \(its host certificate is for another key\); refusing/)
  })

  it('says why an unusable certificate did not count, on a terminal too', async () => {
    const files = [knownHosts([`@cert-authority other.example.org ${ca.line}`])]
    const error = await verify(files, host.blob, false)
    expect((error as Error).message).toMatch(/its host certificate was not accepted: its CA .* is not an @cert-authority for login\.example\.org/)
    const interaction = person()
    await verify(files, host.blob, true, interaction)
    expect(interaction.asked).toHaveLength(1)
  })

  it('refuses a revoked certificate though the plain key is known', async () => {
    const files = [knownHosts([`@cert-authority * ${ca.line}`, `${HOST} ${host.line}`, `@revoked * ${ca.line}`])]
    const error = await verify(files, host.blob, true)
    expect((error as Error).message).toMatch(/CA \(SHA256:.*\) that signed the host certificate of login\.example\.org is revoked in .*:3/)
  })
})

describe('ProxyCommand tokens', () => {
  const tokens = {host: 'login.example.org', port: 2222, user: 'alice', alias: 'anvil'}

  it('expands %% %h %k %n %p %r as ssh does', () => {
    expect(expandProxyCommand('nc -X connect -x proxy:8080 %h %p', tokens)).toBe('nc -X connect -x proxy:8080 login.example.org 2222')
    expect(expandProxyCommand('ssh -W [%h]:%p %r@gw # %n %k %%h', tokens)).toBe('ssh -W [login.example.org]:2222 alice@gw # anvil anvil %h')
    expect(expandProxyCommand('%k', {...tokens, hostKeyAlias: 'alias.example.org'})).toBe('alias.example.org')
  })

  it('refuses the tokens ProxyCommand does not take, as ssh does', () => {
    expect(() => expandProxyCommand('ssh -S %C gw', tokens)).toThrow(/the token %C, which ProxyCommand does not take/)
    expect(() => expandProxyCommand('nc %h 100%', tokens)).toThrow(/a lone %/)
  })
})
