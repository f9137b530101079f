import {describe, expect, it} from 'vitest'

import {evaluate} from '../fixtures/classad-mini.js'
import {CondorConfig} from '../fixtures/condor-config-reader.js'

// The test-owned HTCondor configuration reader must itself be right (and
// strict) before the AP configuration's checks can mean anything.
const read = (text: string, defaults: Record<string, string> = {}, version?: string) => new CondorConfig(defaults, version).read(text, 'test.config')

describe('the test HTCondor configuration reader', () => {
  it('binds macros lazily and expands self-references where they are defined', () => {
    const c = read('A = xxx\nC = $(A)\nA = yyy\nB = $(B)1\nB = $(B)2\nL = $(L) one\nL = $(L) two')
    expect(c.value('C')).toBe('yyy')
    expect(c.value('B')).toBe('12')
    expect(c.value('l')).toBe(' one two')
  })

  it('uses defaults for undefined macros, expands undefined ones to nothing, and refuses a default inside a default', () => {
    const c = read('X = $(NOPE:dflt)/$(NOPE2)/$(Y:$(Z))\nZ = zed\nBAD = $(A:$(B:c))')
    expect(c.value('X')).toBe('dflt//zed')
    expect(() => c.value('BAD')).toThrow(/default inside a default/)
  })

  it('leaves $(NAME:default) as text when HTCondor does not take the default, as HTCondor 25 does', () => {
    // Checked with condor_config_val 25.13: a "-" (and = * @ ? " ' + #) in the default makes no macro at all.
    const c = read('A = $(NOPE:a-b)\nB = $(DEF:key-name)\nDEF = x\nC = $(NOPE:/usr/bin, a.b:c)\nD = $(NOPE:$(DEF))\nS = one\nS = $(S:t-wo) more')
    expect(c.value('A')).toBe('$(NOPE:a-b)')
    expect(c.value('B')).toBe('$(DEF:key-name)')
    expect(c.value('C')).toBe('/usr/bin, a.b:c')
    expect(c.value('D')).toBe('x')
    expect(c.value('S')).toBe('$(S:t-wo) more')
    expect(() => read('A = $(NOPE:a%b)').value('A')).toThrow(/does not know whether HTCondor takes/)
  })

  it('reads multi-line values raw and continuation lines joined, skipping comments inside them', () => {
    const c = read('M @=end\n  line one $(X)\n  line two\n@end\nA = $(B) \\\n# $(C)\n$(D)\nB = b\nD = d')
    expect(c.raw('M')).toBe('  line one $(X)\n  line two')
    expect(c.value('A')).toBe('b d')
    expect(() => read('M @=end\nno end')).toThrow(/no @end/)
  })

  it('takes if/elif/else branches on defined, version, booleans and $(...) conditions', () => {
    const c = read(
      ['if defined NOPE', 'A = 1', 'elif version >= 23.0', 'A = 2', 'else', 'A = 3', 'endif',
        'FLAG = yes', 'if $(FLAG)', 'B = on', 'endif', 'if ! $(UNSET)', 'C = empty is false', 'endif',
        'if version < 9.0', 'D = old', 'else', 'D = new', 'endif'].join('\n'),
      {},
      '23.4.0',
    )
    expect([c.value('A'), c.value('B'), c.value('C'), c.value('D')]).toEqual(['2', 'on', 'empty is false', 'new'])
    expect(() => read('X = maybe\nif $(X)\nendif')).toThrow(/not a simple condition/)
    expect(() => read('if true\nA = 1')).toThrow(/without endif/)
    expect(() => read('else\nendif')).toThrow(/without if/)
  })

  it('looks names up with subsystem and local-name prefixes first', () => {
    const c = read('X = plain\nSCHEDD.X = schedd\nAP.X = local\nY = $(X)')
    expect(c.value('Y')).toBe('plain')
    expect(c.value('Y', {subsystem: 'SCHEDD'})).toBe('schedd')
    expect(c.value('Y', {subsystem: 'COLLECTOR', localName: 'AP'})).toBe('local')
  })

  it('evaluates $INT(NAME) as a ClassAd integer', () => {
    const c = read('H = host:0\nT = ifThenElse(substr("..$(H)", -2) == ":0", 1, 0)\nI = $INT(T)')
    expect(c.value('I')).toBe('1')
    expect(() => read('T = "text"\nI = $INT(T)').value('I')).toThrow(/not an integer/)
  })

  it('records use lines without expanding them', () => {
    const c = read('use feature:HPC_ANNEX\nuse ROLE : Submit, Execute')
    expect(c.uses.map((u) => [u.category, u.names])).toEqual([['FEATURE', ['HPC_ANNEX']], ['ROLE', ['SUBMIT', 'EXECUTE']]])
  })

  it('fails loudly on what it does not understand', () => {
    expect(() => read('this is not config')).toThrow(/test.config:1: cannot parse/)
    expect(() => read('include : /etc/other')).toThrow(/does not handle/)
    expect(() => read('A = $ENV(HOME)').value('A')).toThrow(/does not handle \$ENV/)
    expect(() => read('A = cost $5').value('A')).toThrow(/bare \$/)
    expect(() => read('A = $(B)\nB = $(A)').value('A')).toThrow(/refers to itself/)
    expect(() => read('BAD NAME = 1')).toThrow(/cannot parse|not a configuration name/)
  })

  it('keeps $(DOLLAR) a literal dollar', () => {
    expect(read('A = a$(DOLLAR)(B)').value('A')).toBe('a$(B)')
  })
})

describe('the test ClassAd evaluator', () => {
  it('evaluates the expressions the AP configuration uses', () => {
    expect(evaluate('TargetAnnexName isnt undefined', {TargetAnnexName: 'demo'})).toBe(true)
    expect(evaluate('MY.targetannexname is undefined', {})).toBe(true)
    expect(evaluate('ifThenElse(JobMachineAttrs is undefined, "AnnexName", strcat(JobMachineAttrs, " AnnexName"))', {JobMachineAttrs: 'Site'})).toBe('Site AnnexName')
    expect(evaluate('regexp("^condor(_pool)?@", "condor_pool@x")')).toBe(true)
    expect(() => evaluate('size("x")')).toThrow(/no function size/)
  })
})
