import {chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {findSystem, formatProblem, loadCatalog, machineDirectories, parseMachineFile, validateRequest} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'

const anvil = readFileSync(join(projectPath('backends'), 'anvil.toml'), 'utf8')

const site = `
name = "Mini HPC"
host = "login.mini.example.org"
batch = "slurm"
default_queue = "compute"
scratch = '$HOME/scratch'

[htcondor]
version = "25.0.4"
url = "https://example.org/condor-{version}-{os}.tar.gz"
os = ["Debian12"]

[queues.compute]
allocation = "node"
max_nodes = 4
max_duration = 86400
`

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hpc-annex-machines-'))
})
afterEach(() => {
  // temporary directories are left to the OS; nothing here is secret
})

describe('parseMachineFile', () => {
  it('accepts every built-in file', () => {
    expect(parseMachineFile('anvil.toml', anvil).problems).toEqual([])
  })

  it('names the file and line of a TOML syntax error', () => {
    const {problems} = parseMachineFile('/x/bad.toml', 'name = "a"\nhost = \n')
    expect(problems).toHaveLength(1)
    expect(formatProblem(problems[0]!)).toMatch(/^\/x\/bad\.toml:2: invalid TOML/)
  })

  it('names the key and line of a wrong value', () => {
    const text = anvil.replace('max_nodes = 56', 'max_nodes = "many"')
    const [problem] = parseMachineFile('/x/anvil.toml', text).problems
    const line = text.split('\n').findIndex((l) => l.includes('"many"')) + 1
    expect(problem).toMatchObject({file: '/x/anvil.toml', line, key: 'queues.wide.max_nodes'})
    expect(problem!.message).toMatch(/number/)
  })

  it('refuses an unknown key (a misspelt limit) at its line', () => {
    const text = anvil.replace('max_jobs_in_queue = 10', 'max_job_in_queue = 10')
    const [problem] = parseMachineFile('/x/anvil.toml', text).problems
    expect(problem).toMatchObject({key: 'queues.wide.max_job_in_queue', message: "unknown key 'max_job_in_queue'"})
    expect(problem!.line).toBe(text.split('\n').findIndex((l) => l.startsWith('max_job_in_queue')) + 1)
  })

  it('reports a missing key at its table, and a default queue that names no queue', () => {
    const missing = parseMachineFile('/x/s.toml', site.replace('max_duration = 86400\n', '')).problems
    expect(missing[0]).toMatchObject({key: 'queues.compute.max_duration', message: 'is required'})
    expect(missing[0]!.line).toBe(site.split('\n').indexOf('[queues.compute]') + 1)
    const wrongDefault = parseMachineFile('/x/s.toml', site.replace('default_queue = "compute"', 'default_queue = "batch"')).problems
    expect(wrongDefault[0]).toMatchObject({key: 'default_queue', line: 5})
    expect(wrongDefault[0]!.message).toMatch(/names no queue.*compute/)
  })

  it('checks shapes: a GPU type must be one of the queue\'s', () => {
    const text = readFileSync(join(projectPath('backends'), 'bridges2.toml'), 'utf8').replace('when_gpu_type = "v100-16"', 'when_gpu_type = "v100-64"')
    const problem = parseMachineFile('/x/bridges2.toml', text).problems[0]!
    expect(problem.key).toBe('queues.GPU.shapes.2.when_gpu_type')
    expect(problem.line).toBe(text.split('\n').indexOf('when_gpu_type = "v100-64"') + 1)
  })

  it('refuses a shell_fragment that needs the pilot directory: it runs before there is one', () => {
    const text = `${site.replace('[htcondor]', "shell_fragment = 'touch \"$PILOT_DIR/x\"'\n\n[htcondor]")}`
    const [problem] = parseMachineFile('/x/mini.toml', text).problems
    expect(problem).toMatchObject({key: 'shell_fragment', line: text.split('\n').findIndex((l) => l.startsWith('shell_fragment')) + 1})
    expect(problem!.message).toMatch(/pilot_dir_fragment/)
    const moved = parseMachineFile('/x/mini.toml', text.replace('shell_fragment', 'pilot_dir_fragment'))
    expect(moved.problems).toEqual([])
  })

  it('takes a pilot job policy only for an HTCondor-batch system, and a container OS only among its builds', () => {
    const slurm = parseMachineFile('/x/mini.toml', `${site}\n[pilot_job]\nrequirements = 'true'\n`).problems
    expect(slurm[0]).toMatchObject({key: 'pilot_job'})
    expect(slurm[0]!.message).toMatch(/batch = "htcondor"/)
    const pool = site.replace('batch = "slurm"', 'batch = "htcondor"')
    expect(parseMachineFile('/x/mini.toml', `${pool}\n[pilot_job]\ncontainer_os = "debian12"\nrequirements = 'GLIDEIN_Site =!= "X"'\n`).problems).toEqual([])
    const wrongOs = parseMachineFile('/x/mini.toml', `${pool}\n[pilot_job]\ncontainer_os = "AlmaLinux8"\n`).problems
    expect(wrongOs[0]).toMatchObject({key: 'pilot_job.container_os'})
    expect(wrongOs[0]!.message).toMatch(/Debian12/)
  })

  it('refuses a file name that is not a system key', () => {
    expect(parseMachineFile('/x/My Site.toml', site).problems[0]!.message).toMatch(/file name/)
  })
})

