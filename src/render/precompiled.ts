/**
 * The templates precompiled at build time, by project path
 * (`templates/batch.slurm.hbs`): scripts/precompile-templates.js writes
 * dist/render/precompiled.js over this empty table. From src (tests) every
 * template is compiled when first used.
 */
export const precompiled = new Map<string, {source: string; spec: TemplateSpecification}>()
