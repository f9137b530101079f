import {execFileSync} from 'node:child_process'
import {copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AnnexError} from '../../src/errors.js'
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  hostFieldMatches,
  keyType,
  knownHostName,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/ssh/known-hosts.js'
import type {Interaction, Prompt} from '../../src/ssh/transport.js'

let dir: string
let keyA: {blob: Buffer; line: string}
let keyB: {blob: Buffer; line: string}
let keyRsa: {blob: Buffer; line: string}

function makeKey(name: string, type = 'ed25519'): {blob: Buffer; line: string} {
  const file = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', '', '-f', file])
  const line = readFileSync(`${file}.pub`, 'utf8').trim()
  return {blob: Buffer.from(line.split(' ')[1]!, 'base64'), line: line.split(' ').slice(0, 2).join(' ')}
}

function answering(answer: string): Interaction & {asked: {prompts: Prompt[]; instructions: string}[]} {
  const asked: {prompts: Prompt[]; instructions: string}[] = []
  return {
    asked,
    answer: async (prompts, instructions) => {
      asked.push({prompts, instructions})
      return prompts.map(() => answer)
    },
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'known-hosts-'))
  keyA = makeKey('a')
  keyB = makeKey('b')
  keyRsa = makeKey('r', 'rsa')
})
afterAll(() => rmSync(dir, {recursive: true, force: true}))

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe('names, fingerprints, key types', () => {
  it('writes [host]:port off port 22, lower case', () => {
    expect(knownHostName('Login.Example.ORG', 22)).toBe('login.example.org')
    expect(knownHostName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222')
  })

  it('fingerprints as ssh-keygen -l does', () => {
    const printed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'a.pub')], {encoding: 'utf8'})
    expect(printed).toContain(fingerprint(keyA.blob))
    expect(fingerprint(keyA.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  it('reads the key type from the blob', () => {
    expect(keyType(keyA.blob)).toBe('ssh-ed25519')
    expect(keyType(keyRsa.blob)).toBe('ssh-rsa')
    expect(keyType(Buffer.from([0, 0]))).toBe('unknown')
  })
})

describe('host patterns', () => {
  it('matches plain names, comma lists, wildcards and negation', () => {
    expect(hostFieldMatches('login.example.org', ['login.example.org'])).toBe(true)
    expect(hostFieldMatches('a.org,login.example.org,b.org', ['login.example.org'])).toBe(true)
    expect(hostFieldMatches('*.example.org', ['login.example.org'])).toBe(true)
    expect(hostFieldMatches('login?.example.org', ['login1.example.org'])).toBe(true)
    expect(hostFieldMatches('*.example.org,!bad.example.org', ['bad.example.org'])).toBe(false)
    expect(hostFieldMatches('other.org', ['login.example.org'])).toBe(false)
    // A dot is literal, not "any character".
    expect(hostFieldMatches('login.example.org', ['loginXexample.org'])).toBe(false)
  })

  it('keeps ports apart: [host]:port entries match only that port', () => {
    expect(hostFieldMatches('[127.0.0.1]:2222', [knownHostName('127.0.0.1', 2222)])).toBe(true)
    expect(hostFieldMatches('[127.0.0.1]:2222', [knownHostName('127.0.0.1', 22)])).toBe(false)
    expect(hostFieldMatches('127.0.0.1', [knownHostName('127.0.0.1', 2222)])).toBe(false)
  })

  it('matches hashed names written by ssh-keygen -H', () => {
    const path = file('to-hash', `login.example.org ${keyA.line}\n[127.0.0.1]:2222 ${keyB.line}\n`)
    execFileSync('ssh-keygen', ['-H', '-f', path], {stdio: 'ignore'})
    const entries = parseKnownHosts(readFileSync(path, 'utf8'), path)
    expect(entries.every((entry) => entry.hosts.startsWith('|1|'))).toBe(true)
    expect(checkHostKey([path], 'login.example.org', 22, keyA.blob).status).toBe('known')
    expect(checkHostKey([path], '127.0.0.1', 2222, keyB.blob).status).toBe('known')
    expect(checkHostKey([path], '127.0.0.1', 2223, keyB.blob).status).toBe('unknown')
    expect(checkHostKey([path], 'other.example.org', 22, keyA.blob).status).toBe('unknown')
  })
})

describe('checkHostKey', () => {
  it('finds a known key, and tells unknown from changed', () => {
    const path = file('plain', `# comment\n\nlogin.example.org ${keyA.line} comment here\n[127.0.0.1]:2222 ${keyB.line}\n`)
    expect(checkHostKey([path], 'login.example.org', 22, keyA.blob)).toMatchObject({status: 'known', entry: {line: 3}})
    expect(checkHostKey([path], 'login.example.org', 22, keyB.blob)).toMatchObject({status: 'changed', entry: {file: path, line: 3}})
    expect(checkHostKey([path], 'new.example.org', 22, keyA.blob)).toEqual({status: 'unknown'})
    expect(checkHostKey([path], '127.0.0.1', 2222, keyB.blob).status).toBe('known')
  })

  it('calls a key of another type for a known host a change', () => {
    const path = file('other-type', `login.example.org ${keyA.line}\n`)
    expect(checkHostKey([path], 'login.example.org', 22, keyRsa.blob).status).toBe('changed')
    expect(knownKeyTypes([path], 'login.example.org', 22)).toEqual(['ssh-ed25519'])
  })

  it('accepts any of several keys listed for a host, across files', () => {
    const one = file('one', `login.example.org ${keyA.line}\n`)
    const two = file('two', `login.example.org ${keyRsa.line}\n`)
    expect(checkHostKey([one, two], 'login.example.org', 22, keyRsa.blob).status).toBe('known')
    expect(checkHostKey([join(dir, 'missing'), two], 'login.example.org', 22, keyRsa.blob).status).toBe('known')
  })

  it('refuses a @revoked key wherever it is listed, and skips other markers', () => {
    const path = file('revoked', `@revoked * ${keyA.line}\nlogin.example.org ${keyA.line}\n@cert-authority *.example.org ${keyB.line}\n`)
    expect(checkHostKey([path], 'login.example.org', 22, keyA.blob)).toMatchObject({status: 'revoked', entry: {line: 1}})
    // The CA line is not a host key.
    expect(checkHostKey([path], 'other.example.org', 22, keyB.blob).status).toBe('unknown')
  })

  it('skips malformed lines', () => {
    const path = file('bad', `login.example.org\nlogin.example.org ssh-ed25519\nlogin.example.org ssh-ed25519 !!notbase64\nlogin.example.org ${keyA.line}\n`)
    expect(parseKnownHosts(readFileSync(path, 'utf8'))).toHaveLength(1)
    expect(checkHostKey([path], 'login.example.org', 22, keyA.blob).status).toBe('known')
  })
})

describe('appendKnownHost', () => {
  it('writes lines OpenSSH finds (ssh-keygen -F), hashed or not', () => {
    const plain = join(dir, 'append-plain')
    appendKnownHost(plain, '127.0.0.1', 2222, keyA.blob)
    expect(readFileSync(plain, 'utf8')).toBe(`[127.0.0.1]:2222 ${keyA.line}\n`)
    const hashed = join(dir, 'append-hashed')
    writeFileSync(hashed, `other.org ${keyB.line}`) // no final newline
    appendKnownHost(hashed, 'login.example.org', 22, keyA.blob, true)
    const lines = readFileSync(hashed, 'utf8').split('\n')
    expect(lines[1]).toMatch(/^\|1\|/)
    expect(execFileSync('ssh-keygen', ['-F', 'login.example.org', '-f', hashed], {encoding: 'utf8'})).toContain('ssh-ed25519')
    expect(execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', plain], {encoding: 'utf8'})).toContain('ssh-ed25519')
    expect(checkHostKey([hashed], 'login.example.org', 22, keyA.blob).status).toBe('known')
  })
})

describe('verifyHostKey', () => {
  const base = (files: string[], interaction: Interaction, interactive: boolean) => ({
    host: 'login.example.org',
    port: 22,
    key: keyA.blob,
    files,
    appendTo: files[0]!,
    interaction,
    interactive,
  })

  it('accepts a known key without asking', async () => {
    const path = file('v-known', `login.example.org ${keyA.line}\n`)
    const interaction = answering('no')
    await verifyHostKey(base([path], interaction, true))
    expect(interaction.asked).toHaveLength(0)
  })

  it('refuses an unknown host without a terminal: one line naming the host and the file', async () => {
    const path = file('v-unknown', '')
    const interaction = answering('yes')
    const error = await verifyHostKey(base([path], interaction, false)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    const message = (error as Error).message
    expect(message).toContain('login.example.org')
    expect(message).toContain(path)
    expect(message).toContain(fingerprint(keyA.blob))
    expect(message).not.toContain('\n')
    expect(interaction.asked).toHaveLength(0)
    expect(readFileSync(path, 'utf8')).toBe('')
  })

  it('on a terminal shows the fingerprint, asks, and remembers a yes', async () => {
    const path = join(dir, 'v-ask', 'known_hosts')
    const interaction = answering('yes')
    await verifyHostKey(base([path], interaction, true))
    expect(interaction.asked).toHaveLength(1)
    expect(interaction.asked[0]!.instructions).toContain(fingerprint(keyA.blob))
    expect(interaction.asked[0]!.prompts[0]).toMatchObject({echo: true})
    expect(checkHostKey([path], 'login.example.org', 22, keyA.blob).status).toBe('known')
  })

  it('refuses, and writes nothing, when the answer is no', async () => {
    const path = file('v-no', '')
    await expect(verifyHostKey(base([path], answering('no'), true))).rejects.toThrow(/not accepted/)
    expect(readFileSync(path, 'utf8')).toBe('')
  })

  it('always refuses a changed key, never asking', async () => {
    const path = file('v-changed', `login.example.org ${keyB.line}\n`)
    const interaction = answering('yes')
    const error = await verifyHostKey(base([path], interaction, true)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as Error).message).toMatch(/CHANGED/)
    expect((error as Error).message).toContain(`${path}:1`)
    expect(interaction.asked).toHaveLength(0)
  })

  it('always refuses a revoked key', async () => {
    const path = file('v-revoked', `@revoked login.example.org ${keyA.line}\nlogin.example.org ${keyA.line}\n`)
    await expect(verifyHostKey(base([path], answering('yes'), true))).rejects.toThrow(/revoked/)
  })

  it('reads the global files too, but writes to the first', async () => {
    const user = file('v-user', '')
    const global = join(dir, 'v-global')
    copyFileSync(file('v-src', `login.example.org ${keyA.line}\n`), global)
    await verifyHostKey(base([user, global], answering('no'), false))
    expect(readFileSync(user, 'utf8')).toBe('')
  })
})
