import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {
  BACKUP_DIR,
  chooseMetaknob,
  defaultConfigDir,
  installMetaknob,
  METAKNOB_FILE,
  renderBuiltinUse,
  renderMetaknob,
} from '../../src/annex/metaknob.js'
import {AnnexError} from '../../src/errors.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hpc-annex-config.d-'))
})
afterEach(() => rmSync(dir, {recursive: true, force: true}))

const content = renderMetaknob({exclusive: false})
const mode = (path: string) => statSync(path).mode & 0o777

function thrown(f: () => unknown): AnnexError {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(AnnexError)
    return error as AnnexError
  }
  throw new Error('expected an AnnexError')
}

describe('admin metaknob --install', () => {
  it('writes 50-hpc-annex.config with mode 0644 whatever the umask, and nothing else', () => {
    const old = process.umask(0o077)
    try {
      const result = installMetaknob(dir, content, {force: false})
      expect(result).toEqual({path: join(dir, METAKNOB_FILE), action: 'created'})
    } finally {
      process.umask(old)
    }
    expect(readFileSync(join(dir, METAKNOB_FILE), 'utf8')).toBe(content)
    expect(mode(join(dir, METAKNOB_FILE))).toBe(0o644)
    expect(readdirSync(dir)).toEqual([METAKNOB_FILE])
  })

  it('is a no-op when the same content is already there (and puts the mode right)', () => {
    installMetaknob(dir, content, {force: false})
    chmodSync(join(dir, METAKNOB_FILE), 0o600)
    const before = statSync(join(dir, METAKNOB_FILE)).mtimeMs
    expect(installMetaknob(dir, content, {force: false}).action).toBe('unchanged')
    expect(statSync(join(dir, METAKNOB_FILE)).mtimeMs).toBe(before)
    expect(mode(join(dir, METAKNOB_FILE))).toBe(0o644)
    expect(readdirSync(dir)).toEqual([METAKNOB_FILE])
  })

  it('refuses to overwrite a different file without --force, leaving it as it was', () => {
    writeFileSync(join(dir, METAKNOB_FILE), 'HPC_ANNEX_ENABLED = false\n')
    const error = thrown(() => installMetaknob(dir, content, {force: false}))
    expect(error.exitCode).toBe(1)
    expect(error.message).toMatch(/differs/)
    expect(error.hint).toMatch(/--force/)
    expect(readFileSync(join(dir, METAKNOB_FILE), 'utf8')).toBe('HPC_ANNEX_ENABLED = false\n')
    expect(readdirSync(dir)).toEqual([METAKNOB_FILE])
  })

  it('with --force replaces it and keeps the old one as a timestamped backup HTCondor will not read', () => {
    writeFileSync(join(dir, METAKNOB_FILE), 'OLD = 1\n', {mode: 0o640})
    const now = new Date('2026-03-04T05:06:07.890Z')
    const result = installMetaknob(dir, content, {force: true, now})
    const backup = join(dir, BACKUP_DIR, `${METAKNOB_FILE}.20260304T050607Z.bak`)
    expect(result).toEqual({path: join(dir, METAKNOB_FILE), action: 'replaced', backup})
    expect(readFileSync(backup, 'utf8')).toBe('OLD = 1\n')
    expect(mode(backup)).toBe(0o640)
    expect(readFileSync(join(dir, METAKNOB_FILE), 'utf8')).toBe(content)
    // The directory holds the new file and a hidden folder only: no second file for HTCondor to parse.
    expect(readdirSync(dir).sort()).toEqual([BACKUP_DIR, METAKNOB_FILE].sort())
    expect(statSync(join(dir, BACKUP_DIR)).isDirectory()).toBe(true)

    // A second replacement within the same second keeps both backups.
    const other = renderMetaknob({exclusive: true})
    const again = installMetaknob(dir, other, {force: true, now})
    expect(again.backup).toBe(join(dir, BACKUP_DIR, `${METAKNOB_FILE}.20260304T050607Z-1.bak`))
    expect(readFileSync(again.backup!, 'utf8')).toBe(content)
  })

  it('refuses a directory that does not exist, and a non-file in the way', () => {
    expect(thrown(() => installMetaknob(join(dir, 'nope'), content, {force: true})).exitCode).toBe(1)
    mkdirSync(join(dir, METAKNOB_FILE))
    expect(thrown(() => installMetaknob(dir, content, {force: true})).message).toMatch(/not a regular file/)
  })

  it('says to run as root when the directory is not writable', () => {
    if (process.getuid?.() === 0) return // root writes anyway
    chmodSync(dir, 0o555)
    try {
      const error = thrown(() => installMetaknob(dir, content, {force: false}))
      expect(error.exitCode).toBe(1)
      expect(error.message).toMatch(/permission denied/)
      expect(error.hint).toMatch(/sudo/)
    } finally {
      chmodSync(dir, 0o755)
    }
    expect(existsSync(join(dir, METAKNOB_FILE))).toBe(false)
  })
})

describe('choosing what to install', () => {
  const noCondor = {
    configTemplate: async () => {
      throw new Error('HTCondor must not be asked')
    },
  }

  it('uses the first directory of LOCAL_CONFIG_DIR', async () => {
    const condor = {configValues: async (names: string[]) => Object.fromEntries(names.map((n) => [n, '/etc/condor/config.d, /usr/share/condor/config.d']))}
    expect(await defaultConfigDir(condor)).toBe('/etc/condor/config.d')
    const none = {configValues: async () => ({LOCAL_CONFIG_DIR: undefined})}
    await expect(defaultConfigDir(none)).rejects.toMatchObject({exitCode: 1, hint: expect.stringMatching(/--install DIR/)})
  })

  it('--prefer-builtin writes the use line only when this HTCondor has the feature', async () => {
    const asked: string[] = []
    const has = {configTemplate: async (c: string, n: string) => (asked.push(`${c}:${n}`), 'HPC_ANNEX_ENABLED = true\n')}
    const lacks = {configTemplate: async () => undefined}
    expect(await chooseMetaknob({exclusive: true, preferBuiltin: true}, has)).toEqual({content: renderBuiltinUse({exclusive: true}), builtin: true})
    expect(asked).toEqual(['feature:HPC_ANNEX'])
    expect(await chooseMetaknob({exclusive: false, preferBuiltin: true}, lacks)).toEqual({content: content, builtin: false})
    expect(await chooseMetaknob({exclusive: false, preferBuiltin: false}, noCondor)).toEqual({content: content, builtin: false})
  })
})
