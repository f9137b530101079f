/** Edit distance (insertions, deletions, substitutions, two letters swapped) between two short strings. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({length: a.length + 1}, (_, i) => Array.from({length: b.length + 1}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/**
 * The candidate nearest to what was typed, when it is near enough to be
 * what was meant (at most a third of its letters differ, or it starts the
 * same way); else undefined.
 */
export function nearest(typed: string, candidates: Iterable<string>): string | undefined {
  let best: {candidate: string; distance: number} | undefined
  for (const candidate of candidates) {
    const distance = editDistance(typed.toLowerCase(), candidate.toLowerCase())
    if (best === undefined || distance < best.distance) best = {candidate, distance}
  }
  if (best === undefined) return undefined
  const close = best.distance <= Math.max(1, Math.floor(Math.max(typed.length, best.candidate.length) / 3))
  const prefix = typed.length >= 3 && best.candidate.toLowerCase().startsWith(typed.toLowerCase())
  return close || prefix ? best.candidate : undefined
}