describe('the built-in machine files as the build parsed them', () => {
  // npm test builds first; dist's loader finds the record the build wrote.
  const built = join(import.meta.dirname, '..', '..', 'dist', 'catalog', 'load.js')

  it('hold every built-in file, each exactly as parsing its text gives it', async () => {
    const {BUILT_MACHINES} = (await import(built)) as typeof import('../../src/catalog/load.js')
    const records = JSON.parse(readFileSync(BUILT_MACHINES, 'utf8')) as {text: string; machine: object}[]
    const files = readdirSync(projectPath('backends')).filter((entry) => entry.endsWith('.toml'))
    expect(records.map((r) => r.text).sort()).toEqual(files.map((f) => readFileSync(join(projectPath('backends'), f), 'utf8')).sort())
    for (const {text, machine} of records) {
      const {key: _key, source: _source, ...fresh} = parseMachineFile('x.toml', text).machine!
      expect(machine).toStrictEqual(fresh)
    }
  })

  it('are used only for the same text, and named by the file that holds it', async () => {
    const dist = (await import(built)) as typeof import('../../src/catalog/load.js')
    const same = dist.parseMachineFile('/etc/hpc-annex/machines/mine.toml', anvil)
    expect(same.machine).toMatchObject({key: 'mine', source: '/etc/hpc-annex/machines/mine.toml', name: 'Anvil'})
    const edited = dist.parseMachineFile('/x/anvil.toml', anvil.replace('name = "Anvil"', 'name = "Anvil West"'))
    expect(edited.machine?.name).toBe('Anvil West')
    const broken = dist.parseMachineFile('/x/anvil.toml', `bogus_key = 1\n${anvil}`)
    expect(broken.problems.map((p) => p.key)).toEqual(['bogus_key'])
    // Each caller gets its own copy.
    same.machine!.queues = {}
    expect(dist.parseMachineFile('/x/anvil.toml', anvil).machine!.queues).not.toEqual({})
  })
})


describe('loadCatalog', () => {
  it('adds a system from an extra directory, and a bad file does not stop the others', () => {
    writeFileSync(join(dir, 'mini.toml'), site)
    writeFileSync(join(dir, 'broken.toml'), 'name = ')
    const catalog = loadCatalog([projectPath('backends'), dir])
    expect(catalog.systems.get('mini')?.name).toBe('Mini HPC')
    expect(catalog.systems.size).toBe(8)
    expect(catalog.problems.map((p) => p.system)).toEqual(['broken'])
    const plan = validateRequest(catalog, {name: 'x', target: 'compute@mini', nodes: '4'}, {defaultOwner: 'a'})
    expect(plan.system).toMatchObject({key: 'mini', source: join(dir, 'mini.toml')})
    expect(() => validateRequest(catalog, {name: 'x', target: 'q@broken'}, {defaultOwner: 'a'})).toThrow(/broken\.toml:1: invalid TOML/)
  })

  it('lets a later definition of a key replace the built-in one', () => {
    writeFileSync(join(dir, 'anvil.toml'), anvil.replace('max_nodes = 16', 'max_nodes = 2'))
    const catalog = loadCatalog([projectPath('backends'), dir])
    expect(catalog.systems.get('anvil')!.queues.wholenode!.max_nodes).toBe(2)
    expect(findSystem(catalog, 'ANVIL')!.source).toBe(join(dir, 'anvil.toml'))
  })

  it('reads $HPC_ANNEX_MACHINES last (first listed wins), after the user and site directories', () => {
    const dirs = machineDirectories({HPC_ANNEX_MACHINES: '/a:/b', HOME: '/home/u'} as NodeJS.ProcessEnv)
    expect(dirs).toEqual([projectPath('backends'), '/etc/hpc-annex/machines', '/home/u/.config/hpc-annex/machines', '/b', '/a'])
    mkdirSync(join(dir, 'a'))
    mkdirSync(join(dir, 'b'))
    writeFileSync(join(dir, 'a', 'mini.toml'), site.replace('Mini HPC', 'From A'))
    writeFileSync(join(dir, 'b', 'mini.toml'), site.replace('Mini HPC', 'From B'))
    const catalog = loadCatalog(machineDirectories({HPC_ANNEX_MACHINES: `${join(dir, 'a')}:${join(dir, 'b')}`, HOME: dir} as NodeJS.ProcessEnv))
    expect(catalog.systems.get('mini')!.name).toBe('From A')
  })
})

