import {Worker} from 'node:worker_threads'

// Runs in a worker thread: a release tarball or an image is tens of MiB to
// GiBs, and hashing it on the main thread would stall the checks and the login
// beside it (and be stalled by them).
const HASH_FILE = `
const {createHash} = require('node:crypto')
const {closeSync, openSync, readSync} = require('node:fs')
const {parentPort, workerData} = require('node:worker_threads')
const hash = createHash('sha256')
const chunk = Buffer.allocUnsafe(1 << 20)
const fd = openSync(workerData, 'r')
try {
  for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n))
} finally {
  closeSync(fd)
}
parentPort.postMessage(hash.digest('hex'))
`

/** Hex sha256 of a local file, read in a worker thread. Its own module: a create digests its tarball before it needs tar or the templates. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(HASH_FILE, {eval: true, workerData: path})
    worker.once('message', (digest: string) => resolve(digest))
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`hashing ${path} stopped (status ${code})`)))
  })
}
