import {describe, expect, it} from 'vitest'

import {loginTarget} from '../../src/annex/login-target.js'

describe('where every verb logs in', () => {
  it('takes the flags, then what the state job recorded, then the admin overrides, then the machine file', () => {
    const overrides = {host: 'admin.example', user: 'adminuser'}
    expect(loginTarget('login.example', {})).toEqual({host: 'login.example'})
    expect(loginTarget('login.example', {overrides})).toEqual({host: 'admin.example', user: 'adminuser'})
    expect(loginTarget('login.example', {recorded: {host: 'was.example'}, overrides})).toEqual({host: 'was.example', user: 'adminuser'})
    expect(loginTarget('login.example', {flags: {user: 'me'}, recorded: {host: 'was.example', user: 'them'}, overrides})).toEqual({host: 'was.example', user: 'me'})
    expect(loginTarget('login.example', {flags: {host: 'flag.example'}, overrides}, '/cfg')).toEqual({host: 'flag.example', user: 'adminuser', configFile: '/cfg'})
  })

  it("puts the SSH control socket where --tmp_dir says, else ANNEX_TMP_DIR, else the transport's default", () => {
    expect(loginTarget('login.example', {overrides: {controlDir: '/knob'}})).toEqual({host: 'login.example', controlDir: {path: '/knob', from: 'ANNEX_TMP_DIR'}})
    expect(loginTarget('login.example', {flags: {controlDir: '/flag'}, overrides: {controlDir: '/knob'}}).controlDir).toEqual({path: '/flag', from: '--tmp_dir'})
    expect(loginTarget('login.example', {recorded: {host: 'was.example'}}).controlDir).toBeUndefined()
  })
})
