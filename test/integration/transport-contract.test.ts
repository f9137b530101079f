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
import {describeOnSite, freshOtpCode, logOffsets, site, sshdCounts, type SiteInfo} from '../site/helpers.js'

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

describeOnSite('the transport contract', () => {
  let s: SiteInfo
  let tmp: string

  beforeAll(() => {
    s = site()
    tmp = mkdtempSync(join(tmpdir(), 'transport-contract-'))
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

    it('returns exit codes and output, and rejects at once after close()', async () => {
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
      try {
        await mine.connect(target('hpc'), recorder())
        const results = await Promise.all(Array.from({length: 25}, (_, i) => mine.exec(`sleep 0.1; echo ${i}`)))
        expect(results.map((r) => r.stdout)).toEqual(Array.from({length: 25}, (_, i) => `${i}\n`))
        expect(results.every((r) => r.code === 0)).toBe(true)
      } finally {
        await mine.close()
      }
      const counts = sshdCounts(before)
      expect(counts.connections).toBe(1)
      expect(counts.logins).toBe(1)
      expect(counts.sessions).toBeGreaterThanOrEqual(25)
    })

    it('runs 25 concurrent commands on one login with MaxSessions 1', async () => {
      const before = logOffsets([s.sshdLog.one])
      const mine = kind.make(tmp)
      try {
        await mine.connect(target('hpc-one'), recorder())
        const results = await Promise.all(Array.from({length: 25}, (_, i) => mine.exec(`echo ${i}`)))
        expect(results.map((r) => r.stdout)).toEqual(Array.from({length: 25}, (_, i) => `${i}\n`))
        // ssh2 sees its channels open and learns the limit exactly; ssh's mux clients only show refusals.
        if (kind.name === 'ssh2') expect(mine.sessionCap).toBe(1)
        else expect(mine.sessionCap).toBeLessThan(10)
      } finally {
        await mine.close()
      }
      const counts = sshdCounts(before)
      expect(counts.connections).toBe(1)
      expect(counts.logins).toBe(1)
    })

    it('asks the 2FA question once: one login for 20 sequential and 20 concurrent commands', async () => {
      const before = logOffsets([s.sshdLog.otp])
      const code = freshOtpCode(s)
      const interaction = recorder(() => code)
      const mine = kind.make(tmp)
      try {
        await mine.connect(target('hpc-2fa'), interaction)
        for (let i = 0; i < 20; i++) expect((await mine.exec(`echo ${i}`)).stdout).toBe(`${i}\n`)
        const results = await Promise.all(Array.from({length: 20}, (_, i) => mine.exec(`sleep 0.05; echo ${i}`)))
        expect(results.map((r) => r.stdout)).toEqual(Array.from({length: 20}, (_, i) => `${i}\n`))
      } finally {
        await mine.close()
      }
      expect(interaction.asked).toHaveLength(1)
      expect(interaction.asked[0]!.prompt).toMatch(/Verification code/)
      expect(interaction.asked[0]!.echo).toBe(false)
      const counts = sshdCounts(before)
      expect(counts.connections).toBe(1)
      expect(counts.logins).toBe(1)
      expect(counts.sessions).toBe(40)
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
      const before = logOffsets([s.sshdLog.key, s.sshdLog.one])
      const mine = kind.make(tmp)
      try {
        await mine.connect({host: 'jumped', configFile: config}, recorder())
        expect((await mine.exec('echo through')).stdout).toBe('through\n')
      } finally {
        await mine.close()
      }
      const counts = sshdCounts(before)
      expect(counts.byLog[s.sshdLog.key]!.logins).toBe(1)
      expect(counts.byLog[s.sshdLog.one]!.logins).toBe(1)
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
