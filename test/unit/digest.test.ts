import {createHash} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {digestCacheFile, sha256File} from '../../src/backend/digest.js'

let work: string
let cache: string
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'hpc-annex-digest-'))
  cache = join(work, 'cache', 'hpc-annex', 'digests.json')
})
afterEach(() => rmSync(work, {recursive: true, force: true}))

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
/** A clock 10 s ahead: files written by the test count as changed long before they were read. */
const later = () => (BigInt(Date.now()) + 10_000n) * 1_000_000n
const remembered = () => JSON.parse(readFileSync(cache, 'utf8')) as Record<string, {sha256: string}>

describe('the digest cache of local files', () => {
  it('answers from the cache while stat says the file is unchanged, and hashes again once it was written, even to the same size and times', async () => {
    const file = join(work, 'image.sif')
    writeFileSync(file, 'first contents')
    // A whole second, which utimes can put back exactly.
    const whole = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000)
    utimesSync(file, whole, whole)
    expect(await sha256File(file, {cache, nowNs: later})).toBe(sha256('first contents'))
    expect(statSync(cache).mode & 0o777).toBe(0o600)
    expect(statSync(join(work, 'cache', 'hpc-annex')).mode & 0o777).toBe(0o700)
    expect(remembered()[file]!.sha256).toBe(sha256('first contents'))

    // Answered from the cache: a doctored entry is what comes back, the file unread.
    const doctored = 'f'.repeat(64)
    writeFileSync(cache, JSON.stringify({...remembered(), [file]: {...remembered()[file], sha256: doctored}}))
    expect(await sha256File(file, {cache, nowNs: later})).toBe(doctored)

    // Rewritten to the same size, its modification time put back: only the change time moved.
    const before = statSync(file, {bigint: true})
    writeFileSync(file, 'other contents')
    utimesSync(file, whole, whole)
    const after = statSync(file, {bigint: true})
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino])
    expect(await sha256File(file, {cache, nowNs: later})).toBe(sha256('other contents'))
    expect(remembered()[file]!.sha256).toBe(sha256('other contents'))
  })

  it('does not remember a file changed just before it was read (a file-system clock may not tell the next change apart)', async () => {
    const file = join(work, 'fresh.tar.gz')
    writeFileSync(file, 'just written')
    expect(await sha256File(file, {cache})).toBe(sha256('just written'))
    expect(existsSync(cache)).toBe(false)
  })

  it('ignores a damaged or unwritable cache: the digest is computed all the same', async () => {
    const file = join(work, 'release.tar.gz')
    writeFileSync(file, 'release')
    mkdirFor(cache)
    writeFileSync(cache, '{not json')
    expect(await sha256File(file, {cache, nowNs: later})).toBe(sha256('release'))
    expect(remembered()[file]!.sha256).toBe(sha256('release'))
    expect(await sha256File(file, {cache: null, nowNs: later})).toBe(sha256('release'))

    const readOnly = join(work, 'read-only')
    mkdirFor(join(readOnly, 'x'))
    chmodSync(readOnly, 0o500)
    try {
      expect(await sha256File(file, {cache: join(readOnly, 'digests.json'), nowNs: later})).toBe(sha256('release'))
    } finally {
      chmodSync(readOnly, 0o700)
    }
  })

  it('lives in $XDG_CACHE_HOME/hpc-annex, else ~/.cache/hpc-annex', () => {
    expect(digestCacheFile({XDG_CACHE_HOME: '/x/cache', HOME: '/home/u'})).toBe('/x/cache/hpc-annex/digests.json')
    expect(digestCacheFile({XDG_CACHE_HOME: 'relative', HOME: '/home/u'})).toBe('/home/u/.cache/hpc-annex/digests.json')
    expect(digestCacheFile({HOME: '/home/u'})).toBe('/home/u/.cache/hpc-annex/digests.json')
  })
})

function mkdirFor(path: string): void {
  mkdirSync(join(path, '..'), {recursive: true})
}
