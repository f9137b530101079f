/**
 * A request file (`hpc-annex apply FILE`, TOML or JSON): an annex name and
 * one or more requests, each QUEUE@SYSTEM with the flags of create and add
 * under their file names. Parsed and checked here (pure, no I/O): every
 * error is one line that starts with FILE:LINE where the line is known.
 */
import TOML from '../vendor/toml.js'
import {z} from '../vendor/zod.js'

import {AnnexError, userError} from '../errors.js'
import {keyLines, lineOf} from './locate.js'
import {checkAnnexName, type RequestInput} from './request.js'

const positive = z.number().int().positive()

const requestSchema = z
  .object({
    /** QUEUE@SYSTEM */
    target: z.string().min(1),
    nodes: positive.optional(),
    lifetime: positive.optional(),
    project: z.string().optional(),
    cpus: positive.optional(),
    mem_mb: positive.optional(),
    gpus: z.union([positive, z.string()]).optional(),
    gpu_type: z.string().optional(),
    idle_time: positive.optional(),
    login_name: z.string().optional(),
    login_host: z.string().optional(),
    batch_options: z.union([z.array(z.string()), z.record(z.string(), z.union([z.string(), z.literal(true)]))]).optional(),
  })
  .strict()

export const requestFileSchema = z
  .object({
    /** The annex name. */
    name: z.string(),
    /** Annex-wide: users whose jobs may run on it, and the collector its pilots report to. */
    owners: z.array(z.string()).nonempty().optional(),
    pool: z.string().optional(),
    requests: z.array(requestSchema).nonempty(),
  })
  .strict()

export type RequestFileData = z.infer<typeof requestFileSchema>

/** One request of the file, as the catalog takes it, and where it is. */
export interface FileRequest {
  index: number
  /** Its line in the file (the [[requests]] header, or the object's opening brace). */
  line?: number
  input: RequestInput
}

export interface RequestFile {
  file: string
  name: string
  requests: FileRequest[]
}

/** Maps a JSON document's key paths ('requests.0.nodes') to the line each starts on. */
export function jsonKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>()
  let i = 0
  let line = 1
  const skip = () => {
    while (i < text.length && /\s/.test(text[i]!)) {
      if (text[i] === '\n') line++
      i++
    }
  }
  const string = () => {
    const start = ++i
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    const raw = text.slice(start, i++)
    try {
      return JSON.parse(`"${raw}"`) as string
    } catch {
      return raw
    }
  }
  const value = (path: string[]): void => {
    skip()
    lines.set(path.join('.'), line)
    const c = text[i]
    if (c === '{') {
      i++
      for (;;) {
        skip()
        if (text[i] === '}' || i >= text.length) return void i++
        if (text[i] === ',') {
          i++
          continue
        }
        const keyLine = line
        const key = string()
        skip()
        i++ // ':'
        value([...path, key])
        lines.set([...path, key].join('.'), keyLine)
      }
    }
    if (c === '[') {
      i++
      let n = 0
      for (;;) {
        skip()
        if (text[i] === ']' || i >= text.length) return void i++
        if (text[i] === ',') {
          i++
          continue
        }
        value([...path, String(n++)])
      }
    }
    if (c === '"') return void string()
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++
  }
  value([])
  return lines
}

function parseText(file: string, text: string): {data: unknown; lines: Map<string, number>} {
  if (/\.json$/i.test(file)) {
    try {
      return {data: JSON.parse(text), lines: jsonKeyLines(text)}
    } catch (error) {
      const message = (error as Error).message
      const position = /at position (\d+)/.exec(message)
      const where = position ? `${file}:${text.slice(0, Number(position[1])).split('\n').length}` : file
      throw userError(`${where}: invalid JSON: ${message.replace(/\s*in JSON at position \d+.*$/, '')}; fix the file.`)
    }
  }
  try {
    return {data: TOML.parse(text), lines: keyLines(text)}
  } catch (error) {
    const err = error as {line?: number; message?: string}
    const first = (String(err.message ?? error).split('\n')[0] ?? '').replace(/\s*at row \d+, col \d+, pos \d+:?\s*$/, '').trim()
    throw userError(`${typeof err.line === 'number' ? `${file}:${err.line + 1}` : file}: invalid TOML: ${first}; fix the file (TOML, or JSON when it ends in .json).`)
  }
}

/** The file's data checked against the schema; the first problem names its file:line and key. */
export function parseRequestFile(file: string, text: string): RequestFile {
  const {data, lines} = parseText(file, text)
  const result = requestFileSchema.safeParse(data)
  if (!result.success) {
    const issue = result.error.issues[0]!
    let path = issue.path
    let message = issue.message
    if (issue.code === 'unrecognized_keys') {
      path = [...issue.path, issue.keys[0] ?? '']
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')} (keys: name, owners, pool, requests; in a request: ${Object.keys(requestSchema.shape).join(', ')})`
    } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
      message = 'is required'
    }
    const line = lineOf(lines, path)
    throw userError(`${line === undefined ? file : `${file}:${line}`}: ${path.length > 0 ? `${path.join('.')}: ` : ''}${message}; fix the file.`)
  }
  const data_ = result.data
  try {
    checkAnnexName(data_.name)
  } catch (error) {
    const line = lines.get('name')
    throw userError(`${line === undefined ? file : `${file}:${line}`}: name: ${(error as Error).message}`)
  }
  return {
    file,
    name: data_.name,
    requests: data_.requests.map((r, index) => {
      const text = (value: number | string | undefined) => (value === undefined ? undefined : String(value))
      const fields: Partial<Record<keyof RequestInput, string | undefined>> = {
        nodes: text(r.nodes),
        lifetime: text(r.lifetime),
        project: r.project,
        cpus: text(r.cpus),
        memMb: text(r.mem_mb),
        gpus: text(r.gpus),
        gpuType: r.gpu_type,
        idleTime: text(r.idle_time),
        loginName: r.login_name,
        loginHost: r.login_host,
        pool: data_.pool,
        owners: data_.owners?.join(','),
      }
      const input: RequestInput = {name: data_.name, target: r.target}
      for (const [key, value] of Object.entries(fields)) if (value !== undefined) (input as unknown as Record<string, string>)[key] = value
      const options = r.batch_options
      if (options !== undefined) {
        input.batchOptions = Array.isArray(options) ? options : Object.entries(options).map(([key, value]) => (value === true ? key : `${key}=${value}`))
      }
      const line = lineOf(lines, ['requests', index])
      return {index, ...(line === undefined ? {} : {line}), input}
    }),
  }
}

/** A request's own error, said at its place in the file: the flag names become the file's keys. */
export function atRequest(file: string, request: FileRequest, error: unknown): unknown {
  if (!(error instanceof AnnexError)) return error
  const keys: Record<string, string> = {
    '--mem_mb': 'mem_mb',
    '--gpu-type': 'gpu_type',
    '--idle-time': 'idle_time',
    '--login-name': 'login_name',
    '--login-host': 'login_host',
    '--batch-option': 'batch_options',
  }
  let message = error.message.replace(/--(mem_mb|gpu-type|idle-time|login-name|login-host|batch-option)\b/g, (flag) => keys[flag] ?? flag)
  message = message.replace(/--(nodes|lifetime|project|cpus|gpus|owners|pool)\b/g, '$1')
  message = message.replace(/QUEUE@SYSTEM/g, 'target (QUEUE@SYSTEM)')
  const where = request.line === undefined ? file : `${file}:${request.line}`
  return new AnnexError(`${where}: requests.${request.index}: ${message}`, {exit: error.exitCode, cause: error, ...(error.hint ? {hint: error.hint} : {})})
}
