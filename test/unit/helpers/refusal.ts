import {expect} from 'vitest'

import {AnnexError} from '../../../src/errors.js'

/** The message of the user error `run` throws: one line, exit status 1 (fails the test when nothing is thrown). */
export function refusal(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(AnnexError)
    expect((error as AnnexError).exitCode).toBe(1)
    expect((error as AnnexError).message).not.toContain('\n')
    return (error as AnnexError).message
  }
  throw new Error('expected a refusal')
}
