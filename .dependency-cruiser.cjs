/**
 * The layers of src/, as the design draws them; `npm run lint` fails on an
 * import that runs up them, and on a circle. A module may import from its
 * own layer and the layers below it.
 */
const layers = [
  {name: 'ground (errors, quoting, paths, vendored libraries)', path: '^src/(errors|paths|quote)\\.ts$|^src/oclif\\.cjs$|^src/vendor/'},
  {name: 'core (catalog, render, batch systems)', path: '^src/(catalog|render|batch)/'},
  {name: 'effects (back-end, condor, ssh)', path: '^src/(backend|condor|ssh)/'},
  {name: 'use cases (annex)', path: '^src/annex/'},
  {name: 'verbs (commands, cli)', path: '^src/(commands|cli)/'},
]

const upward = layers.flatMap((lower, i) =>
  layers.slice(i + 1).map((upper) => ({
    name: 'no-import-up-the-layers',
    comment: `${lower.name} may not import ${upper.name}`,
    severity: 'error',
    from: {path: lower.path},
    to: {path: upper.path},
  })),
)

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A circle of imports makes the layers meaningless.',
      severity: 'error',
      from: {path: '^src/'},
      // A type shared both ways is not a circle at run time.
      to: {circular: true, viaOnly: {dependencyTypesNot: ['type-only']}},
    },
    {
      name: 'in-a-layer',
      comment: 'Every module of src/ belongs to a layer (add it to .dependency-cruiser.cjs).',
      severity: 'error',
      from: {path: '^src/', pathNot: layers.map((l) => l.path).join('|')},
      to: {},
    },
    ...upward,
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    // Only src/ is layered: what it takes from its libraries is not cruised.
    includeOnly: '^src/',
    exclude: {path: '^(dist|node_modules)/'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    enhancedResolveOptions: {exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.cjs']},
  },
}
