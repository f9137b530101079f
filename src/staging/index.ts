export {bootstrapCommand, type BootstrapOptions, bundleEntries, parseCachedObject, REMOTE_CACHE, bundleStream, emitFiles, sifEntryName, writeBundle, type BundleEntry, type BundleInputs, type BundleOptions, type SecretSource} from './bundle.js'
export {dryRunContext, renderFiles, SCRIPT_MODE, SECRET_MODE, type RenderedFile, type RenderOptions} from './files.js'
export {sha256File} from './digest.js'
