// Runs every benchmark (bench/*.bench.js) against the built code in dist/.
// Each exports `name` and `run()` returning lines to print. `npm run bench`.
import {readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
for (const file of readdirSync(here).filter((f) => f.endsWith('.bench.js')).sort()) {
  const bench = await import(pathToFileURL(join(here, file)).href)
  if (only.length && !only.includes(bench.name)) continue
  console.log(`# ${bench.name}`)
  for (const line of await bench.run()) console.log(line)
}
