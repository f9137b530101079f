import {createPublicKey, verify, type KeyObject} from 'node:crypto'

import {fingerprint, hostFieldMatches, knownHostName, readKnownHosts, type KnownHostEntry} from './known-hosts.js'

/**
 * OpenSSH host certificates (PROTOCOL.certkeys) and the checks `ssh` makes
 * of one before trusting a host through an `@cert-authority` line of
 * known_hosts: the CA is trusted for the host's name, its signature is
 * good, the certificate is a host certificate naming the host among its
 * principals (wildcards allowed, as OpenSSH allows them), within its
 * validity window, with no critical options; and neither the host key nor
 * the CA is `@revoked`. Keys and signatures: Ed25519, ECDSA (NIST P-256,
 * P-384, P-521) and RSA (SHA-2 signatures only, as OpenSSH's default
 * CASignatureAlgorithms).
 */

/** Reads the SSH wire encoding (RFC 4251): uint32, uint64, string, mpint. */
export class SshReader {
  #pos = 0
  constructor(readonly buffer: Buffer) {}

  get pos(): number {
    return this.#pos
  }

  get done(): boolean {
    return this.#pos === this.buffer.length
  }

  #need(bytes: number): void {
    if (this.#pos + bytes > this.buffer.length) throw new Error('truncated SSH data')
  }

  byte(): number {
    this.#need(1)
    return this.buffer[this.#pos++]!
  }

  bytes(length: number): Buffer {
    this.#need(length)
    const out = this.buffer.subarray(this.#pos, this.#pos + length)
    this.#pos += length
    return out
  }

  uint32(): number {
    this.#need(4)
    const value = this.buffer.readUInt32BE(this.#pos)
    this.#pos += 4
    return value
  }

  uint64(): bigint {
    this.#need(8)
    const value = this.buffer.readBigUInt64BE(this.#pos)
    this.#pos += 8
    return value
  }

  string(): Buffer {
    return this.bytes(this.uint32())
  }

  text(): string {
    return this.string().toString('utf8')
  }
}

/** An SSH `string`: uint32 length, then the bytes. */
export function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** An SSH `mpint` of a non-negative big-endian number. */
export function sshMpint(unsigned: Buffer): Buffer {
  let start = 0
  while (start < unsigned.length && unsigned[start] === 0) start++
  const digits = unsigned.subarray(start)
  return sshString(digits.length > 0 && digits[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), digits]) : digits)
}

const CERT_SUFFIX = '-cert-v01@openssh.com'

/** The plain key type of a certificate type (`ssh-ed25519-cert-v01@openssh.com` -> `ssh-ed25519`). */
export function plainKeyType(type: string): string {
  return type.endsWith(CERT_SUFFIX) ? type.slice(0, -CERT_SUFFIX.length) : type
}

/** Certificate types whose keys this module reads. */
export const CERTIFICATE_TYPES = [
  'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'ssh-rsa-cert-v01@openssh.com',
]

export const SSH_CERT_TYPE_HOST = 2

export interface SshCertificate {
  /** The certificate's type, `ssh-ed25519-cert-v01@openssh.com`, ... */
  type: string
  /** The certified key as a plain public key blob: what a server shows when it does not send the certificate. */
  key: Buffer
  serial: bigint
  /** 1 user, 2 host. */
  certType: number
  keyId: string
  principals: string[]
  /** Seconds since the epoch; validBefore 2^64-1 is "forever". */
  validAfter: bigint
  validBefore: bigint
  criticalOptions: Buffer
  extensions: Buffer
  /** The CA's public key blob. */
  caKey: Buffer
  /** The signature field: string algorithm, string blob. */
  signature: Buffer
  /** The bytes the CA signed: the certificate up to the signature. */
  signed: Buffer
}

/** Reads a certificate blob; throws an Error saying what is wrong. */
export function parseCertificate(blob: Buffer): SshCertificate {
  const reader = new SshReader(blob)
  const type = reader.text()
  if (!CERTIFICATE_TYPES.includes(type)) throw new Error(`unsupported certificate type ${type}`)
  reader.string() // nonce
  const keyStart = reader.pos
  if (type === 'ssh-ed25519-cert-v01@openssh.com') {
    reader.string()
  } else if (type.startsWith('ecdsa-')) {
    reader.string()
    reader.string()
  } else {
    reader.string() // e
    reader.string() // n
  }
  const key = Buffer.concat([sshString(plainKeyType(type)), blob.subarray(keyStart, reader.pos)])
  const serial = reader.uint64()
  const certType = reader.uint32()
  const keyId = reader.text()
  const principalList = new SshReader(reader.string())
  const principals: string[] = []
  while (!principalList.done) principals.push(principalList.text())
  const validAfter = reader.uint64()
  const validBefore = reader.uint64()
  const criticalOptions = reader.string()
  const extensions = reader.string()
  reader.string() // reserved
  const caKey = reader.string()
  const signedEnd = reader.pos
  const signature = reader.string()
  if (!reader.done) throw new Error('trailing data after the certificate signature')
  return {type, key, serial, certType, keyId, principals, validAfter, validBefore, criticalOptions, extensions, caKey, signature, signed: blob.subarray(0, signedEnd)}
}

const CURVES: Record<string, {jwk: string; hash: string; size: number}> = {
  nistp256: {jwk: 'P-256', hash: 'sha256', size: 32},
  nistp384: {jwk: 'P-384', hash: 'sha384', size: 48},
  nistp521: {jwk: 'P-521', hash: 'sha512', size: 66},
}

function base64url(data: Buffer): string {
  return data.toString('base64url')
}

function unsigned(data: Buffer): Buffer {
  let start = 0
  while (start < data.length - 1 && data[start] === 0) start++
  return data.subarray(start)
}

/** A plain SSH public key blob as a node:crypto key, with its type. */
export function publicKeyFromBlob(blob: Buffer): {type: string; key: KeyObject; curve?: string} {
  const reader = new SshReader(blob)
  const type = reader.text()
  if (type === 'ssh-ed25519') {
    const x = reader.string()
    if (x.length !== 32) throw new Error('bad Ed25519 key')
    return {type, key: createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x: base64url(x)}, format: 'jwk'})}
  }
  if (type.startsWith('ecdsa-sha2-')) {
    const curveName = reader.text()
    const curve = CURVES[curveName]
    if (!curve || type !== `ecdsa-sha2-${curveName}`) throw new Error(`unsupported ECDSA curve ${curveName}`)
    const point = reader.string()
    if (point[0] !== 4 || point.length !== 1 + 2 * curve.size) throw new Error('bad ECDSA point')
    const x = point.subarray(1, 1 + curve.size)
    const y = point.subarray(1 + curve.size)
    return {type, curve: curveName, key: createPublicKey({key: {kty: 'EC', crv: curve.jwk, x: base64url(x), y: base64url(y)}, format: 'jwk'})}
  }
  if (type === 'ssh-rsa') {
    const e = unsigned(reader.string())
    const n = unsigned(reader.string())
    return {type, key: createPublicKey({key: {kty: 'RSA', n: base64url(n), e: base64url(e)}, format: 'jwk'})}
  }
  throw new Error(`unsupported key type ${type}`)
}

