import {userError} from '../errors.js'
import type {PlanHTCondor, PlanTarball} from './plan.js'

/*
 * Where the pilots' HTCondor comes from, as HTCondor's own tools fetch it
 * (read in htcondor/htcondor, src/condor_scripts/condor_remote_cluster and
 * get_htcondor, and docs/getting-htcondor/install-linux-as-user.rst):
 *
 * - condor_remote_cluster takes the base from the knob BOSCO_URL_BASE, else
 *   https://htcss-downloads.chtc.wisc.edu/tarball/, and downloads
 *   <base><series>/<version>/release/condor-<version>-<arch>_<platform>-stripped.tar.gz
 *   with <version> from the Access Point's own condor_version and <series>
 *   "<major>.0" when the minor version is 0 (the long-term line), else
 *   "<major>.x" (feature releases). The install documentation points to
 *   .../tarball/current/current/ (get_htcondor: <base>/<channel>/current/
 *   condor-<arch>_<platform>-stripped.tar.gz, the newest of a channel).
 * - <platform> is what /etc/os-release says, as condor_remote_cluster names
 *   it: ID_LIKE rhel, centos or fedora gives AlmaLinux<major> (CentOS7 for
 *   7), suse gives openSUSE<major>, ID debian Debian<major>, ubuntu
 *   Ubuntu<major>. The back-end does the same on the login node.
 * - The annex scripts of HTCondor (src/condor_scripts/annex/*.sh,
 *   *.fragment) download from the same tree, e.g. 25.x/25.6.1/release/.
 * - None of those tools checks a checksum, and HTCondor's sources and manual
 *   name no checksum file. Spack's recipe for HTCondor's binary tarballs
 *   takes its sha256 values from the `sha256sum.txt` published in each
 *   release directory (<base><series>/<version>/release/sha256sum.txt), so
 *   that is the default. hpc-annex verifies: a sha256 pinned in the machine file or the Access
 *   Point's configuration wins; otherwise the sha256sum-format file named by
 *   the machine file's `checksum_file` (default DEFAULT_CHECKSUM_FILE) in the
 *   tarball's own directory, from the same server, must list the tarball, or
 *   the download is refused.
 */

/** HTCondor's download tree (condor_remote_cluster's default for BOSCO_URL_BASE). */
export const DEFAULT_TARBALL_URL_BASE = 'https://htcss-downloads.chtc.wisc.edu/tarball/'
/** The Access Point's knob that replaces the base URL for every system (as BOSCO_URL_BASE does for condor_remote_cluster). */
export const TARBALL_URL_BASE_KNOB = 'ANNEX_TARBALL_URL_BASE'
/** The Access Point's knob that pins tarballs' sha256: `NAME=HEX` entries (NAME: the tarball's file name), separated by spaces or commas. */
export const TARBALL_SHA256_KNOB = 'ANNEX_TARBALL_SHA256'
/** The checksum file looked for next to a tarball, in sha256sum's format ("HEX  NAME"). */
export const DEFAULT_CHECKSUM_FILE = 'sha256sum.txt'
/** The only architecture the built-in systems run. */
export const ARCH = 'x86_64'

/** A sha256 as hpc-annex pins and names objects by it: 64 lowercase hex digits. */
export const HEX_SHA256 = /^[0-9a-f]{64}$/

const VERSION = /^(\d+)\.(\d+)\.(\d+)$/

/** "25.0" for the long-term line (minor version 0), "25.x" for feature releases. */
export function releaseSeries(version: string): string {
  const m = VERSION.exec(version)
  if (!m) throw new TypeError(`not an HTCondor version: ${JSON.stringify(version)}`)
  return m[2] === '0' ? `${m[1]}.0` : `${m[1]}.x`
}

export function tarballName(version: string, platform: string): string {
  return `condor-${version}-${ARCH}_${platform}-stripped.tar.gz`
}

