/** Plain text columns: one header row, left-aligned text, right-aligned numbers. */
export function formatTable(header: string[], rows: (string | number | undefined)[][]): string {
  const cells = rows.map((row) => header.map((_, i) => (row[i] === undefined ? '-' : String(row[i]))))
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((row) => row[i]!.length)))
  const numeric = header.map((_, i) => rows.every((row) => row[i] === undefined || typeof row[i] === 'number'))
  const line = (row: string[]) =>
    row.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(header), ...cells.map(line)].join('\n')
}
