import {createECDH, createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes} from 'node:crypto'
import type {Duplex} from 'node:stream'

import {parseCertificate, plainKeyType, sshMpint, SshReader, sshString, verifySshSignature} from './host-cert.js'

/**
 * Asks an SSH server for its host certificate: the opening of an SSH
 * connection (RFC 4253) up to the server's key exchange reply, offering only
 * certificate host key algorithms, then a goodbye. ssh2, the built-in
 * client, offers and reads plain host keys only; a host known through an
 * `@cert-authority` line is checked with the certificate fetched here, and
 * ssh2's own connection then proves the server holds the certified key.
 * The reply's signature over the exchange hash is checked too: the
 * certificate comes from a server holding its key.
 */

/** Host certificate algorithms offered, in order (OpenSSH's own order). */
export const CERTIFICATE_ALGORITHMS = [
  'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'rsa-sha2-512-cert-v01@openssh.com',
  'rsa-sha2-256-cert-v01@openssh.com',
]

const KEX = ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521']
// Never used (the probe ends before keys are taken into use), but a server refuses a KEXINIT without one it has.
const CIPHERS = ['aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com']
const MACS = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1']

const MSG_DISCONNECT = 1
const MSG_IGNORE = 2
const MSG_UNIMPLEMENTED = 3
const MSG_DEBUG = 4
const MSG_KEXINIT = 20
const MSG_KEX_ECDH_INIT = 30
const MSG_KEX_ECDH_REPLY = 31

const VERSION = 'SSH-2.0-hpc_annex_certificate_check'

/** The server offered no certificate of the algorithms asked for. */
export class NoCertificateError extends Error {}

function packet(payload: Buffer): Buffer {
  // Before keys are in use: block size 8, at least 4 bytes of padding, no MAC.
  let padding = 8 - ((5 + payload.length) % 8)
  if (padding < 4) padding += 8
  const head = Buffer.alloc(5)
  head.writeUInt32BE(1 + payload.length + padding, 0)
  head[4] = padding
  return Buffer.concat([head, payload, randomBytes(padding)])
}

function nameList(names: string[]): Buffer {
  return sshString(names.join(','))
}

function kexinit(hostKeyAlgorithms: string[]): Buffer {
  return Buffer.concat([
    Buffer.from([MSG_KEXINIT]),
    randomBytes(16),
    nameList(KEX),
    nameList(hostKeyAlgorithms),
    nameList(CIPHERS),
    nameList(CIPHERS),
    nameList(MACS),
    nameList(MACS),
    nameList(['none']),
    nameList(['none']),
    nameList([]),
    nameList([]),
    Buffer.from([0]),
    Buffer.alloc(4),
  ])
}

function serverLists(payload: Buffer): {kex: string[]; hostKey: string[]} {
  const reader = new SshReader(payload)
  reader.byte()
  reader.bytes(16)
  const kex = reader.text().split(',')
  const hostKey = reader.text().split(',')
  return {kex, hostKey}
}

interface Exchange {
  clientPublic: Buffer
  hash: string
  secret(serverPublic: Buffer): Buffer
}

function exchange(kex: string): Exchange {
  if (kex.startsWith('curve25519-sha256')) {
    const {publicKey, privateKey} = generateKeyPairSync('x25519')
    const jwk = publicKey.export({format: 'jwk'})
    return {
      clientPublic: Buffer.from(jwk.x ?? '', 'base64url'),
      hash: 'sha256',
      secret: (serverPublic) => {
        if (serverPublic.length !== 32) throw new Error('bad curve25519 public key from the server')
        const peer = createPublicKey({key: {kty: 'OKP', crv: 'X25519', x: serverPublic.toString('base64url')}, format: 'jwk'})
        return diffieHellman({privateKey, publicKey: peer})
      },
    }
  }
  const curve = {'ecdh-sha2-nistp256': ['prime256v1', 'sha256'], 'ecdh-sha2-nistp384': ['secp384r1', 'sha384'], 'ecdh-sha2-nistp521': ['secp521r1', 'sha512']}[kex]
  if (!curve) throw new Error(`unsupported key exchange ${kex}`)
  const ecdh = createECDH(curve[0]!)
  return {clientPublic: ecdh.generateKeys(), hash: curve[1]!, secret: (serverPublic) => ecdh.computeSecret(serverPublic)}
}

/** The signature algorithm a host key algorithm signs the exchange hash with. */
function signatureAlgorithm(hostKeyAlgorithm: string): string {
  return plainKeyType(hostKeyAlgorithm)
}

export interface ProbeOptions {
  /** Certificate algorithms to offer, most wanted first (default CERTIFICATE_ALGORITHMS). */
  algorithms?: string[]
  /** Give up after this many ms (default 30 s). */
  timeout?: number
  signal?: AbortSignal
}

/**
 * Reads the host certificate a server shows on `socket` (connected, or a
 * ProxyCommand's or a jump host's stream), checks the server's signature with
 * the certified key, and ends the conversation. Rejects with
 * NoCertificateError when the server has none of the algorithms offered, or
 * an Error saying what went wrong. `socket` is destroyed when done.
 */
