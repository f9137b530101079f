/**
 * One contract, both transports (ssh2 and the OpenSSH ControlMaster), against
 * the loopback site's real sshd: exit codes, streaming, a 256 MiB stdin,
 * 2FA answered once, the MaxSessions limit, host keys, a lost connection.
 */
import {createHash, randomBytes} from 'node:crypto'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {AnnexError} from '../../src/errors.js'
import {OpenSshTransport} from '../../src/ssh/openssh.js'
import {Ssh2Transport} from '../../src/ssh/ssh2.js'
import type {Interaction, LoginTarget, Prompt, Transport} from '../../src/ssh/transport.js'
import {describeOnSite, freshOtpCode, logOffsets, site, type SiteInfo} from '../site/helpers.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Kind {
  name: 'ssh2' | 'openssh'
  make(dir: string): Transport & {sessionCap: number}
}

const KINDS: Kind[] = [
  {name: 'ssh2', make: () => new Ssh2Transport({interactive: false})},
  // Each transport gets its own control directory: a master is never shared between tests.
  {name: 'openssh', make: (dir) => new OpenSshTransport({controlDir: mkdtempSync(join(dir, 'ctl-')), interactive: false, persist: 60})},
]

/** Answers every prompt with `answer()` and records what was asked. */
function recorder(answer: (prompt: Prompt) => string = () => ''): Interaction & {asked: Prompt[]} {
  const asked: Prompt[] = []
  return {
    asked,
    interactive: false,
    answer: async (prompts) => {
      asked.push(...prompts)
      return prompts.map(answer)
    },
  }
}

/** `size` bytes of varied data, produced only as fast as it is read; its sha256 when done. */
function bigStream(size: number): {stream: Readable; digest: Promise<string>} {
  const block = randomBytes(1 << 20)
  const hash = createHash('sha256')
  let sent = 0
  let resolveDigest: (digest: string) => void = () => undefined
  const digest = new Promise<string>((resolve) => (resolveDigest = resolve))
  const stream = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (sent >= size) {
        resolveDigest(hash.digest('hex'))
        this.push(null)
        return
      }
      const chunk = Buffer.from(block.subarray(0, Math.min(block.length, size - sent)))
      chunk.writeUInt32BE(sent >>> 20, 0)
      hash.update(chunk)
      sent += chunk.length
      this.push(chunk)
    },
  })
  return {stream, digest}
}

/** Prints the client port of the connection a command runs on (from $SSH_CONNECTION). */
const CLIENT_PORT = 'set -- $SSH_CONNECTION; echo "$2"'

/**
 * What an sshd log says about the connection from client `port` since
 * `offsets` were taken. Other test runs may use the same site at the same
 * time, so only this connection's lines are counted; that every command ran
 * on this one connection is shown by their $SSH_CONNECTION.
 */
function forConnection(log: string, offsets: Record<string, number>, port: number): {connections: number; logins: number; sessions: number; failures: number} {
  const text = readFileSync(log).subarray(offsets[log] ?? 0).toString('utf8')
  const mine = new RegExp(` port ${port}( |$)`)
  const counts = {connections: 0, logins: 0, sessions: 0, failures: 0}
  for (const line of text.split('\n')) {
    if (!mine.test(line)) continue
    if (/^Connection from /.test(line)) counts.connections++
    else if (/^Accepted (publickey|keyboard-interactive\/pam|password) for /.test(line)) counts.logins++
    else if (/^Starting session: /.test(line)) counts.sessions++
    else if (/^Failed \S+ for /.test(line)) counts.failures++
  }
  return counts
}

/** Runs `count` numbered commands at once; returns the one client port they all ran on. */
async function concurrently(t: Transport, count: number, pause: string): Promise<number> {
  const results = await Promise.all(Array.from({length: count}, (_, i) => t.exec(`${pause}echo ${i}; ${CLIENT_PORT}`)))
  expect(results.every((r) => r.code === 0)).toBe(true)
  // Refused sessions leave nothing of ssh's own in the output.
  expect(results.map((r) => r.stderr).join('')).toBe('')
  expect(results.map((r) => r.stdout.split('\n')[0])).toEqual(Array.from({length: count}, (_, i) => String(i)))
  const ports = new Set(results.map((r) => Number(r.stdout.split('\n')[1])))
  expect(ports.size).toBe(1)
  return [...ports][0]!
}

