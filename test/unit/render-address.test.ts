import {describe, expect, it} from 'vitest'

import {collectorEndpoint, endpointText} from '../../src/render/address.js'

describe('collectorEndpoint', () => {
  it.each([
    ['ap.example.org:9618?sock=ap_collector', {host: 'ap.example.org', port: 9618}],
    ['ap.example.org:9700', {host: 'ap.example.org', port: 9700}],
    ['ap.example.org', {host: 'ap.example.org', port: 9618}],
    ['ap.example.org?sock=ap_collector', {host: 'ap.example.org', port: 9618}],
    ['<192.0.2.2:9618?addrs=192.0.2.2-9618+[2001:db8::2]-9618&alias=ap.example.org&noUDP&sock=ap_collector>', {host: '192.0.2.2', port: 9618}],
    ['127.0.0.1:41234?sock=ap_collector', {host: '127.0.0.1', port: 41234}],
    ['<[2001:db8::2]:9618?sock=ap_collector>', {host: '2001:db8::2', port: 9618}],
    ['[::1]', {host: '::1', port: 9618}],
    ['fe80::1%eth0', {host: 'fe80::1%eth0', port: 9618}],
    ['::1', {host: '::1', port: 9618}],
    ['  cm1.example.org:9618, cm2.example.org:9618', {host: 'cm1.example.org', port: 9618}],
  ])('%s', (address, endpoint) => {
    expect(collectorEndpoint(address)).toEqual(endpoint)
  })

  it.each(['', 'host:port', 'host:0', 'host:70000', '<1.2.3.4:9618', '$(touch x):9618', '-oProxy:22', '[not-v6]:9618'])('refuses %j', (address) => {
    expect(collectorEndpoint(address)).toBeUndefined()
  })

  it('writes an IPv6 address in brackets', () => {
    expect(endpointText({host: '::1', port: 9618})).toBe('[::1]:9618')
    expect(endpointText({host: 'ap', port: 1})).toBe('ap:1')
  })
})