/** Signature algorithms a CA may sign with (OpenSSH's default CASignatureAlgorithms, less the security keys'). */
export const CA_SIGNATURE_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256']

/**
 * Checks an SSH signature field (string algorithm, string blob) over `data`
 * with the plain public key `keyBlob`: true when good, an Error saying why
 * not (a bad signature, or an algorithm not in `allowed` or not fit for the key).
 */
export function verifySshSignature(keyBlob: Buffer, signatureField: Buffer, data: Buffer, allowed: string[] = CA_SIGNATURE_ALGORITHMS): true | Error {
  let algorithm: string
  let blob: Buffer
  try {
    const reader = new SshReader(signatureField)
    algorithm = reader.text()
    blob = reader.string()
  } catch {
    return new Error('malformed signature')
  }
  if (!allowed.includes(algorithm)) return new Error(`signature algorithm ${algorithm} is not allowed`)
  let parsed: ReturnType<typeof publicKeyFromBlob>
  try {
    parsed = publicKeyFromBlob(keyBlob)
  } catch (error) {
    return error as Error
  }
  let good = false
  try {
    if (parsed.type === 'ssh-ed25519' && algorithm === 'ssh-ed25519') {
      good = verify(null, data, parsed.key, blob)
    } else if (parsed.type.startsWith('ecdsa-sha2-') && algorithm === parsed.type) {
      const curve = CURVES[parsed.curve ?? '']!
      const reader = new SshReader(blob)
      const r = unsigned(reader.string())
      const s = unsigned(reader.string())
      if (r.length > curve.size || s.length > curve.size) return new Error('malformed ECDSA signature')
      const p1363 = Buffer.alloc(2 * curve.size)
      r.copy(p1363, curve.size - r.length)
      s.copy(p1363, 2 * curve.size - s.length)
      good = verify(curve.hash, data, {key: parsed.key, dsaEncoding: 'ieee-p1363'}, p1363)
    } else if (parsed.type === 'ssh-rsa' && (algorithm === 'rsa-sha2-256' || algorithm === 'rsa-sha2-512' || algorithm === 'ssh-rsa')) {
      good = verify(algorithm === 'rsa-sha2-512' ? 'sha512' : algorithm === 'rsa-sha2-256' ? 'sha256' : 'sha1', data, parsed.key, blob)
    } else {
      return new Error(`a ${parsed.type} key cannot make a ${algorithm} signature`)
    }
  } catch (error) {
    return new Error(`signature check failed: ${(error as Error).message}`)
  }
  return good ? true : new Error('bad signature')
}

