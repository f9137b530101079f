import {AnnexCommand} from '../cli/base.js'
import {Args} from '../cli/oclif.js'
import {userError} from '../errors.js'
import type {SchemaName} from '../cli/json/schemas.js'

/** The names `schema` takes: the verbs as typed (two-word ones also joined by '-' or ':'), and `error`. */
const NAMES = ['create', 'add', 'status', 'shutdown', 'systems', 'login', 'logs', 'submit', 'cache', 'admin check', 'admin metaknob', 'error'] as const satisfies readonly SchemaName[]

export default class Schema extends AnnexCommand {
  static override summary = "Print the JSON Schema of a verb's --json output: the stable interface for scripts."
  static override description =
    'Every verb prints one JSON object under --json; this is its schema (JSON Schema, draft 2020-12), the same as docs/json/VERB.schema.json. ' +
    '`error` is the object any verb prints when it fails. Quantities carry their unit in their name (lifetimeSeconds, ramPerNodeMb, sentBytes); ' +
    'moments end in EpochSeconds; every output has `warnings`.'

  static override examples = ['<%= config.bin %> schema create', "<%= config.bin %> schema 'admin check'", '<%= config.bin %> schema error']

  static override args = {
    verb: Args.string({description: `One of: ${NAMES.join(', ')}.`, required: true}),
  }

  // The schema is the output: --json would only wrap it.
  static override enableJsonFlag = false
  static override strict = false

  async run(): Promise<void> {
    const {argv} = await this.parse(Schema)
    const typed = (argv as string[]).join(' ').replace(/[-:]/g, (c, offset: number, all: string) => (all.startsWith('admin') && offset === 5 ? ' ' : c))
    const name = NAMES.find((candidate) => candidate === typed)
    if (name === undefined) throw userError(`No --json output is called '${typed}'; give one of: ${NAMES.join(', ')}.`)
    const {jsonSchema} = await import('../cli/json/schemas.js')
    this.log(JSON.stringify(jsonSchema(name), null, 2))
  }
}
