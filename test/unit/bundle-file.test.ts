/**
 * `--bundle FILE` writes the annex token: only ever into a file made new,
 * privately, by this run, renamed onto FILE once complete. A file someone
 * else made, or a symbolic link, at that path is refused and left as it is;
 * a file of the user's is replaced, never written into.
 */
import {chmodSync, chownSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {renderFiles, writeBundle} from '../../src/backend/index.js'
import {planFor, tempDir} from './render-helpers.js'

const ap = {requestId: 'ap.example.org#9.0#1700000000', collector: 'ap.example.org:9618?sock=ap_collector', scheddName: 'ap.example.org'}
const TOKEN = 'THE-ANNEX-TOKEN-0123456789'

let work: string
beforeEach(() => {
  work = tempDir('bundle-file')
  chmodSync(work, 0o755)
})
afterEach(() => rmSync(work, {recursive: true, force: true}))

const write = (file: string) =>
  writeBundle(file, renderFiles(planFor({target: 'wholenode@anvil'}), ap, {setup: true}), {token: Buffer.from(TOKEN), password: Buffer.from('P')}, {prefix: 'b'})

/** What is readable through an open descriptor, from the start. */
function readFd(fd: number): string {
  const buffer = Buffer.alloc(1 << 20)
  const n = readSync(fd, buffer, 0, buffer.length, 0)
  return buffer.subarray(0, n).toString('latin1')
}

describe('--bundle FILE', () => {
  it('a new file: made 0600, the token in it, nothing else left in the directory', async () => {
    const file = join(work, 'annex.tar')
    await write(file)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'latin1')).toContain(TOKEN)
    expect(readdirSync(work)).toEqual(['annex.tar'])
  })

  it('a file already there, readable by others and held open: replaced by a new private one; the open one never gets the token', async () => {
    const file = join(work, 'annex.tar')
    writeFileSync(file, 'old contents\n', {mode: 0o644})
    chmodSync(file, 0o644)
    const before = statSync(file)
    const reader = openSync(file, 'r')
    try {
      await write(file)
      // What was open (another user may have opened it while it was readable) holds none of the token.
      expect(readFd(reader)).toBe('old contents\n')
    } finally {
      closeSync(reader)
    }
    const after = statSync(file)
    expect(after.ino).not.toBe(before.ino)
    expect(after.mode & 0o777).toBe(0o600)
    expect(readFileSync(file, 'latin1')).toContain(TOKEN)
    expect(readdirSync(work)).toEqual(['annex.tar'])
  })

  it('a symbolic link: refused, naming the flag; nothing is written where it points', async () => {
    const target = join(work, 'elsewhere')
    writeFileSync(target, 'theirs\n', {mode: 0o666})
    const file = join(work, 'annex.tar')
    symlinkSync(target, file)
    await expect(write(file)).rejects.toThrow(/--bundle .*annex\.tar.* is a symbolic link/)
    expect(readFileSync(target, 'utf8')).toBe('theirs\n')
    expect(lstatSync(file).isSymbolicLink()).toBe(true)
    expect(readdirSync(work).sort()).toEqual(['annex.tar', 'elsewhere'])
  })

  it('a directory there: refused', async () => {
    const file = join(work, 'annex.tar')
    mkdirSync(file)
    await expect(write(file)).rejects.toThrow(/--bundle .*annex\.tar.* is not a regular file/)
    expect(readdirSync(file)).toEqual([])
    expect(readdirSync(work)).toEqual(['annex.tar'])
  })

  it.skipIf(process.getuid?.() !== 0)("another user's file: refused, and left as it is", async () => {
    const file = join(work, 'annex.tar')
    writeFileSync(file, 'planted\n', {mode: 0o666})
    chmodSync(file, 0o666)
    chownSync(file, 65534, 65534)
    await expect(write(file)).rejects.toThrow(/--bundle .*annex\.tar.* belongs to another user/)
    expect(readFileSync(file, 'utf8')).toBe('planted\n')
    expect(statSync(file).uid).toBe(65534)
    expect(readdirSync(work)).toEqual(['annex.tar'])
  })
})
