// Writes docs/json/NAME.schema.json, the JSON Schema of each verb's --json
// output, from the zod schemas in src/cli/json/schemas.ts (as built in
// dist/). `npm run schemas` after changing one; test/unit/json-contract.test.ts
// fails while a file here differs from what the schemas say.
import {mkdirSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const {PUBLISHED_SCHEMAS, jsonSchema, schemaFileName} = await import(join(root, 'dist', 'cli', 'json', 'schemas.js'))
const dir = join(root, 'docs', 'json')
mkdirSync(dir, {recursive: true})
for (const name of PUBLISHED_SCHEMAS) writeFileSync(join(dir, schemaFileName(name)), `${JSON.stringify(jsonSchema(name), null, 2)}\n`)
console.log(`docs/json: ${PUBLISHED_SCHEMAS.length} schemas`)
