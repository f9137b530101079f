// Handlebars' runtime (the library less its compiler), as the code imports it.
// `npm run build` replaces dist/vendor/handlebars.js with its CommonJS files
// bundled into that one file (scripts/bundle.js), as it does execa: a create
// loads it while it logs in. From src it is the runtime as installed.
export {default} from 'handlebars/runtime.js'
