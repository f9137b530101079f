// zod, as the code imports it. `npm run build` replaces dist/vendor/zod.js
// with zod bundled into that one file (scripts/bundle.js), as it does execa:
// every verb that reads the machine files loads it. From src it is zod as
// installed.
export {z} from 'zod'
