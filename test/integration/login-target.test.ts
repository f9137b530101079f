/**
 * `hpc-annex login` opens the connection that later verbs use, so it must
 * log in where they will: the admin's per-system override
 * (HPC_ANNEX_<SYSTEM>_HOST_NAME) counts for it as for create.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {describeOnSite, logOffsets, sshdCounts} from '../site/helpers.js'
import {annexSite, type AnnexSite} from './annex-site.js'

describeOnSite('login on the loopback site', () => {
  let a: AnnexSite
  let controlDir: string
  beforeAll(() => {
    // The admin sends this system's logins to the MaxSessions=1 sshd (alias hpc-one) instead of the machine file's hpc.
    a = annexSite({config: {HPC_ANNEX_SANDBOX_HOST_NAME: 'hpc-one'}})
    controlDir = mkdtempSync(join(tmpdir(), 'annex-ctl-'))
  })
  afterAll(() => {
    a?.close()
    rmSync(controlDir, {recursive: true, force: true})
  })

  it("logs in to the admin's override host, as create would", async () => {
    const before = logOffsets()
    const r = await a.cli(['login', 'sandbox', '--json', '--persist', '60'], {HPC_ANNEX_SSH_DIR: controlDir})
    expect(r.code, r.stderr).toBe(0)
    const {controlPath} = JSON.parse(r.stdout) as {controlPath: string}
    const counts = sshdCounts(before).byLog
    expect(counts[a.s.sshdLog.one]!.logins).toBe(1)
    spawnSync('ssh', ['-S', controlPath, '-O', 'exit', 'hpc-one'], {stdio: 'ignore'})
  })
})
