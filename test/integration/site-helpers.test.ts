import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {totp} from '../site/helpers.js'

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

describe('totp', () => {
  it('gives RFC 6238 test vector codes (SHA1, 6 digits)', () => {
    // RFC 6238 appendix B, secret "12345678901234567890", last 6 digits
    const rfc = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
    expect(totp(rfc, 59_000)).toBe('287082')
    expect(totp(rfc, 1_111_111_109_000)).toBe('081804')
    expect(totp(rfc, 2_000_000_000_000)).toBe('279037')
  })

  it.skipIf(!existsSync('/usr/bin/oathtool'))('agrees with oathtool', () => {
    const now = Date.now()
    for (const at of [0, 59_000, now - 90_000, now, now + 30_000, now + 240_000]) {
      const want = execFileSync('oathtool', ['--totp', '-b', SECRET, '-N', `@${Math.floor(at / 1000)}`], {encoding: 'utf8'}).trim()
      expect(totp(SECRET, at), `at ${at}`).toBe(want)
    }
  })
})
