/**
 * What a login may and may not do beyond running commands, against a real
 * OpenSSH sshd (a private one beside the loopback site's, extra-sshd.ts):
 * neither transport forwards the agent, X11 or ports whatever the user's
 * ssh_config asks.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createConnection} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {createTransport} from '../../src/ssh/index.js'
import {OpenSshTransport} from '../../src/ssh/openssh.js'
import {Ssh2Transport} from '../../src/ssh/ssh2.js'
import type {Interaction, LoginTarget, Prompt, Transport} from '../../src/ssh/transport.js'
import {describeOnSite, site, until, type SiteInfo} from '../site/helpers.js'
import {type ExtraSshd, startExtraSshd} from './extra-sshd.js'

/** Answers every prompt with `answer` and records what was asked. */
function recorder(interactive = false, answer = 'yes'): Interaction & {asked: Prompt[]} {
  const asked: Prompt[] = []
  return {
    asked,
    interactive,
    answer: async (prompts) => {
      asked.push(...prompts)
      return prompts.map(() => answer)
    },
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({host: '127.0.0.1', port})
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Requests for forwarding an sshd at LogLevel DEBUG1 logs. */
const FORWARDING = /auth-agent-req|x11-req|tcpip-forward|streamlocal-forward/

describeOnSite('login trust and forwarding', () => {
  let s: SiteInfo
  let tmp: string
  let sshd: ExtraSshd
  let agent: ChildProcess
  const saved = {SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK, DISPLAY: process.env.DISPLAY}

  beforeAll(async () => {
    s = site()
    tmp = mkdtempSync(join(tmpdir(), 'transport-trust-'))
    sshd = await startExtraSshd(s)
  })
  afterAll(async () => {
    await sshd?.stop()
    rmSync(tmp, {recursive: true, force: true})
  })

  /** An ssh_config with one host block `name` for the extra sshd, plus `extra` lines. */
  function config(name: string, knownHosts: string, extra: string[] = []): string {
    const file = join(tmp, `config-${name}-${Math.random().toString(36).slice(2)}`)
    writeFileSync(
      file,
      [
        `Host ${name}`,
        `    HostName ${sshd.host}`,
        `    Port ${sshd.port}`,
        `    User ${s.user}`,
        `    IdentityFile ${s.keyFile}`,
        '    IdentitiesOnly yes',
        `    UserKnownHostsFile ${knownHosts}`,
        '    GlobalKnownHostsFile /dev/null',
        '    StrictHostKeyChecking yes',
        ...extra.map((line) => `    ${line}`),
        '',
      ].join('\n'),
    )
    return file
  }

  function knownHosts(name: string, lines: string[]): string {
    const file = join(tmp, `known_hosts-${name}`)
    writeFileSync(file, lines.map((line) => `${line}\n`).join(''))
    return file
  }

  const kinds = (): {name: 'ssh2' | 'openssh'; make(interactive?: boolean): Transport}[] => [
    {name: 'ssh2', make: (interactive = false) => new Ssh2Transport({interactive})},
    {name: 'openssh', make: (interactive = false) => new OpenSshTransport({controlDir: mkdtempSync(join(tmp, 'ctl-')), interactive, persist: 60})},
  ]

  describe('no forwarding, whatever ~/.ssh/config asks', () => {
    let forwardingConfig: string
    let localPort: number
    let target: LoginTarget

    beforeAll(async () => {
      // An agent with the login key in it, and a display: all ForwardAgent/ForwardX11 need.
      const socket = join(tmp, 'agent.sock')
      agent = spawn('ssh-agent', ['-D', '-a', socket], {stdio: 'ignore'})
      await until('ssh-agent', () => existsSync(socket), 10_000)
      await execa('ssh-add', [s.keyFile], {env: {SSH_AUTH_SOCK: socket}})
      process.env.SSH_AUTH_SOCK = socket
      process.env.DISPLAY = ':42'
      localPort = sshd.port + 1 < 65535 ? sshd.port + 1 : sshd.port - 1
      const known = knownHosts('forwarding', [`${sshd.name} ${sshd.hostKey.type} ${sshd.hostKey.base64}`])
      forwardingConfig = config('fwd', known, [
        'ForwardAgent yes',
        'ForwardX11 yes',
        'ForwardX11Trusted yes',
        `RemoteForward 127.0.0.1:${localPort} 127.0.0.1:${sshd.port}`,
        `LocalForward 127.0.0.1:${localPort} 127.0.0.1:${sshd.port}`,
      ])
      target = {host: 'fwd', configFile: forwardingConfig}
    })
    afterAll(() => {
      agent?.kill()
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key]
        else process.env[key] = value
      }
    })

    /** Runs a command that prints what the login node sees of forwarding. */
    async function seen(t: Transport): Promise<{agent: string; display: string; log: string}> {
      const offset = sshd.logSize()
      const result = await t.exec('echo "agent=${SSH_AUTH_SOCK-}"; echo "display=${DISPLAY-}"')
      expect(result.code).toBe(0)
      const [agentLine, displayLine] = result.stdout.trim().split('\n')
      // sshd writes the session's requests to its log before the command's output reaches us.
      return {agent: agentLine!.replace(/^agent=/, ''), display: displayLine!.replace(/^display=/, ''), log: sshd.logSince(offset)}
    }

    it('the test can see forwarding: plain ssh with this configuration forwards the agent and X11', async () => {
      const offset = sshd.logSize()
      const result = await execa('ssh', ['-F', forwardingConfig, '-o', 'ExitOnForwardFailure=no', 'fwd', 'echo "agent=${SSH_AUTH_SOCK-}"'], {reject: false, stdin: 'ignore'})
      expect(result.stdout).toMatch(/^agent=\/tmp\/ssh-/)
      expect(sshd.logSince(offset)).toMatch(/auth-agent-req@openssh\.com/)
      expect(sshd.logSince(offset)).toMatch(/x11-req/)
      expect(sshd.logSince(offset)).toMatch(/tcpip-forward/)
    })

    for (const kind of kinds()) {
      it(`${kind.name}: no agent, no X11, no port forwarding on the login node`, async () => {
        const t = kind.make()
        const offset = sshd.logSize()
        try {
          await t.connect(target, recorder())
          const what = await seen(t)
          expect(what.agent).toBe('')
          expect(what.display).toBe('')
          // Nothing listens on the LocalForward port while the connection is up.
          expect(await portOpen(localPort)).toBe(false)
        } finally {
          await t.close()
        }
        expect(sshd.logSince(offset)).not.toMatch(FORWARDING)
      })
    }

    it('the automatic choice, over a master that `hpc-annex login` left: no forwarding either', async () => {
      const controlDir = mkdtempSync(join(tmp, 'login-'))
      const offset = sshd.logSize()
      const login = new OpenSshTransport({controlDir, keepMaster: true, persist: 60, interactive: false})
      await login.connect(target, recorder())
      const path = login.controlPath!
      await login.close()
      try {
        const auto = createTransport(undefined, {openssh: {controlDir}, interactive: false}) as Transport & {kind?: string}
        try {
          await auto.connect(target, recorder())
          expect(auto.kind).toBe('openssh')
          const what = await seen(auto)
          expect(what).toMatchObject({agent: '', display: ''})
          expect(await portOpen(localPort)).toBe(false)
        } finally {
          await auto.close()
        }
      } finally {
        await execa('ssh', ['-S', path, '-O', 'exit', 'x'], {reject: false})
      }
      expect(sshd.logSince(offset)).not.toMatch(FORWARDING)
    })

    it('--ssh openssh over a master the user opened with ForwardAgent yes: the commands still forward nothing', async () => {
      const controlDir = mkdtempSync(join(tmp, 'um-'))
      const controlPath = join(controlDir, 'master-%C')
      // The user's own master: ssh as the configuration says, forwarding included.
      const master = await execa('ssh', ['-F', forwardingConfig, '-M', '-N', '-f', '-o', `ControlPath=${controlPath}`, '-o', 'ControlPersist=60', '-o', 'ExitOnForwardFailure=no', 'fwd'], {reject: false, stdin: 'ignore'})
      expect(master.exitCode, master.stderr).toBe(0)
      const offset = sshd.logSize()
      const t = new OpenSshTransport({controlDir, interactive: false})
      try {
        await t.connect(target, recorder())
        expect(t.reusedMaster).toBe(true)
        expect(await seen(t)).toMatchObject({agent: '', display: ''})
      } finally {
        await t.close()
        await execa('ssh', ['-F', forwardingConfig, '-o', `ControlPath=${controlPath}`, '-O', 'exit', 'fwd'], {reject: false})
      }
      expect(sshd.logSince(offset)).not.toMatch(/auth-agent-req|x11-req/)
    })
  })
})
