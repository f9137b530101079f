// What the create benchmark changes on the loopback site's login node for the
// length of a run, all of it put back at the end (`remove()`).
//
// A hook at the top of the site user's ~/.bashrc (sshd's bash reads it for
// every command) sources ~/.hpc-annex-bench/env, which acts only for
// connections from the benchmark's namespace (SSH_CONNECTION): it gives
// hpc-annex a cache of its own ($HPC_ANNEX_CACHE, which the back-end honours),
// so the benchmark neither empties nor fills the cache the tests use; the work
// done is the same. With `anchor`, it also puts the stand-ins HTCondor's own
// tool needs on this site (bench/anchor.js says which and why) in the
// environment of that tool's back-end, and of nothing else.
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import {join} from 'node:path'

/** The directory of the site user's home that holds the hook's files while a benchmark runs. */
const DIR = '.hpc-annex-bench'
/** The flag file of the sha256 A/B (see bySha256sum). */
const SHA256SUM_ONLY = 'sha256sum-only'
const HOOK_MARK = '# hpc-annex bench/login-node.js: removed after the run'

function siteAccount(user) {
  const [, , uid, gid, , home] = spawnSync('getent', ['passwd', user], {encoding: 'utf8'}).stdout.trim().split(':')
  if (!home) throw new Error(`the site's account ${user} does not exist: is the site up?`)
  return {uid: Number(uid), gid: Number(gid), home}
}

/** The stand-in curl: answers HTCondor's annex back-end's download of its HTCondor tarball from the local file. */
const STANDIN_CURL = `#!/bin/bash
# Stand-in for curl on the loopback site (no Internet), from hpc-annex's bench/anchor.js:
# HTCondor's annex back-end (spark.sh) downloads a fixed HTCondor tarball; answer it
# with the release tarball hpc-annex is given. Anything else goes to the real curl.
args=("$@") url='' out=''
while [ $# -gt 0 ]; do
    case $1 in
        -o) out=$2; shift 2 ;;
        -*) shift ;;
        *) url=$1; shift ;;
    esac
done
case $url in
    https://htcss-downloads.chtc.wisc.edu/tarball/*/condor-*.tar.gz)
        exec cp -- "$HOME/${DIR}/condor.tar.gz" "\${out:-\${url##*/}}" ;;
esac
exec /usr/bin/curl "\${args[@]}"
`

/**
 * Puts the hook in place (this machine's files of the site user, written as
 * root). `wsIp`: the benchmark namespace's address, as the site's sshd sees
 * it. `anchor: {tarball}`: also the anchor's stand-ins, serving that tarball.
 * `subSecondLogs`: the pilots' HTCondor logs carry milliseconds.
 */
