/** A daemon's host (a name, or an IPv4 / IPv6 address without brackets) and TCP port. */
export interface Endpoint {
  host: string
  port: number
}

/** HTCondor's well-known port: an address without one means this. */
export const DEFAULT_COLLECTOR_PORT = 9618

const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/
// An IPv6 address, with a zone (%eth0) where it is link-local.
const IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[A-Za-z0-9_.-]+)?$/

/**
 * Where a collector address points: `host`, `host:port`, either followed by
 * `?sock=...`, or a sinful string `<1.2.3.4:9618?addrs=...&sock=...>` (its
 * primary address); an IPv6 address in brackets, or bare without a port.
 * Of a list, the first.
 * Pure; undefined when the text is none of these.
 */
export function collectorEndpoint(address: string): Endpoint | undefined {
  let text = address.trim().split(/[\s,]+/)[0] ?? ''
  if (text.startsWith('<')) {
    const end = text.indexOf('>')
    if (end < 0) return undefined
    text = text.slice(1, end)
  }
  text = text.split('?')[0]!
  let host: string
  let port: string | undefined
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  // Two colons or more and no brackets: an IPv6 address with no port.
  const bareV6 = !bracketed && /:.*:/.test(text)
  if (bracketed || bareV6) {
    host = bracketed ? bracketed[1]! : text
    port = bracketed?.[2]
    if (!IPV6.test(host)) return undefined
  } else {
    const plain = /^([^:]+)(?::(\d+))?$/.exec(text)
    if (!plain) return undefined
    host = plain[1]!
    port = plain[2]
    if (!HOST_NAME.test(host)) return undefined
  }
  const number = port === undefined ? DEFAULT_COLLECTOR_PORT : Number(port)
  if (!Number.isSafeInteger(number) || number < 1 || number > 65_535) return undefined
  return {host, port: number}
}

/** `host:port`, with an IPv6 address in brackets. */
export function endpointText(endpoint: Endpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`
}