/** The release tarball's URL under a base laid out like HTCondor's tree. */
export function tarballUrl(base: string, version: string, platform: string): string {
  return `${base}${releaseSeries(version)}/${version}/release/${tarballName(version, platform)}`
}

/** The checksum file in the tarball's own directory (same server, same scheme). */
export function checksumUrl(url: string, checksumFile: string): string {
  return `${url.slice(0, url.lastIndexOf('/') + 1)}${checksumFile}`
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i

/**
 * A download base: https, or plain http only to this machine's loopback (a
 * local mirror; the login node fetches from there). Ends in '/'.
 * `from` names where it came from, for the error.
 */
export function checkUrlBase(base: string, from: string): string {
  let url: URL
  try {
    url = new URL(base.trim())
  } catch {
    throw userError(`${from} = ${base} is not a URL; give the base of HTCondor's download tree, e.g. ${DEFAULT_TARBALL_URL_BASE}`)
  }
  const loopback = url.protocol === 'http:' && LOOPBACK.test(url.hostname)
  if (url.protocol !== 'https:' && !loopback) {
    throw userError(`${from} = ${base} must be an https:// URL (plain http only to a loopback address); change it.`)
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw userError(`${from} = ${base} must be a plain base URL (no query, fragment or credentials); change it.`)
  }
  const text = url.toString()
  return text.endsWith('/') ? text : `${text}/`
}

/** The knob's pins: file name → sha256. One-line error naming the knob when an entry is malformed. */
export function parsePins(text: string | undefined): Record<string, string> {
  const pins: Record<string, string> = {}
  for (const entry of (text ?? '').split(/[\s,]+/).filter(Boolean)) {
    const at = entry.lastIndexOf('=')
    const name = entry.slice(0, at)
    const digest = entry.slice(at + 1).toLowerCase()
    if (at <= 0 || !HEX_SHA256.test(digest) || !/^[A-Za-z0-9._+-]+$/.test(name)) {
      throw userError(`${TARBALL_SHA256_KNOB} has '${entry}'; each entry must be TARBALL-FILE-NAME=SHA256 (64 hex digits). Ask your HTCondor administrator to fix it.`)
    }
    pins[name] = digest
  }
  return pins
}

/** The version `condor_version` prints first: "$CondorVersion: 25.13.2 2026-08-20 BuildID: ... $". */
export function parseCondorVersion(printed: string): string | undefined {
  return /\$CondorVersion:\s+(\d+\.\d+\.\d+)\s/.exec(printed)?.[1]
}

/** --condor-version: a release number. */
export function checkCondorVersion(version: string): string {
  if (!VERSION.test(version)) throw userError(`--condor-version '${version}' is not an HTCondor version like 25.0.4; change it.`)
  return version
}

/** What the Access Point adds at create time. */
export interface DownloadContext {
  /** condor_version on the Access Point, used when nothing pins a version. */
  apVersion?: string
  /** ANNEX_TARBALL_URL_BASE, checked. */
  urlBase?: string
  /** ANNEX_TARBALL_SHA256. */
  pins?: Record<string, string>
}

/**
 * The tarball per allowed platform, with how each will be verified. Pure:
 * a version pinned by the machine file or --condor-version wins, else the
 * Access Point's own; the base URL is the Access Point's knob, else the
 * machine file's, else HTCondor's tree. No version yet: no tarballs.
 */
export function resolveDownload(h: PlanHTCondor, context: DownloadContext = {}): PlanHTCondor {
  const version = h.version ?? context.apVersion
  const resolved: PlanHTCondor = {...h, tarballs: []}
  if (context.urlBase !== undefined) {
    resolved.urlBase = context.urlBase
    resolved.urlBaseFrom = TARBALL_URL_BASE_KNOB
  }
  if (version === undefined) return resolved
  resolved.version = version
  resolved.tarballs = h.platforms.map((platform): PlanTarball => {
    // A template of the machine file is the machine's own mirror; the Access Point's base replaces only the default layout.
    const url =
      h.urlTemplate !== undefined && context.urlBase === undefined
        ? h.urlTemplate.replaceAll('{version}', version).replaceAll('{os}', platform)
        : tarballUrl(resolved.urlBase, version, platform)
    const file = url.slice(url.lastIndexOf('/') + 1)
    const pinned = context.pins?.[file] ?? (h.versionFrom === 'machine file' ? h.machineSha256[platform] : undefined)
    if (pinned !== undefined) return {os: platform, url, sha256: pinned, verification: 'pinned'}
    return {os: platform, url, checksumUrl: checksumUrl(url, h.checksumFile), verification: 'published'}
  })
  return resolved
}

/** --condor-version: pins the version for this request. */
export function pinVersion(h: PlanHTCondor, version: string): PlanHTCondor {
  return resolveDownload({...h, version: checkCondorVersion(version), versionFrom: '--condor-version'})
}

/** Where the tarball comes from when the version or platform is not yet known. */
export function urlRule(h: PlanHTCondor): string {
  return h.urlTemplate ?? `${h.urlBase}<series>/<version>/release/${tarballName('<version>', '<platform>')}`
}

/** How each tarball is checked, in words. */
export function describeVerification(t: PlanTarball, allowUnpinned: boolean): string {
  if (t.verification === 'pinned') return `verified against the pinned sha256 ${t.sha256!.slice(0, 12)}…`
  const fallback = allowUnpinned ? '; if none is published, downloaded unverified (--allow-unpinned-download)' : '; refused if it lists none or differs'
  return `verified against the sha256 published in ${t.checksumUrl}${fallback}`
}

/**
 * The dry run's lines about the pilots' HTCondor: the exact URLs when the
 * version is known, else the rule; the platform is the login node's.
 */
export function describeDownload(h: PlanHTCondor, options: {staged?: string; allowUnpinned?: boolean; fixedPlatform?: string} = {}): string[] {
  if (options.staged !== undefined) return [`The pilots' HTCondor: the tarball ${options.staged} (--condor-tarball), staged into the login node's cache; nothing is downloaded.`]
  const fixed = options.fixedPlatform
  const platforms =
    fixed === undefined
      ? `The platform is chosen on the login node from its /etc/os-release, among ${h.platforms.join(', ')} (the machine file's htcondor.os).`
      : `The platform is ${fixed}, the pilots' container's (whatever the login node runs).`
  const tarballs = fixed === undefined ? h.tarballs : h.tarballs.filter((t) => t.os.toLowerCase() === fixed.toLowerCase())
  const base = h.urlBaseFrom === TARBALL_URL_BASE_KNOB ? h.urlBase : `${h.urlBase} (the Access Point's ${TARBALL_URL_BASE_KNOB} replaces it)`
  if (h.version === undefined) {
    return [
      `The pilots' HTCondor: the Access Point's own version (condor_version at create time; pin one with --condor-version), downloaded on the login node from`,
      `  ${base}`,
      `  + <series>/<version>/release/${tarballName('<version>', '<platform>')} (<series>: 25.0 for 25.0.z, 25.x for other 25.y.z),`,
      `  verified against a sha256 pinned in ${TARBALL_SHA256_KNOB} or, failing that, the one published in ${h.checksumFile} next to it${options.allowUnpinned ? ' (if none is published, downloaded unverified: --allow-unpinned-download)' : ' (refused if it lists none or differs)'}.`,
      `  ${platforms}`,
    ]
  }
  return [
    `The pilots' HTCondor ${h.version} (${h.versionFrom === 'machine file' ? 'pinned by the machine file' : h.versionFrom === '--condor-version' ? '--condor-version' : "the Access Point's"}), downloaded on the login node (unless its cache holds it) from:`,
    ...tarballs.map((t) => `  ${t.url} — ${describeVerification(t, options.allowUnpinned ?? false)}`),
    `  ${platforms}`,
  ]
}
