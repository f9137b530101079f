// Helpers shared by the benchmarks: statistics, timed child processes that are
// watched through /proc (peak resident memory, bytes read), and the table.
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {performance} from 'node:perf_hooks'

/** median, min and max of some numbers (the median of an even count is the lower middle). */
export function stats(values) {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return {n: 0, median: NaN, min: NaN, max: NaN}
  return {n: sorted.length, median: sorted[Math.floor((sorted.length - 1) / 2)], min: sorted[0], max: sorted.at(-1)}
}

function procField(pid, file, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs a command and times it (wall clock, ms; `started` is performance.now()
 * when it was spawned, for events timed from outside it). With `watch`, polls the
 * child's /proc every `pollMs`: the peak of VmHWM (KiB → bytes) and a series
 * of [ms, rchar] samples (bytes the process has read so far, files and pipes).
 */
export function timed(command, args, {env, input, watch = false, pollMs = 25, cwd} = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, {env, cwd, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d.toString()))
    child.stderr.on('data', (d) => (stderr = (stderr + d.toString()).slice(-20_000)))
    let peakRss = 0
    const reads = []
    let poller
    if (watch) {
      poller = setInterval(() => {
        const hwm = procField(child.pid, 'status', 'VmHWM')
        if (hwm !== undefined) peakRss = Math.max(peakRss, hwm * 1024)
        const rchar = procField(child.pid, 'io', 'rchar')
        if (rchar !== undefined) reads.push([performance.now() - started, rchar])
      }, pollMs)
    }
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (poller) clearInterval(poller)
      resolve({ms: performance.now() - started, started, code, signal, stdout, stderr, peakRss, reads})
    })
    if (input !== undefined) child.stdin.end(input)
  })
}

/**
 * From [ms, bytesRead] samples: the rate (bytes/s) at which the process read
 * the bytes between `from` and `to` (the middle of a large file it streams).
 */
export function readRate(reads, from, to) {
  const first = reads.find(([, bytes]) => bytes >= from)
  const last = reads.find(([, bytes]) => bytes >= to)
  if (!first || !last || last[0] <= first[0]) return undefined
  return (last[1] - first[1]) / ((last[0] - first[0]) / 1000)
}

/** Fixed-width table: rows of cells, the first row the header. */
export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)))
  const line = (r) => r.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd()
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)]
}

export const MiB = 1024 * 1024

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms))

export function fmtMs(s) {
  if (!s || s.n === 0) return 'n/a'
  const f = (v) => (v >= 9_995 ? `${(v / 1000).toFixed(1)} s` : v >= 999.5 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`)
  return s.n === 1 ? `${f(s.median)} (1 run)` : `${f(s.median)} [${f(s.min)}–${f(s.max)}]`
}

export function fmtRate(s) {
  if (!s || s.n === 0) return 'n/a'
  const f = (v) => `${(v / MiB).toFixed(1)}`
  return s.n === 1 ? `${f(s.median)} MiB/s (1 run)` : `${f(s.median)} MiB/s [${f(s.min)}–${f(s.max)}]`
}

export function fmtBytes(b) {
  if (b === undefined || Number.isNaN(b)) return 'n/a'
  return b >= MiB ? `${(b / MiB).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`
}
