import {execFileSync} from 'node:child_process'
import {describe, expect, it} from 'vitest'

import {classadString, condorValue, shellQuote} from '../../src/quote.js'

const hostile = [
  `'; touch /tmp/pwned; echo '`,
  '$(touch /tmp/pwned)',
  '`touch /tmp/pwned`',
  'a b\tc',
  '"double" and \\backslash\\',
  '*?[a-z]{1,2}~',
  '',
  "it's",
  'new\nline',
]

describe('shellQuote', () => {
  it.each(hostile)('bash reads %j back as exactly one word, unchanged', (value) => {
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${shellQuote(value)}`], {encoding: 'utf8'})
    expect(out).toBe(`${value}\u0000`)
  })

  it('refuses a NUL byte', () => {
    expect(() => shellQuote('a\u0000b')).toThrow(/NUL/)
  })
})

describe('classadString', () => {
  it('escapes quotes and backslashes', () => {
    expect(classadString('a"b\\c')).toBe('"a\\"b\\\\c"')
  })

  it('refuses control characters', () => {
    expect(() => classadString('a\nb')).toThrow(/control character/)
  })
})

describe('condorValue', () => {
  it('turns every $ into $(DOLLAR) so no macro expands', () => {
    expect(condorValue('$(HOME)/x$y')).toBe('$(DOLLAR)(HOME)/x$(DOLLAR)y')
  })

  it('refuses newlines and a trailing backslash', () => {
    expect(() => condorValue('a\nSTART = true')).toThrow(/control character/)
    expect(() => condorValue('a\\')).toThrow(/backslash/)
  })
})
