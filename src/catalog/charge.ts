import {z} from '../vendor/zod.js'

import {userError} from '../errors.js'

/**
 * How a queue charges the allocation, as its site publishes it: data in the
 * machine file (`[queues.NAME.charge]`), or "unknown" where the site's policy
 * does not say. Pure: the worst case of a request and the charge so far of a
 * running pilot are computed here, with no I/O.
 */
const positive = z.number().positive()

export const chargeSchema = z.union([
  z.literal('unknown'),
  /** Unknown, with what the site's pages do say (e.g. a factor they do not give). */
  z.object({unknown: z.literal(true), note: z.string().min(1), policy: z.string().url().optional()}).strict(),
  z
    .object({
      /** The site's name for its unit, singular: "SU", "node-hour". */
      unit: z.string().min(1).regex(/^[^\r\n]*$/, 'one line'),
      /** What one unit-hour counts: a core, a GPU or a whole node. */
      per: z.enum(['core', 'gpu', 'node']),
      /** Every node is charged whole (all its cores or GPUs), whatever the request asked for. */
      whole_node: z.boolean().default(false),
      /** A share of a node counts by its cores too: this many cores are one unit (GPU queues). */
      cores_per_unit: positive.optional(),
      /** A share of a node counts by its memory too: this many MB are one unit; the larger share is charged. */
      mem_mb_per_unit: positive.optional(),
      /** A multiplier: the queue's (QOS) or the node type's charge factor. */
      factor: positive.default(1),
      /** The site's published charging policy the figures come from. */
      policy: z.string().url(),
    })
    .strict(),
])

export type ChargeDefinition = z.infer<typeof chargeSchema>
type KnownDefinition = Extract<ChargeDefinition, {per: unknown}>

/** What a request asks of one node, as the charge needs it. */
export interface ChargeRequest {
  nodes: number
  /** Seconds. */
  lifetime: number
  cpus?: number
  memMb?: number
  /** GPUs per node. */
  gpus?: number
  coresPerNode?: number
  gpusPerNode?: number
  /** From --project; undefined: the user's default account. */
  account?: string
  /** A GPU type's (node shape's) factor over the queue's. */
  shapeFactor?: number
}

export interface KnownCharge {
  known: true
  unit: string
  per: 'core' | 'gpu' | 'node'
  /** Cores, GPUs or 1 (a node) charged per node. */
  unitsPerNode: number
  /** How unitsPerNode was counted: 'whole-node', 'asked', 'memory' or 'cores' (the share that was larger). */
  basis: 'whole-node' | 'asked' | 'memory' | 'cores'
  nodes: number
  hours: number
  factor: number
  /** The most the request can charge: nodes × unitsPerNode × hours × factor. */
  amount: number
  account?: string
  policy: string
}

export interface UnknownCharge {
  known: false
  reason: string
}

export type Charge = KnownCharge | UnknownCharge

/** Figures are shown (and compared) to 2 decimals, rounded up: a worst case is never understated. */
export function roundUp(value: number): number {
  // + 0: never -0.
  return Math.ceil(value * 100 - 1e-9) / 100 + 0
}

/** Units charged per node: the larger of what was asked and the shares that count too. */
function unitsPerNode(definition: KnownDefinition, r: ChargeRequest): {units: number; basis: KnownCharge['basis']} | undefined {
  if (definition.per === 'node') return {units: 1, basis: 'whole-node'}
  const whole = definition.per === 'core' ? r.coresPerNode : r.gpusPerNode
  if (definition.whole_node) return whole === undefined ? undefined : {units: whole, basis: 'whole-node'}
  const asked = definition.per === 'core' ? r.cpus : r.gpus
  const shares: {units: number; basis: KnownCharge['basis']}[] = []
  if (asked !== undefined) shares.push({units: asked, basis: 'asked'})
  if (definition.mem_mb_per_unit !== undefined && r.memMb !== undefined) shares.push({units: r.memMb / definition.mem_mb_per_unit, basis: 'memory'})
  if (definition.per === 'gpu' && definition.cores_per_unit !== undefined && r.cpus !== undefined) shares.push({units: r.cpus / definition.cores_per_unit, basis: 'cores'})
  if (shares.length === 0) return undefined
  return shares.reduce((a, b) => (b.units > a.units ? b : a))
}

