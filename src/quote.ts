/**
 * The only quoting functions of hpc-annex, one per language a value can
 * reach. Templates use them through the render helpers; code that builds a
 * command line, a constraint or an edit calls them directly.
 */

// Control characters (newline included) cannot be carried safely by any of
// the languages below (a config value or a submit line ends at a newline), and
// no legitimate value needs them.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/

function refuseControl(value: string, language: string): void {
  if (CONTROL.test(value)) {
    throw new TypeError(`refusing to quote a value with a control character for ${language}: ${JSON.stringify(value)}`)
  }
}

/** A bash word that stands for exactly `value`: single quotes, with ' as '\''. */
export function shellQuote(value: string | number): string {
  const text = String(value)
  if (text.includes('\u0000')) throw new TypeError('refusing to quote a value with a NUL byte for the shell')
  return `'${text.replace(/'/g, `'\\''`)}'`
}

/** A ClassAd string literal: "...", with \ and " escaped. */
export function classadString(value: string): string {
  refuseControl(value, 'a ClassAd string')
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

/**
 * A value for an HTCondor configuration file or submit description: both
 * expand $(...) macros everywhere (inside quotes too), so every $ becomes
 * $(DOLLAR); a trailing backslash would continue the line, so it is refused.
 */
export function condorValue(value: string | number): string {
  const text = String(value)
  refuseControl(text, 'an HTCondor configuration value')
  if (text.endsWith('\\')) throw new TypeError(`refusing an HTCondor configuration value that ends in a backslash: ${JSON.stringify(text)}`)
  return text.replace(/\$/g, '$(DOLLAR)')
}

/**
 * A word of an `#SBATCH` line. sbatch reads those lines with its own quoting
 * rules, so nothing that would need quoting is accepted: such a value is
 * refused rather than quoted.
 */
export function directiveValue(value: string | number): string {
  const text = String(value)
  if (!/^[A-Za-z0-9_.:,=+@/&|*-]+$/.test(text)) {
    throw new TypeError(`refusing a value for an #SBATCH line that is not a plain word: ${JSON.stringify(text)}`)
  }
  return text
}

/**
 * A value of an `#SBATCH --key=value` line that may hold spaces or quotes:
 * sbatch groups a "..." word and takes a backslash as escaping the next
 * character (inside quotes too), and an unquoted # ends the line. Control
 * characters cannot be carried, and sbatch blanks out the text "packjob"
 * wherever it appears on the line.
 */
export function directiveString(value: string): string {
  refuseControl(value, 'an #SBATCH line')
  if (/packjob/i.test(value)) throw new TypeError(`refusing a value for an #SBATCH line that sbatch would alter ("packjob"): ${JSON.stringify(value)}`)
  return `"${value.replace(/[\\"]/g, '\\$&')}"`
}
