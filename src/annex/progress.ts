import {ListrLogger, ListrLogLevels, ProcessOutput, type ListrBaseClassOptions, type ListrRendererValue} from '../vendor/listr2.js'

/** How the task list is shown: live on a terminal, plain lines in logs, nothing under --json. */
export type ProgressOutput = 'tty' | 'plain' | 'silent'

/**
 * Plain lines, all on stderr (stdout carries the result): a step as it
 * starts and ends, and a failed step by its title alone, since the error
 * that follows names the step and says why.
 */
class PlainLogger extends ListrLogger<ListrLogLevels> {
  constructor() {
    super({useIcons: true, toStderr: Object.values(ListrLogLevels), processOutput: new ProcessOutput(process.stderr, process.stderr)})
  }

  override log(level: ListrLogLevels, message: string, options?: Parameters<ListrLogger<ListrLogLevels>['log']>[2]): void {
    super.log(level, message, level === ListrLogLevels.FAILED ? undefined : options)
  }
}

/** The task list's options for an output. */
export function listrOptions(
  output: ProgressOutput,
): Pick<ListrBaseClassOptions<unknown, ListrRendererValue, ListrRendererValue>, 'renderer' | 'rendererOptions' | 'fallbackRenderer' | 'fallbackRendererOptions'> {
  if (output === 'silent') return {renderer: 'silent'}
  const plain = {logger: new PlainLogger()}
  if (output === 'plain') return {renderer: 'simple', rendererOptions: plain}
  return {renderer: 'default', rendererOptions: {collapseErrors: true}, fallbackRenderer: 'simple', fallbackRendererOptions: plain}
}
