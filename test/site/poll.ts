/** Bounded waits for the tests and their harness: never a fixed sleep. */
import {readFileSync} from 'node:fs'

/** Polls `get` every 250 ms until it returns a value other than undefined or false; fails after `ms`. */
export async function until<T>(what: string, get: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = await get()
    if (value !== undefined && value !== false) return value
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** A process that has ended: no longer in /proc, or a zombie its parent has not reaped yet. */
export function processGone(pid: number | string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}
