/**
 * Maps a TOML document's key paths to line numbers, so a schema error can say
 * file:line. Handles [table], [[array]], and key = value lines (bare, quoted
 * or dotted keys) — enough for machine files; a path it cannot find maps to
 * its nearest enclosing table.
 */
export function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>()
  const arrayCounts = new Map<string, number>()
  let table: string[] = []
  let inMultiline: string | null = null
  text.split('\n').forEach((raw, index) => {
    const lineNo = index + 1
    if (inMultiline !== null) {
      if (raw.includes(inMultiline)) inMultiline = null
      return
    }
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const array = /^\[\[\s*(.+?)\s*\]\]/.exec(line)
    const header = array ? null : /^\[\s*(.+?)\s*\]/.exec(line)
    if (array?.[1]) {
      const path = splitKey(array[1])
      const joined = path.join('.')
      const n = arrayCounts.get(joined) ?? 0
      arrayCounts.set(joined, n + 1)
      table = [...path, String(n)]
      setOnce(lines, joined, lineNo)
      lines.set(table.join('.'), lineNo)
      return
    }
    if (header?.[1]) {
      table = splitKey(header[1])
      setOnce(lines, table.join('.'), lineNo)
      return
    }
    const assignment = /^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=\s*(.*)$/.exec(line)
    if (assignment?.[1]) {
      const path = [...table, ...splitKey(assignment[1])]
      setOnce(lines, path.join('.'), lineNo)
      const value = assignment[2] ?? ''
      for (const quote of ["'''", '"""']) {
        if (value.startsWith(quote) && !value.slice(3).includes(quote)) inMultiline = quote
      }
    }
  })
  return lines
}

function setOnce(map: Map<string, number>, key: string, line: number): void {
  if (!map.has(key)) map.set(key, line)
}

function splitKey(key: string): string[] {
  const parts: string[] = []
  const re = /\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)/gy
  let match: RegExpExecArray | null
  while ((match = re.exec(key)) !== null && match[0] !== '') {
    parts.push(match[1] ?? match[2] ?? match[3] ?? '')
  }
  return parts
}

/** The line of `path`, or of its nearest ancestor that has one. */
export function lineOf(lines: Map<string, number>, path: (string | number)[]): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(path.slice(0, n).join('.'))
    if (line !== undefined) return line
  }
  return undefined
}
