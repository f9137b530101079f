// execa, as the code imports it. `npm run build` replaces dist/vendor/execa.js
// with execa and its ~15 dependencies bundled into that one file
// (scripts/bundle.js): loaded file by file they took ~140 ms of every verb
// that runs a tool, bundled ~50 ms. From src (tests, bin/dev.js) it is execa
// as installed.
export {execa} from 'execa'
