export {adNumber, adString, adValue, checkAttributeName, classadLiteral, exprText, parseAds, type Ad, type AdValue} from './classad.js'
export {queryCollector, type AdKind, type CollectorQuery} from './collector.js'
export {
  ANNEX_CONFIG_NAMES,
  annexCollector,
  annexConfigFrom,
  configBoolean,
  configTemplate,
  configValues,
  loginOverrides,
  readAnnexConfig,
  requireAnnexEnabled,
  tokenDomain,
  type AnnexConfig,
  type AnnexTimeouts,
  type LoginOverrides,
} from './config.js'
export {annexOff, type OffRequest} from './off.js'
export {CONDOR_TOOL_TIMEOUT, runTool, type CondorTool, type RunOptions, type RunResult} from './runner.js'
export {editJob, editJobs, ownerConstraint, parseSubmitOutput, queryJobs, removeJobs, submitDescription, submitFile, type JobQuery, type SubmitResult} from './schedd.js'
export {fetchToken, sweepTokens, TOKEN_AUTHZ, tokenName, withToken, type TokenFile, type TokenRequest} from './tokens.js'
export {currentUser} from './user.js'
export {accessPointVersion} from './version.js'