/** OpenSSH's match_pattern: `*` and `?`, case-sensitive. */
function matchPattern(text: string, pattern: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's')
  return regex.test(text)
}

export type CertificateCheck =
  /** The certificate vouches for `cert.key`, through the CA of `authority`. */
  | {status: 'valid'; cert: SshCertificate; authority: KnownHostEntry}
  /** The host key or its CA is revoked: refuse, whatever else known_hosts says. */
  | {status: 'revoked'; cert: SshCertificate; entry: KnownHostEntry; what: 'host key' | 'CA key'}
  /** Not usable; the plain host key is checked as if there were no certificate. */
  | {status: 'invalid'; reason: string; cert?: SshCertificate}

/** The `@cert-authority` entries of `files` whose host patterns match the host. */
export function certAuthorities(files: string[], host: string, port: number, entries: KnownHostEntry[] = readKnownHosts(files)): KnownHostEntry[] {
  const names = [knownHostName(host, port)]
  return entries.filter((entry) => entry.marker === '@cert-authority' && hostFieldMatches(entry.hosts, names))
}

/**
 * What `ssh` decides about a host certificate `blob` shown by `host`:`port`
 * (`host` is the HostKeyAlias when one is set), given the known_hosts
 * `files`, at time `now` (ms).
 */
export function checkHostCertificate(blob: Buffer, options: {files: string[]; host: string; port: number; now?: number}): CertificateCheck {
  let cert: SshCertificate
  try {
    cert = parseCertificate(blob)
  } catch (error) {
    return {status: 'invalid', reason: `the certificate cannot be read (${(error as Error).message})`}
  }
  const entries = readKnownHosts(options.files)
  for (const entry of entries) {
    if (entry.marker !== '@revoked') continue
    if (entry.key.equals(cert.key)) return {status: 'revoked', cert, entry, what: 'host key'}
    if (entry.key.equals(cert.caKey)) return {status: 'revoked', cert, entry, what: 'CA key'}
  }
  const name = knownHostName(options.host, options.port)
  const authorities = certAuthorities(options.files, options.host, options.port, entries)
  const authority = authorities.find((entry) => entry.key.equals(cert.caKey))
  if (!authority) return {status: 'invalid', cert, reason: `its CA (${fingerprint(cert.caKey)}) is not an @cert-authority for ${name}`}
  if (cert.certType !== SSH_CERT_TYPE_HOST) return {status: 'invalid', cert, reason: 'it is not a host certificate'}
  const signed = verifySshSignature(cert.caKey, cert.signature, cert.signed)
  if (signed !== true) return {status: 'invalid', cert, reason: `its CA signature does not verify (${signed.message})`}
  const now = BigInt(Math.floor((options.now ?? Date.now()) / 1000))
  if (now < cert.validAfter) return {status: 'invalid', cert, reason: `it is not yet valid (from ${isoTime(cert.validAfter)})`}
  if (now >= cert.validBefore) return {status: 'invalid', cert, reason: `it expired on ${isoTime(cert.validBefore)}`}
  if (cert.principals.length === 0) return {status: 'invalid', cert, reason: 'it lists no principals'}
  if (!cert.principals.some((principal) => matchPattern(options.host, principal))) {
    return {status: 'invalid', cert, reason: `${options.host} is not among its principals (${cert.principals.join(', ')})`}
  }
  if (cert.criticalOptions.length !== 0) return {status: 'invalid', cert, reason: 'it has critical options, which no host certificate may have'}
  return {status: 'valid', cert, authority}
}

function isoTime(seconds: bigint): string {
  if (seconds > 253402300799n) return 'never'
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.000Z$/, 'Z')
}
