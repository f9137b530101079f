/**
 * Container images and 2FA on the loopback site: the first create sends an
 * image, the second sends none of its bytes (counted on the wire by the
 * kernel, not by the tool); a create against the 2FA login answers one
 * prompt, once.
 */
import {execFileSync, spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnSite, freshOtpCode, logOffsets, sshdCounts} from '../site/helpers.js'
import {annexSite, ROOT, type AnnexSite} from './annex-site.js'

const CHAIN = 'HPCANNEX_WIRE'
const MiB = 1024 * 1024

/** Bytes the kernel delivered to the site's key-login sshd port since the last reset. */
const wire = {
  install(port: number) {
    wire.remove(port)
    execFileSync('iptables', ['-N', CHAIN])
    execFileSync('iptables', ['-A', CHAIN, '-j', 'RETURN'])
    execFileSync('iptables', ['-I', 'INPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(port), '-j', CHAIN])
  },
  reset() {
    execFileSync('iptables', ['-Z', CHAIN])
  },
  bytes(): number {
    const out = execFileSync('iptables', ['-L', CHAIN, '-v', '-x', '-n'], {encoding: 'utf8'})
    const line = out.split('\n').find((l) => /\bRETURN\b/.test(l))!
    return Number(line.trim().split(/\s+/)[1])
  },
  remove(port: number) {
    try {
      execFileSync('iptables', ['-D', 'INPUT', '-p', 'tcp', '-d', '127.0.0.1', '--dport', String(port), '-j', CHAIN], {stdio: 'ignore'})
    } catch {
      // not installed
    }
    try {
      execFileSync('iptables', ['-F', CHAIN], {stdio: 'ignore'})
      execFileSync('iptables', ['-X', CHAIN], {stdio: 'ignore'})
    } catch {
      // not there
    }
  },
}

describeOnSite('images and 2FA on the loopback site', () => {
  let a: AnnexSite
  let image: string
  beforeAll(() => {
    a = annexSite()
    image = join(a.home, 'analysis.sif')
    execFileSync('bash', ['-c', `head -c ${32 * MiB} /dev/urandom > '${image}'`])
    wire.install(a.s.ports.key)
  })
  afterAll(() => {
    wire.remove(a?.s.ports.key)
    a?.close()
  })

  it('the first create sends the image; the second sends none of its bytes and finds it in the cache', async () => {
    a.fake.addJob({TargetAnnexName: 'images', TransferContainer: true, ContainerImage: image, TransferInput: `${image},input.dat`})
    const create = ['compute@sandbox', '--nodes', '1', '--condor-tarball', a.s.condorTarball!, '--json']

    wire.reset()
    const first = await a.cli(['create', 'images', ...create])
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    const firstBytes = wire.bytes()
    const one = JSON.parse(first.stdout) as {images: {sent: boolean}[]; pilotDir: string; batchJobId: string}
    expect(one.images).toMatchObject([{sent: true}])
    expect(firstBytes).toBeGreaterThan(32 * MiB)
    // The job now points at the staged copy, by name.
    const job = a.fake.state().jobs.find((j) => j.TargetAnnexName === 'images')!
    expect(job.ContainerImage).toBe('analysis.sif')
    expect(job.TransferInput).toBe('input.dat')
    const digest = execFileSync('sha256sum', [image], {encoding: 'utf8'}).split(' ')[0]!
    expect(a.onSite(`test -f ~/.hpc-annex/cache/${digest} && echo cached`).stdout).toContain('cached')
    const staged = a.onSite(`sha256sum '${one.pilotDir}/sif/analysis.sif'`).stdout.split(' ')[0]
    expect(staged).toBe(digest)
    a.onSite(`scancel ${one.batchJobId}`)

    wire.reset()
    const second = await a.cli(['add', 'images', ...create])
    expect(second.stderr).toBe('')
    expect(second.code).toBe(0)
    const secondBytes = wire.bytes()
    const two = JSON.parse(second.stdout) as {images: {sent: boolean}[]; pilotDir: string; batchJobId: string; remoteCommands: number}
    expect(two.images).toMatchObject([{sent: false}])
    expect(two.remoteCommands).toBe(1)
    // Everything but the image (and the test tarball, also cached): well under a MiB.
    expect(secondBytes).toBeLessThan(MiB)
    expect(a.onSite(`cmp '${two.pilotDir}/sif/analysis.sif' '${one.pilotDir}/sif/analysis.sif' && echo same`).stdout).toContain('same')
    a.onSite(`scancel ${two.batchJobId}`)
  })

  it('a create against the 2FA login asks one question, once', async () => {
    a.fake.addJob({TargetAnnexName: 'twofactor'})
    const before = logOffsets()
    const code = freshOtpCode(a.s)
    const args = ['create', 'twofactor', 'compute@sandbox', '--login-host', 'hpc-2fa', '--nodes', '1', '--condor-tarball', a.s.condorTarball!]
    const command = [process.execPath, join(ROOT, 'bin', 'run.js'), ...args].map((w) => `'${w}'`).join(' ')
    // A terminal, as a person has: the question is asked on it and answered there.
    const child = spawn('script', ['-qfec', command, '/dev/null'], {env: a.env, stdio: ['pipe', 'pipe', 'pipe']})
    let screen = ''
    let answered = 0
    child.stdout!.on('data', (d: Buffer) => {
      screen += d.toString()
      const asked = (screen.match(/Verification code/g) ?? []).length
      if (asked > answered) {
        answered = asked
        // As a person would: after the prompt has turned echo off.
        setTimeout(() => child.stdin!.write(`${code}\r`), 500)
      }
    })
    const exit = await new Promise<number | null>((resolve) => child.on('close', resolve))
    expect(screen).toContain("Created annex 'twofactor'")
    expect(exit).toBe(0)
    expect((screen.match(/Verification code/g) ?? []).length).toBe(1)
    expect(screen).not.toContain(code)
    const otpLog = a.s.sshdLogs.find((l) => l.includes('otp'))!
    const counts = sshdCounts(before).byLog[otpLog]!
    expect(counts.connections).toBe(1)
    expect(counts.logins).toBe(1)
    const batchJob = /batch job (\d+)/.exec(screen)?.[1]
    if (batchJob) a.onSite(`scancel ${batchJob}`)
    expect(readFileSync(otpLog, 'utf8')).toContain('Accepted keyboard-interactive/pam for hpcuser')
  })
})
