// @iarna/toml, as the code imports it. `npm run build` replaces
// dist/vendor/toml.js with the parser bundled into that one file
// (scripts/bundle.js), as it does execa. From src it is the package as
// installed.
import TOML from '@iarna/toml'

export default TOML
