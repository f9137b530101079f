// Writes dist/catalog/built-machines.json after the build: the built-in
// machine files (backends/*.toml) as parsed and checked, so that a start does
// not parse them again (src/catalog/load.ts, builtMachines). The build fails
// on a machine file with a problem.
import {readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {BUILT_MACHINES, formatProblem, parseMachineFile} from '../dist/catalog/load.js'

const backends = join(dirname(fileURLToPath(import.meta.url)), '..', 'backends')
// Parse every file afresh, not from the last build's record.
rmSync(BUILT_MACHINES, {force: true})
const records = []
for (const entry of readdirSync(backends).filter((e) => e.endsWith('.toml')).sort()) {
  const file = join(backends, entry)
  const text = readFileSync(file, 'utf8')
  const {machine, problems} = parseMachineFile(file, text)
  if (!machine) throw new Error(problems.map(formatProblem).join('\n'))
  const {key: _key, source: _source, ...parsed} = machine
  records.push({text, machine: parsed})
}
writeFileSync(BUILT_MACHINES, JSON.stringify(records))
console.log(`dist/catalog/built-machines.json: ${records.length} machine files`)
