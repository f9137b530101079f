export {describePlan, describeResources} from './describe.js'
export {catalogWarnings, findSystem, formatProblem, loadCatalog, requireSystem, machineDirectories, parseMachineFile, untrusted, type Catalog, type CatalogProblem, type Machine} from './load.js'
export type {Plan, PlanHTCondor, PlanTarball} from './plan.js'
export {ANNEX_NAME, checkAnnexName, parseRequest, splitTarget, type Request, type RequestInput} from './request.js'
export {resolveQueue, validateRequest} from './validate.js'
export {
  checkUrlBase,
  DEFAULT_TARBALL_URL_BASE,
  describeDownload,
  describeVerification,
  urlRule,
  parseCondorVersion,
  parsePins,
  pinVersion,
  resolveDownload,
  TARBALL_SHA256_KNOB,
  TARBALL_URL_BASE_KNOB,
  type DownloadContext,
} from './download.js'
