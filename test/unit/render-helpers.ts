import {execFileSync, spawnSync} from 'node:child_process'
import {chmodSync, mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {loadCatalog, resolveDownload, validateRequest, type Plan, type RequestInput} from '../../src/catalog/index.js'
import {projectPath} from '../../src/paths.js'

/** A Plan made the way `create` makes it, from flags, once the Access Point has said its version (condor_version): `apVersion`. */
export function planFor(input: Omit<RequestInput, 'name'> & {name?: string}, apVersion = '25.0.4'): Plan {
  const plan = validateRequest(loadCatalog([projectPath('backends')]), {name: 'demo', ...input}, {defaultOwner: 'alice'})
  return {...plan, htcondor: resolveDownload(plan.htcondor, {apVersion})}
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `hpc-annex-${label}-`))
}

function script(path: string, body: string): void {
  writeFileSync(path, `#!/bin/bash\n${body}\n`)
  chmodSync(path, 0o755)
}

/**
 * Stand-ins for the login node's batch tools, on PATH in a temp dir. Each
 * records its arguments (one per line, then a blank line) in <stubs>/<tool>.calls.
 * Behaviour is steered by files: squeue.out / condor_q.out (printed), sbatch.fail, sbatch.test-only* (a hung one notes its pid in sbatch.test-only.pid),
 * download (what curl "downloads"), curl.hang.
 */
export function makeStubs(): string {
  const dir = tempDir('stubs')
  // Under a lock: bash writes its printf's output line by line, so the records of concurrent
  // calls (the fan-out's) would interleave.
  const record = (tool: string) => `{ flock 9 && printf '%s\\n' "$PWD" "$@" '' >&9; } 9>> '${dir}/${tool}.calls'`
  script(join(dir, 'squeue'), `${record('squeue')}\n[ -f '${dir}/squeue.out' ] && cat '${dir}/squeue.out'\nexit 0`)
  // --test-only answers on stderr as SLURM does (sbatch.test-only holds the start time, else now);
  // sbatch.test-only-fail refuses, sbatch.test-only-hang never answers.
  script(
    join(dir, 'sbatch'),
    [
      record('sbatch'),
      `if [ "$1" = --test-only ]; then`,
      // Without a script argument, the script comes on stdin (as the back-end sends it).
      `  if [ $# -eq 1 ] && ! grep -q '^#SBATCH'; then echo 'sbatch: error: Batch script is empty!' >&2; exit 1; fi`,
      `  [ -f '${dir}/sbatch.test-only-hang' ] && { echo $$ > '${dir}/sbatch.test-only.pid'; sleep 60; exit 1; }`,
      `  [ -f '${dir}/sbatch.test-only-fail' ] && { echo 'sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified' >&2; exit 1; }`,
      `  start=$(cat '${dir}/sbatch.test-only' 2>/dev/null || date +%Y-%m-%dT%H:%M:%S)`,
      `  echo "sbatch: Job 4243 to start at $start using 256 processors on nodes node[1-2] in partition wholenode" >&2`,
      `  exit 0`,
      `fi`,
      `[ -f '${dir}/sbatch.fail' ] && { echo 'sbatch: error: invalid account' >&2; exit 1; }`,
      `echo '4242;cluster'`,
    ].join('\n'),
  )
  script(join(dir, 'condor_q'), `${record('condor_q')}\n[ -f '${dir}/condor_q.out' ] && cat '${dir}/condor_q.out'\nexit 0`)
  script(join(dir, 'condor_submit'), `${record('condor_submit')}\necho 'Submitting job(s).'\necho '1 job(s) submitted to cluster 77.'`)
  script(
    join(dir, 'curl'),
    // Serves served/<the URL's file name>, else (a tarball) <stubs>/download; anything else is
    // HTTP 404. Into -o FILE (printing -w's %{http_code}), -I (the status only), or to stdout
    // (-f: 404 fails); curl.hang: a download that stalls after its first bytes, until a signal ends it.
    [
      record('curl'),
      `out=/dev/stdout write='' head=0 url=''`,
      `while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift ;; -w) write=$2; shift ;; -I) head=1 ;; --proto|--retry) shift ;; -*) ;; *) url=$1 ;; esac; shift; done`,
      `name=\${url##*/} src=''`,
      `if [ -f '${dir}/served/'"$name" ]; then src='${dir}/served/'"$name"; elif [[ $name == *.tar.gz ]] && [ -f '${dir}/download' ]; then src='${dir}/download'; fi`,
      `code=200; [ -n "$src" ] || code=404`,
      `if [ "$head" = 1 ]; then [ -n "$write" ] && printf '%s' "$code"; exit 0; fi`,
      `if [ -f '${dir}/curl.hang' ] && [ -n "$src" ]; then head -c 100 "$src" > "$out"; sleep 60; exit 28; fi`,
      `if [ "$out" != /dev/stdout ]; then if [ -n "$src" ]; then cp "$src" "$out"; else echo 'Not Found' > "$out"; fi; [ -n "$write" ] && printf '%s' "$code"; exit 0; fi`,
      `[ -n "$src" ] || { echo 'curl: (22) The requested URL returned error: 404' >&2; exit 22; }`,
      `cat "$src"`,
    ].join('\n'),
  )
  // srun: drop its options, run the command once per task (-n N) with a distinct node name.
  script(
    join(dir, 'srun'),
    `${record('srun')}\nn=1\nwhile [ $# -gt 0 ]; do case $1 in -n) n=$2; shift 2;; -*) shift;; *) break;; esac; done\nfor i in $(seq 1 "$n"); do SLURMD_NODENAME=node$i "$@" & done\nwait`,
  )
  script(join(dir, 'scontrol'), `${record('scontrol')}\nprintf 'node1\\nnode2\\n'`)
  // ssh: the last argument is the remote command; run it as a login shell would. Like ssh -n, it
  // never reads the caller's stdin (the launcher's loop reads its node list from there).
  script(join(dir, 'ssh'), `${record('ssh')}\nfor last; do :; done\nbash -c "$last" </dev/null`)
  return dir
}

