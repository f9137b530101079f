/** How every template is compiled: strict (a missing value is an error, not an empty string); escaping is the helpers' job. */
export const COMPILE_OPTIONS = {strict: true, noEscape: true} as const
