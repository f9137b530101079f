/** The words and tables of `hpc-annex status`, drawn from what src/annex/status.ts gathers. */
import type {AnnexStatus, Established, StatusReport} from '../annex/status.js'
import {amountText} from '../catalog/charge.js'
import {formatTable} from './table.js'

function hours(seconds: number): string {
  return (seconds / 3600).toFixed(2)
}

/** What was done first on the user's behalf, a line each, before the report. */
function notes(report: StatusReport): string {
  return (report.notices ?? []).map((notice) => `note: ${notice}\n`).join('')
}

/** One line per annex, for `hpc-annex status`. */
export function formatStatusTable(report: StatusReport): string {
  return notes(report) + statusTable(report)
}

function statusTable(report: StatusReport): string {
  if (report.annexes.length === 0) return 'Found no established or requested annexes.'
  const table = formatTable(
    ['ANNEX', 'STATE', 'NODES JOINED/ASKED', 'CPUS BUSY/TOTAL', 'JOBS RUNNING/TOTAL', 'REQUESTS PENDING/ACTIVE/RETIRED', 'AGE H', 'RETIRES IN H'],
    report.annexes.map((a) => [
      a.name,
      a.established ? 'established' : 'not established',
      `${a.nodes.joined}/${a.nodes.requested}`,
      `${a.cpus.busy}/${a.cpus.total}`,
      `${a.jobs.running}/${a.jobs.total}`,
      `${a.requests.pending}/${a.requests.active}/${a.requests.retired}`,
      a.oldest ? hours(a.oldest.ageSeconds) : undefined,
      a.oldest?.retiresInSeconds === undefined ? undefined : hours(a.oldest.retiresInSeconds),
    ]),
  )
  const charges = report.annexes.map(chargeSentence).filter((line): line is string => line !== undefined)
  const hints = report.annexes.flatMap((a) => a.requestList.filter((r) => r.hint !== undefined).map((r) => `Annex '${a.name}', request ${r.requestId}: ${r.hint}`))
  return `${table}\n${charges.length > 0 ? `\n${charges.join('\n')}\n` : ''}${hints.length > 0 ? `\n${hints.join('\n')}\n` : ''}\nFor more about one annex: hpc-annex status NAME`
}

/** "Annex 'x' has charged 12.5 SUs so far and can charge at most 499.5 SUs more." (undefined when no charge is known) */
export function chargeSentence(annex: AnnexStatus): string | undefined {
  // Nothing when no request recorded a rate: HTCondor's own requests say nothing of charges either.
  if (annex.charges.length === 0) return undefined
  const so = annex.charges.map((c) => amountText(c.chargedSoFar, c.unit)).join(' and ')
  const more = annex.charges.map((c) => amountText(c.mostStillToCharge, c.unit)).join(' and ')
  const unknown = annex.unchargedRequests === 0 ? '' : ` (and ${annex.unchargedRequests} request${annex.unchargedRequests === 1 ? '' : 's'} of unknown charge)`
  return `Annex '${annex.name}' has charged ${so} so far and can charge at most ${more} more${unknown}.`
}

function ageSentence(which: string, e: Established): string {
  const retire = e.retiresInSeconds === undefined ? '.' : ` and will retire in ${hours(e.retiresInSeconds)} hours.`
  return `Its ${which} established request is about ${hours(e.ageSeconds)} hours old${retire}`
}

/** The paragraph for `hpc-annex status NAME`, in HTCondor's tool's words. */
export function formatStatusParagraph(report: StatusReport): string {
  return notes(report) + statusParagraph(report)
}

function statusParagraph(report: StatusReport): string {
  const name = report.name ?? ''
  const annex = report.annexes.find((a) => a.name === name) ?? report.annexes[0]
  if (annex === undefined) return `Found no established or requested annexes named '${name}'.`
  const lines: string[] = []
  if (annex.jobs.total === 0) lines.push(`Found no jobs targeting annex '${annex.name}'.`)
  lines.push(`Annex '${annex.name}' is ${annex.established ? '' : 'not '}established.`)
  if (annex.established && annex.oldest) {
    lines.push(ageSentence('oldest', annex.oldest))
    if (annex.youngest && annex.youngest.requestId !== annex.oldest.requestId) lines.push(ageSentence('youngest', annex.youngest))
  }
  lines.push(`You requested ${annex.nodes.requested} nodes for this annex, of which ${annex.nodes.joined} are in an established annex.`)
  lines.push(`There are ${annex.cpus.total} CPUs in the established annex, of which ${annex.cpus.busy} are busy.`)
  lines.push(`${annex.jobs.total} jobs must run on this annex, and ${annex.jobs.running} currently are.`)
  lines.push(
    `You requested resources for this annex ${annex.requests.total} times; ${annex.requests.pending} are pending, ` +
      `${annex.requests.active} comprise the established annex, and ${annex.requests.retired} have retired.`,
  )
  const charge = chargeSentence(annex)
  if (charge !== undefined) lines.push(charge)
  for (const request of annex.requestList) {
    if (request.charge) lines.push(`Request ${request.requestId} has charged ${amountText(request.charge.chargedSoFar, request.charge.unit)} so far and can charge at most ${amountText(request.charge.mostStillToCharge, request.charge.unit)} more.`)
  }
  for (const request of annex.requestList) if (request.hint !== undefined) lines.push(`Request ${request.requestId}: ${request.hint}`)
  return lines.join('\n')
}