describeOnSite('the transport contract', () => {
  let s: SiteInfo
  let tmp: string

  beforeAll(() => {
    s = site()
    // Short: the OpenSSH masters' sockets are made below it, and a socket path has at most 107 bytes.
    tmp = mkdtempSync(join(tmpdir(), 'tc-'))
  })
  afterAll(() => {
    rmSync(tmp, {recursive: true, force: true})
  })

  const target = (host: string, extra: Partial<LoginTarget> = {}): LoginTarget => ({host, configFile: s.sshConfig, ...extra})

  describe.each(KINDS)('$name', (kind) => {
    let t: Transport & {sessionCap: number}

    beforeAll(async () => {
      t = kind.make(tmp)
      await t.connect(target('hpc'), recorder())
    })
    afterAll(async () => {
      await t?.close()
    })

    it('returns exit codes and output', async () => {
      expect(await t.exec('echo out; echo err >&2')).toEqual({code: 0, stdout: 'out\n', stderr: 'err\n'})
      expect((await t.exec('exit 7')).code).toBe(7)
      expect((await t.exec('exit 255')).code).toBe(255)
      expect((await t.exec('hostname')).stdout.trim()).toBe(s.loginHostname)
      expect((await t.exec('cat', {stdin: Readable.from([Buffer.from('a\nb\n')])})).stdout).toBe('a\nb\n')
    })

    it('streams stdout in order, as it is produced', async () => {
      const chunks: {at: number; text: string}[] = []
      const start = Date.now()
      const result = await t.exec('for i in 1 2 3 4 5; do echo line$i; sleep 0.15; done; echo done >&2', {
        onStdout: (chunk) => chunks.push({at: Date.now() - start, text: chunk.toString()}),
        collect: false,
      })
      expect(result.code).toBe(0)
      expect(result.stdout).toBe('')
      expect(chunks.map((c) => c.text).join('')).toBe('line1\nline2\nline3\nline4\nline5\n')
      // The first line came long before the command ended.
      const end = Date.now() - start
      expect(chunks[0]!.at).toBeLessThan(end - 400)
    })

    it('streams 256 MiB of stdin intact, without holding it in memory', async () => {
      const size = 256 << 20
      const {stream, digest} = bigStream(size)
      const rssBefore = process.memoryUsage().rss
      let rssPeak = rssBefore
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50)
      const started = Date.now()
      try {
        const result = await t.exec('sha256sum | cut -c1-64', {stdin: stream})
        expect(result.code).toBe(0)
        expect(result.stdout.split('\n')[0]).toBe(await digest)
      } finally {
        clearInterval(sampler)
      }
      console.log(`[${kind.name}] 256 MiB stdin in ${Date.now() - started} ms, RSS +${Math.round((rssPeak - rssBefore) / 2 ** 20)} MiB`)
      expect(rssPeak - rssBefore).toBeLessThan(160 * 2 ** 20)
    })

    it('an abort closes the command and rejects with the reason', async () => {
      const controller = new AbortController()
      const started = Date.now()
      const run = t.exec('sleep 30', {signal: controller.signal})
      setTimeout(() => controller.abort(new Error('stopped by the test')), 300)
      await expect(run).rejects.toThrow('stopped by the test')
      expect(Date.now() - started).toBeLessThan(5000)
      // The connection is still good.
      expect((await t.exec('echo still')).stdout).toBe('still\n')
    })

    it('runs 25 concurrent commands on one login with MaxSessions 10', async () => {
      const before = logOffsets([s.sshdLog.key])
      const mine = kind.make(tmp)
      let port: number
      try {
        await mine.connect(target('hpc'), recorder())
        port = await concurrently(mine, 25, 'sleep 0.1; ')
      } finally {
        await mine.close()
      }
      const counts = forConnection(s.sshdLog.key, before, port)
      expect(counts).toMatchObject({connections: 1, logins: 1, failures: 0})
      expect(counts.sessions).toBe(25)
    })

    it('runs 25 concurrent commands on one login with MaxSessions 1', async () => {
      const before = logOffsets([s.sshdLog.one])
      const mine = kind.make(tmp)
      let port: number
      try {
        await mine.connect(target('hpc-one'), recorder())
        port = await concurrently(mine, 25, '')
        // ssh2 sees its channels open and learns the limit exactly. ssh's mux clients learn it only from
        // refusals, which a loaded machine, starting them one by one, may never cause: that case is
        // checked in the unit tests of the session pool.
        if (kind.name === 'ssh2') expect(mine.sessionCap).toBe(1)
      } finally {
        await mine.close()
      }
      expect(forConnection(s.sshdLog.one, before, port)).toMatchObject({connections: 1, logins: 1, sessions: 25, failures: 0})
    })

    it('asks the 2FA question once: one login for 20 sequential and 20 concurrent commands', async () => {
      const before = logOffsets([s.sshdLog.otp])
      const code = freshOtpCode(s)
      const interaction = recorder(() => code)
      const mine = kind.make(tmp)
      const ports = new Set<number>()
      try {
        await mine.connect(target('hpc-2fa'), interaction)
        for (let i = 0; i < 20; i++) {
          const result = await mine.exec(`echo ${i}; ${CLIENT_PORT}`)
          expect(result.stdout.split('\n')[0]).toBe(String(i))
          ports.add(Number(result.stdout.split('\n')[1]))
        }
        ports.add(await concurrently(mine, 20, 'sleep 0.05; '))
      } finally {
        await mine.close()
      }
      expect(interaction.asked).toHaveLength(1)
      expect(interaction.asked[0]!.prompt).toMatch(/Verification code/)
      expect(interaction.asked[0]!.echo).toBe(false)
      expect(ports.size).toBe(1)
      expect(forConnection(s.sshdLog.otp, before, [...ports][0]!)).toEqual({connections: 1, logins: 1, sessions: 40, failures: 0})
    })

    it('answers keyboard-interactive questions over several rounds (password, then a code)', async () => {
      const before = logOffsets([s.sshdLog.password])
      const code = freshOtpCode(s)
      const interaction = recorder((p) => (/password/i.test(p.prompt) ? s.password : code))
      const mine = kind.make(tmp)
      let port: number
      try {
        await mine.connect(target('hpc-pw'), interaction)
        const result = await mine.exec(`whoami; ${CLIENT_PORT}`)
        expect(result.stdout.split('\n')[0]).toBe(s.user)
        port = Number(result.stdout.split('\n')[1])
      } finally {
        await mine.close()
      }
      expect(interaction.asked.map((p) => p.prompt)).toEqual([expect.stringMatching(/Password/), expect.stringMatching(/Verification code/)])
      expect(interaction.asked.every((p) => !p.echo)).toBe(true)
      expect(forConnection(s.sshdLog.password, before, port)).toMatchObject({connections: 1, logins: 1})
    })

    it('asks for the passphrase of an encrypted key', async () => {
      const key = join(tmp, `${kind.name}-encrypted-key`)
      writeFileSync(key, readFileSync(s.keyFile), {mode: 0o600})
      await execa('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'open sesame', '-f', key])
      const interaction = recorder(() => 'open sesame')
      const mine = kind.make(tmp)
      try {
        await mine.connect(target('hpc', {identityFile: key}), interaction)
        expect((await mine.exec('echo in')).stdout).toBe('in\n')
      } finally {
        await mine.close()
      }
      expect(interaction.asked).toHaveLength(1)
      expect(interaction.asked[0]).toMatchObject({prompt: expect.stringContaining(key), echo: false})
    })

    it('on a terminal, shows an unknown host key, asks, and remembers a yes', async () => {
      const knownHosts = join(tmp, `${kind.name}-asked-known-hosts`)
      writeFileSync(knownHosts, '')
      const instructions: string[] = []
      const asked: Prompt[] = []
      const person: Interaction = {
        interactive: true,
        answer: async (prompts, text) => {
          instructions.push(text)
          asked.push(...prompts)
          return prompts.map(() => 'yes')
        },
      }
      const first = kind.name === 'ssh2' ? new Ssh2Transport({interactive: true}) : new OpenSshTransport({controlDir: mkdtempSync(join(tmp, 'ctl-')), interactive: true})
      try {
        await first.connect(target('hpc', {knownHostsFile: knownHosts}), person)
        expect((await first.exec('true')).code).toBe(0)
      } finally {
        await first.close()
      }
      expect(asked).toHaveLength(1)
      expect(asked[0]!.prompt).toMatch(/continue connecting \(yes\/no/)
      expect(instructions.join('\n')).toMatch(/SHA256:[A-Za-z0-9+/]{43}/)
      expect(readFileSync(knownHosts, 'utf8')).toMatch(/ssh-ed25519 /)
      // Remembered: the next login asks nothing, even without a terminal.
      const again = kind.make(tmp)
      try {
        await again.connect(target('hpc', {knownHostsFile: knownHosts}), recorder())
      } finally {
        await again.close()
      }
    })

    it('refuses an unknown host key without a terminal, naming the host and the file', async () => {
      const knownHosts = join(tmp, `${kind.name}-empty-known-hosts`)
      writeFileSync(knownHosts, '')
      const interaction = recorder(() => 'yes')
      const mine = kind.make(tmp)
      try {
        const error = await mine.connect(target('hpc', {knownHostsFile: knownHosts}), interaction).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(AnnexError)
        const message = (error as Error).message
        expect(message).toContain(`[127.0.0.1]:${s.ports.key}`)
        expect(message).toContain(knownHosts)
        expect(message).not.toContain('\n')
      } finally {
        await mine.close()
      }
      expect(interaction.asked).toHaveLength(0)
      expect(readFileSync(knownHosts, 'utf8')).toBe('')
    })

    it('refuses a changed host key', async () => {
      const knownHosts = join(tmp, `${kind.name}-changed-known-hosts`)
      const other = 'AAAAC3NzaC1lZDI1NTE5AAAAIKedliaL08Ngx1w4ZiSz796Zx1hg76TwtwUtEOrv5lhg'
      writeFileSync(knownHosts, `[127.0.0.1]:${s.ports.key} ssh-ed25519 ${other}\n`)
      const mine = kind.make(tmp)
      try {
        await expect(mine.connect(target('hpc', {knownHostsFile: knownHosts}), recorder(() => 'yes'))).rejects.toThrow(/CHANGED/)
      } finally {
        await mine.close()
      }
    })

    it('reaches the login node through a ProxyJump host, checking both host keys', async () => {
      const config = join(tmp, `${kind.name}-jump-config`)
      writeFileSync(
        config,
        `${readFileSync(s.sshConfig, 'utf8')}\nHost jumped\n    HostName 127.0.0.1\n    Port ${s.ports.one}\n    User ${s.user}\n` +
          `    IdentityFile ${s.keyFile}\n    IdentitiesOnly yes\n    UserKnownHostsFile ${s.knownHosts}\n    ProxyJump hpc\n`,
      )
      const before = logOffsets([s.sshdLog.one])
      const mine = kind.make(tmp)
      let port: number
      try {
        await mine.connect({host: 'jumped', configFile: config}, recorder())
        const result = await mine.exec(`echo through; ${CLIENT_PORT}`)
        expect(result.stdout.split('\n')[0]).toBe('through')
        port = Number(result.stdout.split('\n')[1])
      } finally {
        await mine.close()
      }
      // The login node saw one login, on a connection forwarded by the jump host.
      expect(forConnection(s.sshdLog.one, before, port)).toMatchObject({connections: 1, logins: 1})
    })

    it('close() is idempotent; later commands fail at once', async () => {
      const mine = kind.make(tmp)
      await mine.connect(target('hpc'), recorder())
      const running = mine.exec('sleep 30').then(
        () => undefined,
        (e: unknown) => e,
      )
      await new Promise((resolve) => setTimeout(resolve, 200))
      const started = Date.now()
      await mine.close()
      await mine.close()
      const error = await running
      expect(error).toBeInstanceOf(AnnexError)
      expect((error as Error).message).toMatch(/closed by hpc-annex/)
      await expect(mine.exec('true')).rejects.toThrow(/closed/)
      expect(Date.now() - started).toBeLessThan(5000)
    })

    it('lets the process exit after close(): nothing left running', async () => {
      const script = `
        import {${kind.name === 'ssh2' ? 'Ssh2Transport as T' : 'OpenSshTransport as T'}} from ${JSON.stringify(join(ROOT, 'src', 'ssh', `${kind.name}.ts`))}
        const t = new T({controlDir: ${JSON.stringify(mkdtempSync(join(tmp, 'exit-')))}, interactive: false})
        await t.connect({host: 'hpc', configFile: ${JSON.stringify(s.sshConfig)}}, {answer: async () => []})
        const r = await t.exec('echo ok')
        await t.close()
        await t.close()
        console.log(r.stdout.trim())`
      const started = Date.now()
      const result = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {cwd: ROOT, reject: false, timeout: 20_000})
      expect(result.stdout).toBe('ok')
      expect(result.exitCode).toBe(0)
      expect(result.timedOut).toBe(false)
      expect(Date.now() - started).toBeLessThan(15_000)
    })

    it('close() during the login, while a 2FA question waits, ends the login: nothing left running', async () => {
      const controlDir = mkdtempSync(join(tmp, 'held-'))
      const script = `
        import {${kind.name === 'ssh2' ? 'Ssh2Transport as T' : 'OpenSshTransport as T'}} from ${JSON.stringify(join(ROOT, 'src', 'ssh', `${kind.name}.ts`))}
        const t = new T({controlDir: ${JSON.stringify(controlDir)}, interactive: false})
        let asked
        const question = new Promise((resolve) => (asked = resolve))
        const login = t.connect({host: 'hpc-2fa', configFile: ${JSON.stringify(s.sshConfig)}}, {answer: () => { asked(); return new Promise(() => {}) }})
        const outcome = login.then(() => 'connected', (e) => 'refused: ' + e.message)
        await question
        await t.close()
        console.log(await outcome)`
      const result = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {cwd: ROOT, reject: false, timeout: 20_000})
      expect(result.timedOut).toBe(false)
      expect(result.exitCode).toBe(0)
      expect(result.stdout).toMatch(/^refused: /)
      // No master (or any ssh) was left behind for that control directory.
      const left = await execa('pgrep', ['-f', controlDir], {reject: false})
      expect(left.stdout).toBe('')
    })

    it('reports a dropped connection: in-flight and later commands fail naming the host', async () => {
      const mine = kind.make(tmp)
      try {
        await mine.connect(target('hpc'), recorder())
        // The parent of the remote shell is this connection's sshd process.
        const sshdPid = Number((await mine.exec('echo $PPID')).stdout.trim())
        expect(sshdPid).toBeGreaterThan(1)
        expect(readFileSync(`/proc/${sshdPid}/cmdline`, 'utf8')).toMatch(/hpcuser/)
        const running = mine.exec('sleep 30')
        await new Promise((resolve) => setTimeout(resolve, 300))
        process.kill(sshdPid, 'SIGKILL')
        const started = Date.now()
        const error = await running.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(AnnexError)
        expect((error as Error).message).toMatch(/connection to 127\.0\.0\.1 was lost/)
        expect(Date.now() - started).toBeLessThan(10_000)
        await expect(mine.exec('true')).rejects.toThrow(/connection to 127\.0\.0\.1 was lost/)
      } finally {
        await mine.close()
      }
    })
  })
})
