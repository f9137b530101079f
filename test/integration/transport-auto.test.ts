/**
 * createTransport without a choice: a running OpenSSH master for the host
 * (what `hpc-annex login` leaves) is used, so no second login happens;
 * otherwise ssh2 logs in.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, expect, it} from 'vitest'

import {createTransport} from '../../src/ssh/index.js'
import {OpenSshTransport} from '../../src/ssh/openssh.js'
import type {Interaction} from '../../src/ssh/transport.js'
import {describeOnSite, freshOtpCode, site, type SiteInfo} from '../site/helpers.js'

describeOnSite('createTransport', () => {
  let s: SiteInfo
  let dir: string

  beforeAll(() => {
    s = site()
    dir = mkdtempSync(join(tmpdir(), 'transport-auto-'))
  })
  afterAll(() => rmSync(dir, {recursive: true, force: true}))

  it('uses a live master left by a login, asking nothing, and ssh2 when there is none', async () => {
    const target = {host: 'hpc-2fa', configFile: s.sshConfig}
    const code = freshOtpCode(s)
    let asked = 0
    const once: Interaction = {
      answer: async (prompts) => {
        asked++
        return prompts.map(() => code)
      },
    }

    // What `hpc-annex login` does: a master that outlives its transport.
    const login = new OpenSshTransport({controlDir: dir, keepMaster: true, persist: 60, interactive: false})
    await login.connect(target, once)
    const loginConnection = (await login.exec('echo $SSH_CONNECTION')).stdout
    await login.close()
    expect(asked).toBe(1)

    const auto = createTransport(undefined, {openssh: {controlDir: dir}, interactive: false}) as ReturnType<typeof createTransport> & {kind?: string}
    try {
      await auto.connect(target, {answer: async () => Promise.reject(new Error('must not ask'))})
      expect(auto.kind).toBe('openssh')
      // The same connection: nothing new was opened and nobody was asked.
      expect((await auto.exec('echo $SSH_CONNECTION')).stdout).toBe(loginConnection)
    } finally {
      await auto.close()
    }

    // The login's master is still there after the command; end it.
    const path = login.controlPath!
    expect((await execa('ssh', ['-S', path, '-O', 'check', 'x'], {reject: false})).exitCode).toBe(0)
    await execa('ssh', ['-S', path, '-O', 'exit', 'x'], {reject: false})

    // No master now: ssh2 logs in.
    const fresh = createTransport(undefined, {openssh: {controlDir: dir}, interactive: false}) as ReturnType<typeof createTransport> & {kind?: string}
    try {
      await fresh.connect({host: 'hpc', configFile: s.sshConfig}, {answer: async () => []})
      expect(fresh.kind).toBe('ssh2')
    } finally {
      await fresh.close()
    }
  })
})
