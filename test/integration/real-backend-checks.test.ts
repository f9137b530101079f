/**
 * What the back-end and the pilot job look like to real HTCondor: the PATh
 * pilot job's submit description as the real condor_submit reads it, and the
 * back-end's check of the annex collector from the login node against this
 * run's real Access Point (whose collector is 127.0.0.1:<port>).
 */
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {loadCatalog, validateRequest} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'
import {renderFiles} from '../../src/backend/index.js'
import {describeOnRealHTCondor, realAccessPoint, runCommand} from '../site/helpers.js'
import {realAnnexSite, type RealAnnexSite} from './real-site.js'

describeOnRealHTCondor('the PATh pilot job as the real condor_submit reads it', () => {
  it('carries the machine file\'s policy: requirements, container, disk per CPU', async () => {
    const ap = realAccessPoint()!
    const dir = mkdtempSync(join(tmpdir(), 'hpc-annex-pilot-sub-'))
    try {
      const plan = validateRequest(loadCatalog([projectPath('backends')]), {name: 'demo', target: 'cpu@path-facility', cpus: '4'}, {defaultOwner: 'alice'})
      const files = renderFiles(plan, {requestId: 'ap.example.org#7.0#1700000000', collector: 'ap.example.org:9618?sock=ap_collector', scheddName: 'ap.example.org'})
      for (const file of files) writeFileSync(join(dir, file.path), file.content)
      for (const input of ['condor.tar.gz', 'token', 'password']) writeFileSync(join(dir, input), '')
      mkdirSync(join(dir, 'sif'))
      writeFileSync(join(dir, 'empty.config'), '')
      const env = {PATH: '/usr/bin:/bin', CONDOR_CONFIG: join(dir, 'empty.config')}
      const r = await runCommand(join(ap.release.releaseDir, 'bin', 'condor_submit'), ['-dry-run', '-', join(dir, 'pilot.sub')], env, undefined, {cwd: dir})
      expect(r.code, r.stderr).toBe(0)
      const ad = Object.fromEntries(r.stdout.split('\n').filter((l) => /^[A-Za-z_]\w*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
      expect(ad.Requirements).toMatch(/^\(GLIDEIN_Site =!= "FIU-PATH"\) && /)
      expect(ad.SingularityImage).toBe('"docker://hub.opensciencegrid.org/htcondor/hpc-annex-pilot:el8"')
      expect(ad.RequestDisk).toBe('4 * 15000 * 1024')
      expect(ad.RequestCpus).toBe('4')
      expect(ad.RequestMemory).toBe('2048')
      expect(ad.hpc_annex_request_id).toBe('"ap.example.org#7.0#1700000000"')
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describeOnRealHTCondor('the back-end\'s check of the real annex collector', () => {
  let a: RealAnnexSite
  beforeAll(() => {
    a = realAnnexSite()
  })
  afterAll(() => a?.close())

  it('finds the Access Point\'s collector (127.0.0.1:<port>) from the login node: no warning', async () => {
    expect(a.collector).toMatch(/^<?127\.0\.0\.1:\d+/)
    await a.submitJob('checked')
    const created = await a.cli(['create', 'checked', 'compute@sandbox', '--nodes', '1', '--lifetime', '1800', '--condor-tarball', a.tarball, '--json'])
    expect(created.code, created.stderr).toBe(0)
    const result = JSON.parse(created.stdout) as {batchJobId: string; warnings: string[]}
    expect(result.batchJobId).toMatch(/^\d+$/)
    expect(result.warnings).toEqual([])
    const off = await a.cli(['shutdown', 'checked', '--cancel-pending'])
    expect(off.code, off.stderr).toBe(0)
  })
})
