import {oneLine, systemError, type AnnexError} from '../errors.js'

/**
 * What both transports say when their connection is not there to use: the
 * same words whichever SSH client the user chose.
 */
export const closedErrors = {
  /** connect() on a transport that already logged in. */
  alreadyConnected: (): AnnexError => systemError('This SSH transport is already connected; make a new one for another login.'),
  /** connect() after close(). */
  closedBeforeLogin: (): AnnexError => systemError('This SSH transport was closed; make a new one to log in again.'),
  /** close() came while the login was under way. */
  closedWhileLoggingIn: (what: string): AnnexError => systemError(`The connection to ${what} was closed by hpc-annex while logging in.`),
  /** A command asked of a transport that was closed. */
  closed: (): AnnexError => systemError('The SSH connection is closed; nothing more can run on it.'),
  /** close() came while a command ran. */
  closedWhileRunning: (): AnnexError => systemError('The SSH connection was closed by hpc-annex before the command finished.'),
  /** The connection went away by itself. */
  lost: (host: string, reason: string): AnnexError => systemError(`The connection to ${host} was lost (${oneLine(reason)}); nothing more can run on it. Run the command again.`),
}
