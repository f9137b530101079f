/**
 * What a login may and may not do beyond running commands, against a real
 * OpenSSH sshd (a private one beside the loopback site's, extra-sshd.ts):
 * neither transport forwards the agent, X11 or ports whatever the user's
 * ssh_config asks; both accept a host known only through an
 * `@cert-authority` line of known_hosts, honour `@revoked`, and reach a host
 * through a ProxyCommand.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createConnection} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AnnexError} from '../../src/errors.js'
import {fetchHostCertificate, NoCertificateError} from '../../src/ssh/cert-probe.js'
import {checkHostCertificate} from '../../src/ssh/host-cert.js'
import {createTransport} from '../../src/ssh/index.js'
import {OpenSshTransport} from '../../src/ssh/openssh.js'
import {Ssh2Transport} from '../../src/ssh/ssh2.js'
import type {Interaction, LoginTarget, Prompt, Transport} from '../../src/ssh/transport.js'
import {describeOnSite, site, until, type SiteInfo} from '../site/helpers.js'
import {type ExtraSshd, type ExtraSshdOptions, startExtraSshd} from './extra-sshd.js'

const ROOT = join(import.meta.dirname, '..', '..')

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

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(AnnexError)
  expect((error as Error).message).not.toContain('\n')
  return error as Error
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
    // Short: the OpenSSH masters' sockets are made below it, and a socket path has at most 107 bytes.
    tmp = mkdtempSync(join(tmpdir(), 'tt-'))
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

  describe('a host known through @cert-authority', () => {
    for (const kind of kinds()) {
      describe(kind.name, () => {
        it('connects without asking, with only the CA in known_hosts', async () => {
          const known = knownHosts(`${kind.name}-ca`, [`@cert-authority ${sshd.name} ${sshd.ca}`])
          const before = readFileSync(known, 'utf8')
          for (const interactive of [false, true]) {
            const person = recorder(interactive)
            const t = kind.make(interactive)
            try {
              await t.connect({host: 'certhost', configFile: config('certhost', known)}, person)
              expect((await t.exec('whoami')).stdout.trim()).toBe(s.user)
            } finally {
              await t.close()
            }
            expect(person.asked).toEqual([])
          }
          // Nothing was added: the CA vouches for the host.
          expect(readFileSync(known, 'utf8')).toBe(before)
        })

        it('through a ProxyJump host (the certificate is read through it too)', async () => {
          const known = knownHosts(`${kind.name}-ca-jump`, [`@cert-authority ${sshd.name} ${sshd.ca}`])
          const file = join(tmp, `config-${kind.name}-jump`)
          writeFileSync(file, `${readFileSync(s.sshConfig, 'utf8')}\n${readFileSync(config('jumped', known, ['ProxyJump hpc']), 'utf8')}`)
          const t = kind.make()
          try {
            await t.connect({host: 'jumped', configFile: file}, recorder())
            // The connection came through the site's login node.
            expect((await t.exec('set -- $SSH_CONNECTION; echo "$1 $4"')).stdout.trim()).toBe(`${s.host} ${sshd.port}`)
          } finally {
            await t.close()
          }
        })

        it('matches the CA line by host pattern', async () => {
          const known = knownHosts(`${kind.name}-ca-wild`, [`@cert-authority other.example ${sshd.ca}`, `@cert-authority [${sshd.host.replace(/\d+$/, '*')}]:* ${sshd.ca}`])
          const t = kind.make()
          try {
            await t.connect({host: 'certhost', configFile: config('certhost', known)}, recorder())
          } finally {
            await t.close()
          }
        })

        it('refuses when the CA line names other hosts', async () => {
          const known = knownHosts(`${kind.name}-ca-other`, [`@cert-authority *.example.org ${sshd.ca}`])
          const t = kind.make()
          try {
            const error = await refusal(t.connect({host: 'certhost', configFile: config('certhost', known)}, recorder()))
            expect(error.message).toMatch(/not in|not known|refusing/)
          } finally {
            await t.close()
          }
        })

        it('refuses a host whose key is @revoked, though its certificate is good', async () => {
          const known = knownHosts(`${kind.name}-revoked-key`, [`@cert-authority ${sshd.name} ${sshd.ca}`, `@revoked * ${sshd.hostKey.type} ${sshd.hostKey.base64}`])
          const t = kind.make()
          try {
            const error = await refusal(t.connect({host: 'certhost', configFile: config('certhost', known)}, recorder()))
            expect(error.message).toMatch(/revoked/i)
          } finally {
            await t.close()
          }
        })

        it('refuses a certificate whose CA is @revoked', async () => {
          const known = knownHosts(`${kind.name}-revoked-ca`, [`@cert-authority ${sshd.name} ${sshd.ca}`, `@revoked * ${sshd.ca}`])
          const t = kind.make()
          try {
            await refusal(t.connect({host: 'certhost', configFile: config('certhost', known)}, recorder()))
          } finally {
            await t.close()
          }
        })

        it('refuses a certificate that does not name the host (HostKeyAlias), without a terminal', async () => {
          const known = knownHosts(`${kind.name}-alias`, [`@cert-authority * ${sshd.ca}`])
          const t = kind.make()
          try {
            const error = await refusal(t.connect({host: 'certhost', configFile: config('certhost', known, ['HostKeyAlias other.example'])}, recorder()))
            if (kind.name === 'ssh2') expect(error.message).toMatch(/certificate.*principal/i)
          } finally {
            await t.close()
          }
        })
      })
    }
  })

  describe('host certificates of every key type, signed by RSA and ECDSA CAs, over ECDH key exchanges', () => {
    const setups: {name: string; options: ExtraSshdOptions; algorithms: string[]}[] = [
      {
        name: 'ECDSA and RSA host keys, an RSA CA, NIST ECDH',
        options: {hostKeys: ['ecdsa384', 'rsa', 'ecdsa256', 'ecdsa521'], ca: 'rsa', kex: 'ecdh-sha2-nistp521,ecdh-sha2-nistp256'},
        algorithms: ['ecdsa-sha2-nistp384-cert-v01@openssh.com', 'rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com', 'ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ecdsa-sha2-nistp521-cert-v01@openssh.com'],
      },
      {
        name: 'an Ed25519 host key, an ECDSA CA, ECDH P-384',
        options: {hostKeys: ['ed25519'], ca: 'ecdsa256', kex: 'ecdh-sha2-nistp384'},
        algorithms: ['ssh-ed25519-cert-v01@openssh.com'],
      },
    ]
    for (const setup of setups) {
      describe(setup.name, () => {
        let other: ExtraSshd
        beforeAll(async () => {
          other = await startExtraSshd(s, setup.options)
        })
        afterAll(async () => {
          await other?.stop()
        })

        it('the certificate check reads and verifies each', async () => {
          const known = knownHosts(`types-${setup.options.ca}`, [`@cert-authority ${other.name} ${other.ca}`])
          for (const algorithm of setup.algorithms) {
            const socket = createConnection({host: other.host, port: other.port})
            const {certificate, algorithm: used} = await fetchHostCertificate(socket, {algorithms: [algorithm]})
            expect(used).toBe(algorithm)
            const check = checkHostCertificate(certificate, {files: [known], host: other.host, port: other.port})
            expect(check.status, check.status === 'invalid' ? check.reason : '').toBe('valid')
          }
          // A server without the certificate type asked for says so.
          const socket = createConnection({host: other.host, port: other.port})
          const missing = setup.algorithms.includes('ssh-ed25519-cert-v01@openssh.com') ? 'rsa-sha2-512-cert-v01@openssh.com' : 'ssh-ed25519-cert-v01@openssh.com'
          await expect(fetchHostCertificate(socket, {algorithms: [missing]})).rejects.toThrow(NoCertificateError)
        })

        for (const kind of kinds()) {
          it(`${kind.name} logs in through the CA`, async () => {
            const known = knownHosts(`types-${kind.name}-${setup.options.ca}`, [`@cert-authority ${other.name} ${other.ca}`])
            const file = join(tmp, `config-types-${kind.name}-${setup.options.ca}`)
            writeFileSync(file, readFileSync(config('typed', known), 'utf8').replace(`Port ${sshd.port}`, `Port ${other.port}`))
            const t = kind.make()
            try {
              await t.connect({host: 'typed', configFile: file}, recorder())
              expect((await t.exec('whoami')).stdout.trim()).toBe(s.user)
            } finally {
              await t.close()
            }
          })
        }
      })
    }
  })

  describe('a server that shows only host certificates', () => {
    let only: ExtraSshd
    beforeAll(async () => {
      only = await startExtraSshd(s, {hostKeyAlgorithms: 'ssh-ed25519-cert-v01@openssh.com'})
    })
    afterAll(async () => {
      await only?.stop()
    })

    for (const kind of kinds()) {
      it(`${kind.name}: ${kind.name === 'ssh2' ? 'says it cannot log in there and names --ssh openssh' : 'logs in'}`, async () => {
        const known = knownHosts(`only-${kind.name}`, [`@cert-authority ${only.name} ${only.ca}`])
        const file = join(tmp, `config-only-${kind.name}`)
        writeFileSync(file, readFileSync(config('only', known), 'utf8').replace(`Port ${sshd.port}`, `Port ${only.port}`))
        const t = kind.make()
        try {
          if (kind.name === 'ssh2') {
            const error = await refusal(t.connect({host: 'only', configFile: file}, recorder()))
            expect(error.message).toMatch(/offers only host certificates, .* use the system's OpenSSH: --ssh openssh/)
          } else {
            await t.connect({host: 'only', configFile: file}, recorder())
            expect((await t.exec('whoami')).stdout.trim()).toBe(s.user)
          }
        } finally {
          await t.close()
        }
      })
    }
  })

  describe('ProxyCommand', () => {
    for (const kind of kinds()) {
      it(`${kind.name}: reaches the host through it, with %h %p %r %n %% expanded`, async () => {
        const record = join(tmp, `${kind.name}-proxy.log`)
        const known = knownHosts(`${kind.name}-proxy`, [`@cert-authority ${sshd.name} ${sshd.ca}`])
        // Through the site's own sshd (`ssh -W`), writing down what it was given.
        const proxy = `sh -c 'echo "$*" >> ${record}; exec ssh -F ${s.sshConfig} -W "$1:$2" hpc' proxy %h %p %r %n %%`
        const t = kind.make()
        try {
          await t.connect({host: 'proxied', configFile: config('proxied', known, [`ProxyCommand ${proxy}`])}, recorder())
          const result = await t.exec('set -- $SSH_CONNECTION; echo "$1 $4"; whoami')
          expect(result.code).toBe(0)
          const [connection, user] = result.stdout.trim().split('\n')
          // The connection came from the site's login node, forwarding to this sshd's port.
          expect(connection).toBe(`${s.host} ${sshd.port}`)
          expect(user).toBe(s.user)
        } finally {
          await t.close()
        }
        const lines = readFileSync(record, 'utf8').trim().split('\n')
        expect(lines.length).toBeGreaterThanOrEqual(1)
        for (const line of lines) expect(line).toBe(`${sshd.host} ${sshd.port} ${s.user} proxied %`)
      })

      it(`${kind.name}: after close(), the process exits: no ProxyCommand left running`, async () => {
        const known = knownHosts(`${kind.name}-proxy-exit`, [`@cert-authority ${sshd.name} ${sshd.ca}`])
        const marker = `hpc-annex-proxy-${kind.name}-${process.pid}`
        const configFile = config('proxied', known, [`ProxyCommand sh -c 'exec ssh -F ${s.sshConfig} -o SetEnv=MARK=${marker} -W "$1:$2" hpc' proxy %h %p`])
        const script = `
          import {${kind.name === 'ssh2' ? 'Ssh2Transport as T' : 'OpenSshTransport as T'}} from ${JSON.stringify(join(ROOT, 'src', 'ssh', `${kind.name}.ts`))}
          const t = new T({controlDir: ${JSON.stringify(mkdtempSync(join(tmp, 'x-')))}, interactive: false})
          await t.connect({host: 'proxied', configFile: ${JSON.stringify(configFile)}}, {answer: async () => []})
          const r = await t.exec('echo ok')
          await t.close()
          console.log(r.stdout.trim())`
        const result = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {cwd: ROOT, reject: false, timeout: 20_000})
        expect(result.stdout).toBe('ok')
        expect(result.exitCode).toBe(0)
        expect(result.timedOut).toBe(false)
        // The ProxyCommand's ssh is gone (OpenSSH's master ends it when it exits).
        await until('the ProxyCommand to end', async () => (await execa('pgrep', ['-f', marker], {reject: false})).stdout === '', 10_000)
      })

      it(`${kind.name}: a ProxyCommand that fails is reported with what it printed`, async () => {
        const known = knownHosts(`${kind.name}-proxy-fail`, [`${sshd.name} ${sshd.hostKey.type} ${sshd.hostKey.base64}`])
        const t = kind.make()
        try {
          const error = await refusal(t.connect({host: 'proxied', configFile: config('proxied', known, [`ProxyCommand sh -c 'echo no route to %h >&2; exit 3'`])}, recorder()))
          // A ControlPersist master of OpenSSH sends its ProxyCommand's stderr to /dev/null: it can only name the command.
          if (kind.name === 'ssh2') expect(error.message).toContain(`the ProxyCommand exited with status 3: no route to ${sshd.host}`)
          else expect(error.message).toMatch(/ProxyCommand \(sh -c 'echo no route to %h >&2; exit 3'\) ended/)
        } finally {
          await t.close()
        }
      })
    }
  })
})
