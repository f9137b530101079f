/**
 * Container images and 2FA on real HTCondor: a job submitted with
 * `universe = container` and a .sif image (as condor_submit 25 writes it);
 * the first create sends the image, the second sends none of its bytes
 * (counted on the wire by the kernel, not by the tool); the real schedd's job
 * is pointed at the staged copy, and put back when a request fails; a create
 * against the 2FA login answers one prompt, once.
 */
import {execFileSync, spawn} from 'node:child_process'
import {chownSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnRealHTCondor, freshOtpCode, logOffsets, sshdCounts} from '../site/helpers.js'
import {lenientMachines, ROOT} from './annex-site.js'
import {realAnnexSite, type RealAnnexSite} from './real-site.js'

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

describeOnRealHTCondor('images and 2FA on the loopback site', () => {
  let a: RealAnnexSite
  let image: string
  let machines: string
  beforeAll(() => {
    a = realAnnexSite()
    image = join(a.home, 'analysis.sif')
    execFileSync('bash', ['-c', `head -c ${32 * MiB} /dev/urandom > '${image}'; touch '${join(a.home, 'input.dat')}'`])
    chownSync(image, a.ap.uid, a.ap.gid)
    // A machine file that allows more than SLURM's debug partition does: sbatch refuses.
    const dir = join(a.home, 'machines')
    mkdirSync(dir)
    machines = lenientMachines(dir)
    wire.install(a.s.ports.key)
  })
  afterAll(() => {
    wire.remove(a?.s.ports.key)
    a?.close()
  })

  /** A container job for the annex, submitted with condor_submit as the user would; its job id. */
  const containerJob = (annex: string): string => {
    const file = join(a.home, `container-${annex}.sub`)
    writeFileSync(
      file,
      [
        'universe = container',
        `container_image = ${image}`,
        'executable = /bin/true',
        'transfer_input_files = input.dat',
        'should_transfer_files = YES',
        'request_cpus = 1',
        'request_memory = 64',
        `MY.TargetAnnexName = "${annex}"`,
        'queue',
        '',
      ].join('\n'),
    )
    chownSync(file, a.ap.uid, a.ap.gid)
    const r = a.condor('condor_submit', ['-terse', file])
    expect(r.code, r.stderr).toBe(0)
    // -terse prints the first and last job id: "12.0 - 12.0".
    return r.stdout.trim().split(/\s+/)[0]!
  }
  const job = (id: string) => a.jobs(`ClusterId == ${id.split('.')[0]} && ProcId == ${id.split('.')[1]}`)[0]!

  it('the first create sends the image; the second sends none of its bytes and finds it in the cache; the real job points at the staged copy', async () => {
    const id = containerJob('images')
    const original = job(id)
    expect(original).toMatchObject({ContainerImage: 'analysis.sif', ContainerImageFullPath: image, TransferInput: `input.dat,${image}`})
    const create = ['compute@sandbox', '--nodes', '1', '--condor-tarball', a.tarball, '--json']

    wire.reset()
    const first = await a.cli(['create', 'images', ...create])
    expect(first.code, first.stdout + first.stderr).toBe(0)
    const firstBytes = wire.bytes()
    const one = JSON.parse(first.stdout) as {images: {sent: boolean}[]; pilotDir: string; batchJobId: string}
    expect(one.images).toMatchObject([{sent: true}])
    expect(firstBytes).toBeGreaterThan(32 * MiB)
    // The job now points at the staged copy, by name, and no longer transfers the image.
    expect(job(id)).toMatchObject({ContainerImage: 'analysis.sif', TransferInput: 'input.dat', hpc_annex_image_source: image})
    const digest = execFileSync('sha256sum', [image], {encoding: 'utf8'}).split(' ')[0]!
    expect(a.onSite(`test -f ~/.hpc-annex/cache/${digest} && echo cached`).stdout).toContain('cached')
    expect(a.onSite(`sha256sum '${one.pilotDir}/sif/analysis.sif'`).stdout.split(' ')[0]).toBe(digest)
    a.onSite(`scancel ${one.batchJobId}`)

    wire.reset()
    const second = await a.cli(['add', 'images', ...create])
    expect(second.code, second.stdout + second.stderr).toBe(0)
    const secondBytes = wire.bytes()
    const two = JSON.parse(second.stdout) as {images: {sent: boolean}[]; pilotDir: string; batchJobId: string; remoteCommands: number}
    expect(two.images).toMatchObject([{sent: false}])
    expect(two.remoteCommands).toBe(1)
    // Everything but the image (and the HTCondor tarball, also cached): well under a MiB.
    expect(secondBytes).toBeLessThan(MiB)
    expect(a.onSite(`cmp '${two.pilotDir}/sif/analysis.sif' ~/.hpc-annex/cache/${digest} && echo same`).stdout).toContain('same')
    a.onSite(`scancel ${two.batchJobId}`)
    a.condor('condor_rm', [id])
  })

  it('a request that fails after the image edits puts the real job back as it was', async () => {
    const id = containerJob('refused')
    const original = job(id)
    const run = await a.cli(['create', 'refused', 'debug@lenient', '--lifetime', '3600', '--condor-tarball', a.tarball], {HPC_ANNEX_MACHINES: machines})
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/^Error: Staging and submitting .* failed: .*\(undone: .*restored the jobs' container images/m)
    const now = job(id)
    for (const name of ['ContainerImage', 'ContainerImageFullPath', 'TransferInput']) expect(now[name], name).toEqual(original[name])
    // condor_qedit cannot delete an attribute: it is put back to undefined.
    expect(now.hpc_annex_image_source ?? null).toBeNull()
    a.condor('condor_rm', [id])
  })

  it('a create against the 2FA login asks one question, once', async () => {
    await a.submitJob('twofactor')
    const before = logOffsets()
    const code = freshOtpCode(a.s)
    const args = ['create', 'twofactor', 'compute@sandbox', '--login-host', 'hpc-2fa', '--nodes', '1', '--condor-tarball', a.tarball]
    const command = [process.execPath, join(ROOT, 'bin', 'run.js'), ...args].map((w) => `'${w}'`).join(' ')
    // A terminal, as a person has: the question is asked on it and answered there.
    const child = spawn('script', ['-qfec', command, '/dev/null'], {env: a.env, uid: a.ap.uid, gid: a.ap.gid, cwd: a.home, stdio: ['pipe', 'pipe', 'pipe']})
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