/** The most a request can charge on a queue: every node for its whole lifetime. */
export function maxCharge(definition: ChargeDefinition | undefined, request: ChargeRequest): Charge {
  if (definition === undefined || definition === 'unknown' || 'unknown' in definition) {
    const note = typeof definition === 'object' ? `: ${definition.note}` : ''
    return {known: false, reason: `the machine file does not say how this queue charges${note}`}
  }
  const perNode = unitsPerNode(definition, request)
  if (perNode === undefined) return {known: false, reason: `the request gives no ${definition.per === 'core' ? 'CPU' : 'GPU'} count to charge for`}
  const hours = request.lifetime / 3600
  const factor = definition.factor * (request.shapeFactor ?? 1)
  return {
    known: true,
    unit: definition.unit,
    per: definition.per,
    unitsPerNode: roundUp(perNode.units),
    basis: perNode.basis,
    nodes: request.nodes,
    hours,
    factor,
    amount: roundUp(request.nodes * perNode.units * hours * factor),
    ...(request.account === undefined ? {} : {account: request.account}),
    policy: definition.policy,
  }
}

/** What has been charged so far and what can still be, for pilots that started at `startedAt` (epoch seconds). */
export function chargeSoFar(charge: KnownCharge, startedAt: number | undefined, lifetime: number, now: number): {charged: number; remaining: number} {
  const perSecond = charge.amount / Math.max(1, charge.hours * 3600)
  if (startedAt === undefined) return {charged: 0, remaining: charge.amount}
  const elapsed = Math.min(lifetime, Math.max(0, now - startedAt))
  return {charged: roundUp(perSecond * elapsed), remaining: Math.max(0, roundUp(perSecond * (lifetime - elapsed)))}
}

function figure(value: number): string {
  return String(roundUp(value))
}

/** "512 SUs": the amount in the site's unit. */
export function amountText(amount: number, unit: string): string {
  return `${figure(amount)} ${unit}${amount === 1 || unit.endsWith('s') ? '' : 's'}`
}

function perText(charge: KnownCharge): string {
  const n = charge.unitsPerNode
  const noun = charge.per === 'core' ? (n === 1 ? 'core' : 'cores') : charge.per === 'gpu' ? (n === 1 ? 'GPU' : 'GPUs') : ''
  const by = charge.basis === 'memory' ? ' by memory' : charge.basis === 'cores' ? ' by cores' : ''
  return `${figure(n)} ${noun}${by}`
}

/** "(2 nodes × 128 cores × 2 h)", with the factor when there is one. */
export function formulaText(charge: KnownCharge): string {
  const parts = [`${charge.nodes} node${charge.nodes === 1 ? '' : 's'}`]
  if (charge.per !== 'node') parts.push(perText(charge))
  parts.push(`${figure(charge.hours)} h`)
  if (charge.factor !== 1) parts.push(`factor ${charge.factor}`)
  return `(${parts.join(' × ')})`
}

/** The line create, add and --dry-run print. */
export function describeCharge(charge: Charge): string {
  if (!charge.known) return `The most this request can charge is unknown: ${charge.reason}.`
  const account = charge.account === undefined ? 'your default account' : `account ${charge.account}`
  return `This request charges at most ${amountText(charge.amount, charge.unit)} ${formulaText(charge)} to ${account} (rates: ${charge.policy}).`
}

/** --max-charge: refused before any login when the worst case is over the limit, or cannot be known. */
export function checkMaxCharge(charge: Charge, max: number | undefined): void {
  if (max === undefined) return
  if (!charge.known) throw userError(`--max-charge ${max} cannot be checked: ${charge.reason}; drop --max-charge or choose a queue whose charge is known.`)
  if (charge.amount > max) {
    throw userError(`This request can charge up to ${amountText(charge.amount, charge.unit)} ${formulaText(charge)}, more than --max-charge ${max}; lower --nodes or --lifetime, or raise --max-charge.`)
  }
}

/** --max-charge's value: a positive number. */
export function parseMaxCharge(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) <= 0) throw userError(`--max-charge must be a positive number (in the system's unit, e.g. SUs), not '${value}'; change --max-charge.`)
  return Number(text)
}