export function prepareLoginNode({siteUser, wsIp, anchor, subSecondLogs = false, log}) {
  const account = siteAccount(siteUser)
  const dir = join(account.home, DIR)
  rmSync(dir, {recursive: true, force: true})
  mkdirSync(join(dir, 'cache'), {recursive: true})
  const env = [
    '# Sourced by ~/.bashrc while hpc-annex\'s benchmark runs (bench/login-node.js); silent.',
    'case ${SSH_CONNECTION%% *} in',
    `${wsIp})`,
    `    export HPC_ANNEX_CACHE="$HOME/${DIR}/cache"`,
    // The A/B of the login node's sha256: while the flag is there, openssl fails, so hpc-annex falls back to sha256sum.
    `    if [ -e "$HOME/${DIR}/${SHA256SUM_ONLY}" ]; then PATH="$HOME/${DIR}/no-openssl:$PATH"; fi`,
  ]
  // --pilot-logs: both tools' pilots (sbatch passes the environment on) log with milliseconds.
  if (subSecondLogs) env.push('    export _CONDOR_ALL_DEBUG=D_SUB_SECOND')
  mkdirSync(join(dir, 'no-openssl'))
  writeFileSync(join(dir, 'no-openssl', 'openssl'), '#!/bin/sh\n# hpc-annex bench/login-node.js: no openssl, for the sha256sum side of the A/B\nexit 127\n', {mode: 0o755})
  const undo = []
  if (anchor) {
    mkdirSync(join(dir, 'bin'))
    copyFileSync(anchor.tarball, join(dir, 'condor.tar.gz'))
    writeFileSync(join(dir, 'bin', 'curl'), STANDIN_CURL)
    chmodSync(join(dir, 'bin', 'curl'), 0o755)
    env.push(
      '    # HTCondor\'s annex back-end only (bench/anchor.js): the stand-in download; its pilots share one machine.',
      '    case $BASH_EXECUTION_STRING in',
      '        */.hpc-annex/scratch/remote_script.*/spark.sh\\ *)',
      `            PATH="$HOME/${DIR}/bin:$PATH"`,
      "            export _CONDOR_LOCK='$(LOCAL_DIR)/log' _CONDOR_FS_LOCAL_DIR='$(LOCAL_DIR)' ;;",
      '    esac',
    )
    // spark.fragment hard-codes SCRATCH=/scratch/$USER; the tool makes ~/.hpc-annex/scratch for its remote directories.
    const scratch = '/scratch'
    const userScratch = join(scratch, siteUser)
    const annexScratch = join(account.home, '.hpc-annex', 'scratch')
    const made = {scratch: !existsSync(scratch), userScratch: !existsSync(userScratch), annexScratch: !existsSync(annexScratch)}
    mkdirSync(userScratch, {recursive: true})
    chownSync(userScratch, account.uid, account.gid)
    undo.push(() => {
      if (made.userScratch) rmSync(userScratch, {recursive: true, force: true})
      else for (const name of readdirSync(userScratch).filter((n) => n.startsWith('pilot.'))) rmSync(join(userScratch, name), {recursive: true, force: true})
      if (made.scratch) rmdirSync(scratch)
      if (made.annexScratch && existsSync(annexScratch) && readdirSync(annexScratch).length === 0) rmdirSync(annexScratch)
    })
  }
  env.push('    ;;', 'esac', '')
  writeFileSync(join(dir, 'env'), env.join('\n'))
  spawnSync('chown', ['-R', `${account.uid}:${account.gid}`, dir])
  const bashrc = join(account.home, '.bashrc')
  const hook = `if [ -r "$HOME/${DIR}/env" ]; then . "$HOME/${DIR}/env"; fi ${HOOK_MARK}`
  const original = existsSync(bashrc) ? readFileSync(bashrc, 'utf8') : undefined
  if (!original?.includes(HOOK_MARK)) {
    writeFileSync(bashrc, `${hook}\n${original ?? ''}`)
    chownSync(bashrc, account.uid, account.gid)
  }
  log(`login node: a hook in ${bashrc} and ${dir}${anchor ? ' (with the stand-ins for HTCondor\'s annex tool)' : ''}, for connections from ${wsIp} only`)
  return {
    /** hpc-annex's cache on the login node while the benchmark runs. */
    cacheDir: join(dir, 'cache'),
    /**
     * `runs` results of `run()`, made while the login node has no working openssl for hpc-annex,
     * so it hashes with coreutils' sha256sum (the A/B of its hashing); the flag goes however they end.
     */
    async bySha256sum(runs, run) {
      const flag = join(dir, SHA256SUM_ONLY)
      writeFileSync(flag, '')
      try {
        const results = []
        for (let i = 0; i < runs; i++) results.push(await run())
        return results
      } finally {
        rmSync(flag, {force: true})
      }
    },
    remove() {
      if (existsSync(bashrc)) {
        const text = readFileSync(bashrc, 'utf8')
        writeFileSync(bashrc, text.split('\n').filter((l) => !l.endsWith(HOOK_MARK)).join('\n'))
      }
      rmSync(dir, {recursive: true, force: true})
      for (const f of undo) f()
    },
  }
}

/**
 * hpc-annex's own download, answered locally as the anchor's is: a stand-in
 * for HTCondor's download server on this machine's 127.0.0.1 (the login node
 * shares its network), laid out as that server is
 * (<series>/<version>/release/<tarball>, with the sha256sum.txt hpc-annex
 * verifies it by), serving the same release tarball the anchor's stand-in
 * copies. hpc-annex is pointed at it with the Access Point's
 * ANNEX_TARBALL_URL_BASE. Flatters hpc-annex as the anchor's stand-in
 * flatters the anchor: a real login node downloads across the Internet.
 * Returns {base, close}.
 */
export async function startDownloadMirror({tarball, version, platform = 'Debian12'}) {
  const body = readFileSync(tarball)
  const [major, minor] = version.split('.')
  const release = `/${minor === '0' ? `${major}.0` : `${major}.x`}/${version}/release`
  const name = `condor-${version}-x86_64_${platform}-stripped.tar.gz`
  const files = new Map([
    [`${release}/${name}`, body],
    [`${release}/sha256sum.txt`, `${createHash('sha256').update(body).digest('hex')}  ${name}\n`],
  ])
  const server = createServer((request, response) => {
    const file = request.method === 'GET' ? files.get(request.url ?? '') : undefined
    response.writeHead(file === undefined ? 404 : 200).end(file)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    base: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}
