import type {Hook} from '@oclif/core'

import {nearest} from './suggest.js'

/** The plugin's refusal ("Run ... help"), once it was told no or could not ask. */
class Declined extends Error {}

/**
 * A verb that does not exist (`hpc-annex creat x wholenode@anvil`): oclif
 * hands over everything up to the first flag as one id; the verb is the
 * topics it names, then one word. On a terminal @oclif/plugin-not-found
 * asks "Did you mean create?" and runs it with the rest of the line;
 * otherwise, or when told no, one line names the verb and the nearest one,
 * and the exit status is 1 (the user's error).
 */
const hook: Hook<'command_not_found'> = async function (opts) {
  const {config} = opts
  const parts = opts.id.split(':')
  let words = 1
  while (words < parts.length && config.findTopic(parts.slice(0, words).join(':'))) words++
  const id = parts.slice(0, words).join(':')
  const rest = [...parts.slice(words), ...(opts.argv ?? [])]
  const verbs = config.commands.filter((command) => !command.hidden).map((command) => command.id)
  const guess = nearest(id, verbs)
  const typed = id.replaceAll(':', ' ')
  const notVerb = `${config.bin} has no verb '${typed}'`

  if (guess !== undefined && process.stdin.isTTY && process.stderr.isTTY && !rest.includes('--json')) {
    const {default: ask} = await import('@oclif/plugin-not-found')
    const context = {
      ...this,
      config,
      warn: () => process.stderr.write(`${notVerb}.\n`),
      error: () => {
        throw new Declined()
      },
    }
    try {
      return await ask.call(context as never, {...opts, id, argv: rest})
    } catch (error) {
      if (!(error instanceof Declined)) throw error
    }
  }

  const message = `${notVerb}${guess === undefined ? '' : `; did you mean '${guess.replaceAll(':', ' ')}'?`} (${config.bin} --help lists them)`
  if (rest.includes('--json')) process.stdout.write(`${JSON.stringify({error: {message, exitCode: 1}, warnings: []}, null, 2)}\n`)
  else process.stderr.write(`Error: ${message}\n`)
  return this.exit(1)
}

export default hook
