/**
 * What one user's hpc-annex must not do to, or take from, anything else in
 * the schedd, on real HTCondor: an Access Point of this file's own where
 * condor_q shows every user's jobs (CONDOR_Q_ONLY_MY_JOBS = False) and the
 * Access Point's user is a queue superuser (it may edit and remove anyone's
 * jobs), with a second user, `annexother`, submitting to the same schedd.
 * Their jobs for an annex of the same name must not make the name look
 * taken, supply images, be edited, or be removed by the stray-job clean-up.
 * Also: two overlapping runs each have a token of their own, and a container
 * image given as a URL passes through a create untouched.
 */
import {chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {
  AP_USER,
  apToolEnv,
  apUserDir,
  asApUser,
  ensureApUser,
  startAccessPoint,
  stopAccessPoint,
  type AccessPoint,
} from '../site/htcondor.js'
import {describeOnRealHTCondor, realAccessPoint, runCommand, until, type RunResult} from '../site/helpers.js'
import {ROOT} from './annex-site.js'

const OTHER = 'annexother'

describeOnRealHTCondor("other users' jobs, overlapping runs and image URLs", () => {
  let ap: AccessPoint
  let home: string
  let env: NodeJS.ProcessEnv
  let other: {uid: number; gid: number; env: NodeJS.ProcessEnv; tokens: string}
  let tokensDir: string

  /** hpc-annex as the Access Point's user. */
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
    runCommand(process.execPath, [join(ROOT, 'bin', 'run.js'), ...args], {...env, ...extra}, undefined, {uid: ap.uid, gid: ap.gid, cwd: home})

  /** A file of `owner`'s, readable by everyone. */
  const write = (path: string, text: string, owner: {uid: number; gid: number}) => {
    writeFileSync(path, text)
    chownSync(path, owner.uid, owner.gid)
  }

  /** condor_submit as `who`; the job id. */
  const submit = (who: 'ap' | 'other', name: string, lines: string[]): string => {
    const dir = who === 'ap' ? home : join(other.tokens, '..')
    const file = join(dir, `${name}.sub`)
    write(file, ['executable = /bin/true', 'hold = true', ...lines, 'queue', ''].join('\n'), who === 'ap' ? ap : other)
    const r = who === 'ap'
      ? asApUser(ap, 'condor_submit', ['-terse', file], {env, cwd: home})
      : asApUser({...ap, uid: other.uid, gid: other.gid}, 'condor_submit', ['-terse', file], {env: other.env, cwd: dir})
    if (r.code !== 0) throw new Error(`condor_submit as ${who} failed: ${r.stderr}`)
    return r.stdout.trim().split(' ')[0]!
  }

  /** A job's ad, whoever's it is (condor_q shows every user's here), without the query's own ServerTime. */
  const job = (id: string): Record<string, unknown> | undefined => {
    const r = asApUser(ap, 'condor_q', ['-json', id], {env})
    if (r.stdout.trim() === '') return undefined
    const {ServerTime: _now, ...ad} = (JSON.parse(r.stdout) as Record<string, unknown>[])[0]!
    return ad
  }

  const json = <T>(r: RunResult): T => {
    if (r.code !== 0) throw new Error(`hpc-annex failed (${r.code}): ${r.stderr}${r.stdout}`)
    return JSON.parse(r.stdout) as T
  }

  beforeAll(async () => {
    ap = await startAccessPoint({
      release: realAccessPoint()!.release,
      name: 'isolation',
      extraConfig: ['CONDOR_Q_ONLY_MY_JOBS = False', `QUEUE_SUPER_USERS = $(QUEUE_SUPER_USERS) ${AP_USER}`].join('\n'),
    })
    home = apUserDir(mkdtempSync(join(ap.dir, 'home-')), ap)
    env = {...apToolEnv(ap), HOME: home, USER: ap.user, LOGNAME: ap.user, HPC_ANNEX_MACHINES: join(ROOT, 'test', 'site', 'machines')}
    delete env.SSH_AUTH_SOCK
    tokensDir = asApUser(ap, 'condor_config_val', ['SEC_TOKEN_DIRECTORY'], {env}).stdout.trim()

    // The second user authenticates with a token the pool's signing key made for it (file-system
    // authentication is this pool's user's alone here); a job it submits is owned by it.
    const user = ensureApUser(OTHER)
    const otherHome = mkdtempSync(join(ap.dir, 'other-'))
    chmodSync(otherHome, 0o755)
    chownSync(otherHome, user.uid, user.gid)
    const tokens = join(otherHome, 'tokens.d')
    mkdirSync(tokens, {mode: 0o700})
    chownSync(tokens, user.uid, user.gid)
    const domain = asApUser(ap, 'condor_config_val', ['UID_DOMAIN'], {env}).stdout.trim()
    const token = asApUser(ap, 'condor_token_create', ['-identity', `${OTHER}@${domain}`], {env})
    if (token.code !== 0) throw new Error(`condor_token_create failed: ${token.stderr}`)
    writeFileSync(join(tokens, 'other'), token.stdout, {mode: 0o600})
    chownSync(join(tokens, 'other'), user.uid, user.gid)
    other = {
      uid: user.uid,
      gid: user.gid,
      tokens,
      env: {...apToolEnv(ap), HOME: otherHome, USER: OTHER, LOGNAME: OTHER, _CONDOR_SEC_TOKEN_DIRECTORY: tokens, _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS: 'IDTOKENS'},
    }
  }, 120_000)

  afterAll(async () => {
    if (ap) await stopAccessPoint(ap)
  })

  it("another user's request of the same name does not make the name look taken, nor count in status", async () => {
    const theirRequest = submit('other', 'their-request', ['+hpc_annex_name = "shared"'])
    expect(job(theirRequest)).toMatchObject({Owner: OTHER, hpc_annex_name: 'shared'})
    // condor_q, as the Access Point's user, shows it.
    expect(asApUser(ap, 'condor_q', ['-constraint', 'hpc_annex_name == "shared"', '-af', 'Owner'], {env, cwd: home}).stdout.trim()).toBe(OTHER)

    submit('ap', 'mine', ['+TargetAnnexName = "shared"'])
    json(await cli(['create', 'shared', 'compute@sandbox', '--bundle', join(home, 'shared.bundle'), '--json']))
    expect(job(theirRequest)).toMatchObject({Owner: OTHER, JobStatus: 5})
    const status = json<{annexes: {annexName: string; requests: {pending: number; active: number; retired: number}; jobs: {total: number}}[]}>(await cli(['status', 'shared', '--json']))
    expect(status.annexes).toHaveLength(1)
    expect(status.annexes[0]).toMatchObject({annexName: 'shared', jobs: {total: 1}})
    const requests = status.annexes[0]!.requests
    expect(requests.pending + requests.active + requests.retired).toBe(1)
    // The user's own request does: the next create of the name is refused, pointing to add.
    const again = await cli(['create', 'shared', 'compute@sandbox', '--bundle', join(home, 'again.bundle')])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("You've already created an annex named 'shared'.")
  })

  it("another user's container job for the annex: its image is neither read nor staged, and the job is not edited", async () => {
    const image = join(other.tokens, '..', 'theirs.sif')
    write(image, 'their image', other)
    chmodSync(image, 0o644)
    const theirJob = submit('other', 'their-job', ['universe = container', `container_image = ${image}`, '+TargetAnnexName = "edits"'])
    const theirsBefore = job(theirJob)!
    expect(theirsBefore).toMatchObject({Owner: OTHER, ContainerImage: 'theirs.sif', ContainerImageFullPath: image})

    submit('ap', 'mine-edits', ['+TargetAnnexName = "edits"'])
    const bundle = join(home, 'edits.bundle')
    const made = json<{images: unknown[]}>(await cli(['create', 'edits', 'compute@sandbox', '--bundle', bundle, '--json']))
    expect(made.images).toEqual([])
    expect(readFileSync(bundle).includes('their image')).toBe(false)
    expect(job(theirJob)).toEqual(theirsBefore)
  })

  it("the clean-up after a state job whose submit was cut short removes the user's own, never another's of the same name", async () => {
    submit('ap', 'mine-race', ['+TargetAnnexName = "race"'])
    // condor_submit that, for the state job (its description on stdin), lets the other user
    // submit a request of the same name first, then submits, then fails as a submit cut short would.
    const wrappers = apUserDir(mkdtempSync(join(ap.dir, 'wrap-')), ap)
    chmodSync(wrappers, 0o755)
    const theirs = join(wrappers, 'theirs.sub')
    write(theirs, 'executable = /bin/true\nhold = true\n+hpc_annex_name = "race"\nqueue\n', ap)
    const tokenCopy = join(wrappers, 'tokens.d')
    mkdirSync(tokenCopy, {mode: 0o700})
    writeFileSync(join(tokenCopy, 'other'), readFileSync(join(other.tokens, 'other')), {mode: 0o600})
    chownSync(tokenCopy, ap.uid, ap.gid)
    chownSync(join(tokenCopy, 'other'), ap.uid, ap.gid)
    const real = join(ap.release.releaseDir, 'bin', 'condor_submit')
    writeFileSync(join(wrappers, 'condor_submit'), [
      '#!/bin/bash',
      `[ "\${!#}" = - ] || exec '${real}' "$@"`,
      `_CONDOR_SEC_TOKEN_DIRECTORY='${tokenCopy}' _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=IDTOKENS '${real}' -terse '${theirs}' > '${join(wrappers, 'theirs.id')}' || exit 3`,
      `'${real}' "$@" > '${join(wrappers, 'mine.id')}' || exit 4`,
      'echo "ERROR: lost the connection to the schedd" >&2',
      'exit 1',
      '',
    ].join('\n'), {mode: 0o755})

    const run = await cli(['create', 'race', 'compute@sandbox', '--bundle', join(home, 'race.bundle')], {PATH: `${wrappers}:${env.PATH}`})
    expect(run.code, run.stderr).toBe(2)
    expect(run.stderr).toMatch(/^Error: Submitting the state job for race failed: .*removed the state job/m)
    const theirId = readFileSync(join(wrappers, 'theirs.id'), 'utf8').trim().split(' ')[0]!
    const mineId = readFileSync(join(wrappers, 'mine.id'), 'utf8').trim().split(' ')[0]!
    // Theirs is still queued (held, as submitted); ours was removed.
    expect(job(theirId)).toMatchObject({Owner: OTHER, hpc_annex_name: 'race', JobStatus: 5})
    expect(job(mineId)?.JobStatus ?? 3).toBe(3)
  })

  it('a container image given as a URL is not a file here: the create goes on, and the job is left as it is', async () => {
    const url = 'osdf:///ospool/ap40/data/someone/analysis.sif'
    const id = submit('ap', 'url-job', ['universe = container', `container_image = ${url}`, 'transfer_input_files = /bin/true', '+TargetAnnexName = "urls"'])
    // What HTCondor 25's condor_submit makes of it: the file name, the URL, and the URL among the inputs.
    const before = job(id)!
    expect(before).toMatchObject({ContainerImage: 'analysis.sif', ContainerImageFullPath: url, ContainerImageSource: 'osdf', TransferInput: `/bin/true,${url}`})
    const made = json<{images: unknown[]}>(await cli(['create', 'urls', 'compute@sandbox', '--bundle', join(home, 'urls.bundle'), '--json']))
    expect(made.images).toEqual([])
    expect(job(id)).toEqual(before)
  })

  it('overlapping runs each have a token file of their own, 0600, gone when each ends', async () => {
    // condor_status for the annex collector (under the token) that notes the token
    // directory when it runs; the first run's waits until the second run has ended.
    const wrappers = mkdtempSync(join(ap.dir, 'tokens-'))
    chmodSync(wrappers, 0o777)
    const real = join(ap.release.releaseDir, 'bin', 'condor_status')
    writeFileSync(join(wrappers, 'condor_status'), [
      '#!/bin/bash',
      `case " $* " in *' -pool '*) ;; *) exec '${real}' "$@" ;; esac`,
      `if [ "$RUN" = first ]; then for _ in $(seq 600); do [ -e '${wrappers}/second.done' ] && break; sleep 0.1; done; fi`,
      `stat -c '%a %n' '${tokensDir}'/* > '${wrappers}'/"$RUN.tokens" 2>&1`,
      `exec '${real}' "$@"`,
      '',
    ].join('\n'), {mode: 0o755})
    const path = `${wrappers}:${env.PATH}`
    const first = cli(['status', '--json'], {PATH: path, RUN: 'first'})
    await until('the first run to have its token', () => readdirSync(tokensDir).length === 1 || undefined, 30_000)
    const second = await cli(['status', '--json'], {PATH: path, RUN: 'second'})
    writeFileSync(join(wrappers, 'second.done'), '')
    expect(second.code, second.stderr).toBe(0)
    const firstDone = await first
    expect(firstDone.code, firstDone.stderr).toBe(0)

    const seen = (run: string) => readFileSync(join(wrappers, `${run}.tokens`), 'utf8').trim().split('\n')
    const mine = new RegExp(`^600 ${tokensDir}/status\\.${AP_USER}@[^/]+$`)
    // The second saw both runs' tokens; the first, after the second ended, still its own.
    expect(seen('second')).toHaveLength(2)
    for (const line of seen('second')) expect(line).toMatch(mine)
    expect(seen('first')).toHaveLength(1)
    expect(seen('first')[0]).toMatch(mine)
    expect(seen('second')).toContain(seen('first')[0])
    expect(readdirSync(tokensDir)).toEqual([])
    rmSync(wrappers, {recursive: true, force: true})
    expect(existsSync(wrappers)).toBe(false)
  })
})
