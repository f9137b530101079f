// Runs every benchmark (bench/*.bench.js) against the built code in dist/.
// Each exports `name` and `run(options)` returning lines to print, or
// {lines, results}. Prints the lines and writes bench/results.json.
//   npm run bench                       every benchmark, every profile
//   npm run bench -- --quick            fewer runs, a small image, lan only (checks the harness)
//   npm run bench -- create --profile wan
//   npm run bench -- --quick create --trace DIR     each hpc-annex create's HPC_ANNEX_TRACE in DIR
//   npm run bench -- --quick create --cpu-prof DIR  each hpc-annex create's V8 CPU profile in DIR
//   npm run bench -- --quick create --pilot-logs DIR  the pilots' logs and SLURM's lines of each run that waited for pilots
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {cpus, release} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const only = []
const options = {}
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--quick') options.quick = true
  else if (argv[i] === '--profile') options.profiles = [...(options.profiles ?? []), argv[++i]]
  else if (argv[i] === '--trace') options.trace = argv[++i]
  else if (argv[i] === '--cpu-prof') options.cpuProf = argv[++i]
  else if (argv[i] === '--pilot-logs') options.pilotLogs = argv[++i]
  else if (argv[i].startsWith('--')) throw new Error(`unknown option ${argv[i]} (--quick, --profile lan|campus|wan, --trace DIR, --cpu-prof DIR, --pilot-logs DIR)`)
  else only.push(argv[i])
}

const machine = {
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  kernel: release(),
  node: process.version,
  date: new Date().toISOString(),
  quick: options.quick === true,
}
console.log(`machine: ${machine.cpus} CPUs (${machine.cpu}), Linux ${machine.kernel}, Node ${machine.node}, ${machine.date}${machine.quick ? ', --quick' : ''}`)
const results = {machine, benches: {}}
for (const file of readdirSync(here).filter((f) => f.endsWith('.bench.js')).sort()) {
  const bench = await import(pathToFileURL(join(here, file)).href)
  if (only.length && !only.includes(bench.name)) continue
  console.log(`# ${bench.name}`)
  const out = await bench.run(options)
  const lines = Array.isArray(out) ? out : out.lines
  for (const line of lines) console.log(line)
  results.benches[bench.name] = Array.isArray(out) ? {lines} : {lines, results: out.results}
}
// A --quick run checks the harness, and a run of some benchmarks or profiles measures only those:
// only a full run replaces the published results.
const full = !options.quick && only.length === 0 && options.profiles === undefined
const out = join(here, full ? 'results.json' : options.quick ? 'results.quick.json' : 'results.partial.json')
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`)
console.log(`wrote ${out}`)

// A full run also shows its tables in the README's Performance section.
if (full) {
  const readme = join(here, '..', 'README.md')
  const text = readFileSync(readme, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  if (text.includes(start) && text.includes(end)) {
    const cpuCount = `${machine.cpus} CPUs (${machine.cpu})`
    const body = [`Measured ${machine.date.slice(0, 10)} on ${cpuCount}, Linux ${machine.kernel}, Node ${machine.node}.`, '']
    for (const [name, bench] of Object.entries(results.benches)) body.push(`**${name}**`, '', ...bench.lines.map((l) => (l.startsWith('|') || l === '' ? l : `${l}  `)), '')
    const updated = `${text.slice(0, text.indexOf(start) + start.length)}\n${body.join('\n').trimEnd()}\n${text.slice(text.indexOf(end))}`
    writeFileSync(readme, updated)
    console.log(`updated the Performance section of ${readme}`)
  }
}