/**
 * A stand-in HTCondor release tarball: one top directory with
 * sbin/condor_master, which records its environment and configuration file
 * and exits.
 */
export function fakeCondorTarball(dir: string, top = 'condor-25.0.4-x86_64_AlmaLinux9-stripped'): string {
  const root = join(dir, 'release-src')
  mkdirSync(join(root, top, 'sbin'), {recursive: true})
  mkdirSync(join(root, top, 'bin'), {recursive: true})
  script(
    join(root, top, 'sbin', 'condor_master'),
    [
      'out="$_CONDOR_LOCAL_DIR/log/master-ran"',
      '{ echo "args=$*"; env | grep -E "^(_CONDOR_|CONDOR_CONFIG=|CUDA_VISIBLE_DEVICES=)" | sort; stat -c "mode=%a %n" "$_CONDOR_LOCAL_DIR/tokens.d/annex" "$_CONDOR_LOCAL_DIR/passwords.d/POOL"; } > "$out"',
      'exit 0',
    ].join('\n'),
  )
  const tarball = join(dir, 'condor.tar.gz')
  execFileSync('tar', ['-czf', tarball, '-C', root, top])
  return tarball
}

export function sha256(path: string): string {
  return execFileSync('sha256sum', [path], {encoding: 'utf8'}).split(' ')[0]!
}

export interface RunResult {
  status: number | null
  stdout: string
  stderr: string
}

export function runBash(scriptPath: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): RunResult {
  const result = spawnSync('bash', [scriptPath, ...args], {encoding: 'utf8', env, ...(cwd ? {cwd} : {})})
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

/** Control lines `=-.-= NAME VALUE` of a back-end's output. */
export function controlLines(stdout: string): Record<string, string> {
  const found: Record<string, string> = {}
  for (const line of stdout.split(/[\r\n]/)) {
    const match = /^=-\.-= ([A-Z_]+) (.*)$/.exec(line)
    if (match) found[match[1]!] = match[2]!
  }
  return found
}
