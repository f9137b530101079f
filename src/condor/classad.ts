import {classadString} from '../quote.js'
import {systemError} from '../errors.js'

/** An ad as HTCondor's -json output gives it. */
export type Ad = Record<string, unknown>

/** A value for condor_qedit: a string, an integer, a boolean, or null for `undefined`. */
export type AdValue = string | number | boolean | null

const ATTRIBUTE = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Refuses anything that is not a plain ClassAd attribute name. */
export function checkAttributeName(name: string): string {
  if (!ATTRIBUTE.test(name)) throw new TypeError(`not a ClassAd attribute name: ${JSON.stringify(name)}`)
  return name
}

/** A ClassAd literal for `value`: strings through classadString, integers checked as integers. */
export function classadLiteral(value: AdValue): string {
  if (value === null) return 'undefined'
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer for a ClassAd: ${value}`)
    return String(value)
  }
  return classadString(value)
}

/**
 * Looks an attribute up regardless of case: ClassAd names are
 * case-insensitive and each ad keeps its own spelling.
 */
export function adValue(ad: Ad, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(ad, name)) return ad[name]
  const lower = name.toLowerCase()
  for (const key in ad) if (key.toLowerCase() === lower) return ad[key]
  return undefined
}

/** The attribute as a string, or undefined when absent, null or not a string. */
export function adString(ad: Ad, name: string): string | undefined {
  const value = adValue(ad, name)
  return typeof value === 'string' && exprText(value) === undefined ? value : undefined
}

/** The attribute as a finite number, or undefined. */
export function adNumber(ad: Ad, name: string): number | undefined {
  const value = adValue(ad, name)
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}

const EXPR = /^\/Expr\(([\s\S]*)\)\/$/

/** -json prints an attribute whose value is an expression as "/Expr(<text>)/": its text, else undefined. */
export function exprText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  return EXPR.exec(value)?.[1]
}

/**
 * Parses the -json output of condor_q or condor_status: a JSON array of ads,
 * or nothing at all when no ad matched.
 */
export function parseAds(stdout: string, tool: string): Ad[] {
  const text = stdout.trim()
  if (text === '') return []
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw systemError(`${tool} printed output that is not JSON (${(error as Error).message}); is this HTCondor's ${tool}?`)
  }
  if (!Array.isArray(parsed) || !parsed.every((ad) => typeof ad === 'object' && ad !== null && !Array.isArray(ad))) {
    throw systemError(`${tool} printed JSON that is not a list of ads.`)
  }
  return parsed as Ad[]
}