export function fetchHostCertificate(socket: Duplex, options: ProbeOptions = {}): Promise<{certificate: Buffer; algorithm: string}> {
  const offered = options.algorithms ?? CERTIFICATE_ALGORITHMS
  const clientKexinit = kexinit(offered)
  return new Promise((resolve, reject) => {
    let buffer: Buffer = Buffer.alloc(0)
    let serverVersion: string | undefined
    let serverKexinit: Buffer | undefined
    let chosen: {kex: Exchange; hostKey: string} | undefined
    let settled = false
    const finish = (error: Error | undefined, value?: {certificate: Buffer; algorithm: string}): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      socket.removeListener('data', onData)
      socket.on('error', () => undefined)
      if (error) {
        socket.destroy()
        reject(error)
      } else {
        // Goodbye: SSH_MSG_DISCONNECT, "by application".
        const bye = Buffer.concat([Buffer.from([MSG_DISCONNECT]), Buffer.from([0, 0, 0, 11]), sshString('certificate read'), sshString('')])
        socket.end(packet(bye), () => socket.destroy())
        setTimeout(() => socket.destroy(), 1000).unref()
        resolve(value!)
      }
    }
    const timer = setTimeout(() => finish(new Error(`no answer within ${Math.round((options.timeout ?? 30_000) / 1000)} s`)), options.timeout ?? 30_000)
    timer.unref()
    const onAbort = (): void => finish(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'))
    if (options.signal?.aborted) return onAbort()
    options.signal?.addEventListener('abort', onAbort, {once: true})

    const onPacket = (payload: Buffer): void => {
      const type = payload[0]
      if (type === MSG_IGNORE || type === MSG_DEBUG || type === MSG_UNIMPLEMENTED) return
      if (type === MSG_DISCONNECT) {
        const reader = new SshReader(payload.subarray(1))
        reader.uint32()
        throw new Error(`the server disconnected: ${reader.text()}`)
      }
      if (type === MSG_KEXINIT && !serverKexinit) {
        serverKexinit = payload
        const lists = serverLists(payload)
        const kexName = KEX.find((name) => lists.kex.includes(name))
        if (!kexName) throw new Error(`no key exchange in common (the server offers ${lists.kex.join(', ')})`)
        const hostKey = offered.find((name) => lists.hostKey.includes(name))
        if (!hostKey) throw new NoCertificateError(`the server shows no host certificate (its host key types: ${lists.hostKey.join(', ')})`)
        chosen = {kex: exchange(kexName), hostKey}
        socket.write(packet(Buffer.concat([Buffer.from([MSG_KEX_ECDH_INIT]), sshString(chosen.kex.clientPublic)])))
        return
      }
      if (type === MSG_KEX_ECDH_REPLY && chosen && serverKexinit && serverVersion) {
        const reader = new SshReader(payload.subarray(1))
        const hostKeyBlob = reader.string()
        const serverPublic = reader.string()
        const signature = reader.string()
        const cert = parseCertificate(hostKeyBlob)
        if (plainKeyType(cert.type) !== plainKeyType(chosen.hostKey).replace(/^rsa-sha2-(256|512)$/, 'ssh-rsa')) {
          throw new Error(`the server sent a ${cert.type} for ${chosen.hostKey}`)
        }
        const shared = chosen.kex.secret(serverPublic)
        const exchangeHash = createHash(chosen.kex.hash)
          .update(sshString(VERSION))
          .update(sshString(serverVersion))
          .update(sshString(clientKexinit))
          .update(sshString(serverKexinit))
          .update(sshString(hostKeyBlob))
          .update(sshString(chosen.kex.clientPublic))
          .update(sshString(serverPublic))
          .update(sshMpint(shared))
          .digest()
        const verified = verifySshSignature(cert.key, signature, exchangeHash, [signatureAlgorithm(chosen.hostKey)])
        if (verified !== true) throw new Error(`the server's key exchange signature does not verify with its certified key (${verified.message})`)
        finish(undefined, {certificate: hostKeyBlob, algorithm: chosen.hostKey})
        return
      }
      throw new Error(`unexpected SSH message ${type} during the key exchange`)
    }

    const onData = (chunk: Buffer): void => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      try {
        while (!settled) {
          if (serverVersion === undefined) {
            const end = buffer.indexOf('\n')
            if (end < 0) {
              if (buffer.length > 8192) throw new Error('no SSH version line from the server')
              return
            }
            const line = buffer.subarray(0, end).toString('latin1').replace(/\r$/, '')
            buffer = buffer.subarray(end + 1)
            // Lines before the version line are allowed (RFC 4253 4.2).
            if (line.startsWith('SSH-')) {
              if (!/^SSH-(2\.0|1\.99)-/.test(line)) throw new Error(`the server speaks ${line}`)
              serverVersion = line
            }
            continue
          }
          if (buffer.length < 5) return
          const length = buffer.readUInt32BE(0)
          if (length < 5 || length > 256 * 1024) throw new Error('malformed SSH packet from the server')
          if (buffer.length < 4 + length) return
          const padding = buffer[4]!
          const payload = buffer.subarray(5, 4 + length - padding)
          buffer = buffer.subarray(4 + length)
          if (payload.length === 0) throw new Error('malformed SSH packet from the server')
          onPacket(payload)
        }
      } catch (error) {
        finish(error as Error)
      }
    }

    socket.on('data', onData)
    socket.once('error', (error: Error) => finish(error))
    socket.once('close', () => finish(new Error('the server closed the connection')))
    socket.once('end', () => finish(new Error('the server closed the connection')))
    // The client may send its KEXINIT right after its version line.
    socket.write(Buffer.concat([Buffer.from(`${VERSION}\r\n`, 'latin1'), packet(clientKexinit)]))
  })
}
