import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {hostname} from 'node:os'

/**
 * Which run of hpc-annex submitted a state job: the value of its
 * hpc_annex_creator, "<host> <pid> <start> <run>". <start> is when that
 * process started, "<boot id>:<clock ticks after boot>" (from /proc), so that
 * a later process given the same pid is not taken for it ("-" where /proc
 * cannot tell); <run> is random, so the value names one run alone, and a run
 * that must find the state job it submitted (a condor_submit cut short) finds
 * only its own.
 */
export interface Creator {
  host: string
  pid: number
  start: string
  run: string
}

const STAT_START_FIELD = 22

/** When process `pid` started, "<boot id>:<ticks>"; undefined when /proc cannot tell (no such process, not Linux). */
function startOf(pid: number | 'self'): {start?: string; zombie?: boolean} {
  let stat: string
  let boot: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return {}
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it start at 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = fields[STAT_START_FIELD - 3]
  if (ticks === undefined || !/^\d+$/.test(ticks) || !/^[0-9a-f-]+$/.test(boot)) return {}
  return {start: `${boot}:${ticks}`, zombie: fields[0] === 'Z'}
}

let self: string | undefined

/** A new run of this process (each create or add is one), as its state job records it. */
export function thisRun(): string {
  self ??= [hostname(), String(process.pid), startOf('self').start ?? '-'].join(' ')
  return `${self} ${randomBytes(6).toString('hex')}`
}

export function parseCreator(value: string | undefined): Creator | undefined {
  const m = /^(\S+) (\d+) (\S+) ([0-9a-f]+)$/.exec(value ?? '')
  return m ? {host: m[1]!, pid: Number(m[2]), start: m[3]!, run: m[4]!} : undefined
}

/**
 * Whether the run that wrote `value` has ended: true only when it ran on
 * this machine and /proc shows its process gone, ended, or replaced by a
 * later one of the same pid; false when it still runs; undefined when this
 * machine cannot tell (another host, no /proc, a value not of this form).
 */
export function creatorGone(value: string | undefined): boolean | undefined {
  const creator = parseCreator(value)
  if (creator === undefined || creator.host !== hostname() || creator.start === '-') return undefined
  if (startOf('self').start === undefined) return undefined
  if (creator.pid === process.pid) return creator.start !== startOf('self').start
  const {start, zombie} = startOf(creator.pid)
  return start === undefined || zombie === true || start !== creator.start
}
