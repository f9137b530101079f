// The anchor of the create benchmark: HTCondor's own `htcondor annex create`
// (bin/htcondor of the same release, PYTHONPATH=<release>/lib/python3), run
// unchanged on the benchmarks' Access Point, over the same link, against the
// same login node and nodes as hpc-annex.
//
// The loopback site is not Spark, and this machine has no Internet, so the
// tool needs stand-ins to run at all; each is listed here and in the README
// beside the figures, with whom it flatters:
//   - queue: `shared@spark --nodes N --cpus 2` (Spark's back-end is plain SLURM
//     and the site has a partition `shared`; Spark's queues share nodes, so the
//     tool insists on --cpus; 2 is a whole node here). hpc-annex asks for the
//     same nodes as `compute@sandbox --nodes N`.
//   - login: `--login-host hpc`, the alias in the account's ~/.ssh/config (the
//     site's port, key and known_hosts); ~/.hpc-annex and ~/.condor made first
//     (a fresh account fails without them); /scratch/<site user> made
//     (spark.fragment hard-codes SCRATCH=/scratch/$USER).
//   - its download: spark.sh fetches a fixed HTCondor tarball with curl; a
//     stand-in `curl` first on the PATH of its back-end answers that URL by
//     copying the same release tarball hpc-annex is given (flatters the
//     anchor: a real download crosses the Internet and takes seconds).
//   - its pilots share one machine: _CONDOR_LOCK and _CONDOR_FS_LOCAL_DIR in
//     its back-end's environment, which sbatch passes on (a remote Access Point
//     and separate nodes would need neither; timing unaffected).
// The login node's stand-ins (the curl, the environment, /scratch) are put in
// place by bench/login-node.js, for that tool's back-end only (a command of the
// form `.../.hpc-annex/scratch/remote_script.*/spark.sh ...` from the
// benchmark's namespace), and removed at the end.
import {mkdirSync, readdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'

import {apEnv, apTool, giveToUser} from './access-point.js'

/** The system and queue the anchor is asked for (see the head of this file). */
export const ANCHOR_TARGET = 'shared@spark'

/** The Access Point user's own directories the tool needs (it fails on a fresh account without them). */
export function prepareAnchorHome(ap, home) {
  for (const d of ['.hpc-annex', '.condor']) {
    mkdirSync(join(home, d), {recursive: true, mode: 0o700})
    giveToUser(ap, join(home, d))
  }
}

/** The command line of `htcondor annex create`, as the Access Point's user, and its environment. */
export function anchorCommand(ap, home, {name, nodes, lifetime, loginHost}) {
  const release = ap.release.releaseDir
  const env = apEnv(ap, {HOME: home, PYTHONPATH: join(release, 'lib', 'python3')})
  const args = [join(release, 'bin', 'htcondor'), 'annex', 'create', name, ANCHOR_TARGET, '--nodes', String(nodes), '--cpus', '2', '--lifetime', String(lifetime), '--login-host', loginHost]
  return {program: '/usr/bin/python3', args, env}
}

/**
 * After a run: closes the ssh master it leaves up for 5 minutes (the next run
 * logs in cold, as hpc-annex does), so that each run pays its own login.
 */
export async function closeAnchorMaster(ap, home) {
  const dir = join(home, '.hpc-annex')
  for (const name of readdirSync(dir).filter((n) => n.startsWith('master-'))) {
    await apTool(ap, 'ssh', ['-o', `ControlPath=${join(dir, name)}`, '-O', 'exit', 'hpc'], {env: apEnv(ap, {HOME: home})})
    rmSync(join(dir, name), {force: true})
  }
}
