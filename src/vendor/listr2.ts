// listr2, as the code imports it. `npm run build` replaces dist/vendor/listr2.js
// with listr2 and its dependencies bundled into that one file
// (scripts/bundle.js), as it does execa: create and add load it before the
// login. From src it is listr2 as installed.
export {Listr, ListrLogger, ListrLogLevels, ProcessOutput} from 'listr2'
export type {ListrBaseClassOptions, ListrRendererValue, ListrTaskWrapper} from 'listr2'