describe('machine files another user could have written', () => {
  const planted = `shell_fragment = 'touch ~/PWNED'\n${anvil}`

  it('refuses a relative entry of $HPC_ANNEX_MACHINES: it would be read from whatever directory hpc-annex runs in', () => {
    const env = (value: string) => ({HPC_ANNEX_MACHINES: value, HOME: '/home/u'}) as NodeJS.ProcessEnv
    for (const value of ['machines', '/abs:machines', './machines', '../x']) {
      expect(() => machineDirectories(env(value)), value).toThrow(/^\$HPC_ANNEX_MACHINES lists '[^']+', which is not an absolute path; machine files are read only from absolute directories\.$/)
    }
    expect(() => machineDirectories(env('machines'))).toThrow(expect.objectContaining({exitCode: 1}))
    // A relative XDG_CONFIG_HOME is ignored, as the XDG specification says.
    expect(machineDirectories({XDG_CONFIG_HOME: 'cfg', HOME: '/home/u'} as NodeJS.ProcessEnv)[2]).toBe('/home/u/.config/hpc-annex/machines')
  })

  it('refuses a group- or world-writable file, and any file of a writable directory; the rest still load', () => {
    writeFileSync(join(dir, 'mini.toml'), site)
    writeFileSync(join(dir, 'anvil.toml'), planted)
    chmodSync(join(dir, 'anvil.toml'), 0o664)
    const open = join(dir, 'open')
    mkdirSync(open)
    chmodSync(open, 0o777)
    writeFileSync(join(open, 'expanse.toml'), readFileSync(join(projectPath('backends'), 'expanse.toml'), 'utf8'))
    const catalog = loadCatalog([projectPath('backends'), dir, open])
    expect(catalog.problems.map((p) => [p.system, p.untrusted, formatProblem(p)])).toEqual([
      ['anvil', true, `${join(dir, 'anvil.toml')}: not trusted: it is writable by its group (chmod go-w ${join(dir, 'anvil.toml')})`],
      ['expanse', true, `${join(open, 'expanse.toml')}: not trusted: its directory ${open} is writable by every user (chmod go-w ${open})`],
    ])
    // Never read: the built-in definitions stay, and a request for the system fails naming the file.
    expect(catalog.systems.get('anvil')!.source).toBe(join(projectPath('backends'), 'anvil.toml'))
    expect(catalog.systems.get('mini')!.name).toBe('Mini HPC')
    expect(() => validateRequest(catalog, {name: 'x', target: 'wholenode@anvil'}, {defaultOwner: 'a'}))
      .toThrow(`Refusing the machine file for 'anvil': ${join(dir, 'anvil.toml')}: not trusted: it is writable by its group (chmod go-w ${join(dir, 'anvil.toml')}).`)
    expect(() => validateRequest(catalog, {name: 'x', target: 'compute@expanse'}, {defaultOwner: 'a'})).toThrow(expect.objectContaining({exitCode: 1}))
    expect(validateRequest(catalog, {name: 'x', target: 'compute@mini', nodes: '1'}, {defaultOwner: 'a'}).system.key).toBe('mini')
  })

  it('follows a symbolic link to a file in a directory another user can write', () => {
    const open = join(dir, 'open')
    mkdirSync(open)
    chmodSync(open, 0o1777)
    writeFileSync(join(open, 'real.toml'), site)
    const safe = join(dir, 'safe')
    mkdirSync(safe)
    symlinkSync(join(open, 'real.toml'), join(safe, 'mini.toml'))
    const [problem] = loadCatalog([safe]).problems
    expect(problem).toMatchObject({system: 'mini', untrusted: true, message: `not trusted: its directory ${open} is writable by every user (chmod go-w ${open})`})
  })

  it.skipIf(process.getuid?.() !== 0)("refuses a file or directory owned by another user (root's and the user's own are used)", () => {
    writeFileSync(join(dir, 'mini.toml'), site)
    chownSync(join(dir, 'mini.toml'), 12345, 12345)
    const theirs = join(dir, 'theirs')
    mkdirSync(theirs, {mode: 0o755})
    writeFileSync(join(theirs, 'spark.toml'), readFileSync(join(projectPath('backends'), 'spark.toml'), 'utf8'))
    chownSync(theirs, 12345, 12345)
    const catalog = loadCatalog([projectPath('backends'), dir, theirs])
    expect(catalog.problems.map(formatProblem)).toEqual([
      `${join(dir, 'mini.toml')}: not trusted: it belongs to another user (uid 12345), not to you or root`,
      `${join(theirs, 'spark.toml')}: not trusted: its directory ${theirs} belongs to another user (uid 12345), not to you or root`,
    ])
    expect(catalog.systems.has('mini')).toBe(false)
    expect(catalog.systems.get('spark')!.source).toBe(join(projectPath('backends'), 'spark.toml'))
  })
})
