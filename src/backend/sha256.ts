/**
 * How the login node hashes what it receives and caches. OpenSSL's sha256
 * uses the CPU's SHA instructions where it has them, several times faster
 * than coreutils' sha256sum as Debian and RHEL build it (here 1.3 GB/s
 * against 340 MB/s): with the sender and sshd on the same few cores, that is
 * what an upload of a large image waits for. The digest is the same either
 * way; a node whose openssl is missing, or does not hash an empty input as
 * sha256sum does, keeps sha256sum.
 */

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

/** The variable that says openssl is the login node's sha256 (1), or sha256sum is (0); exported to the back-end. */
const OPENSSL_SHA256_FLAG = 'HPC_ANNEX_OPENSSL_SHA256'

/** Shell, one command (it joins the bootstrap's && chain): picks the sha256 filter once, for the bootstrap and its back-end. */
export const PICK_SHA256 = `{ if [ "$(openssl dgst -sha256 -r </dev/null 2>/dev/null | cut -c1-64)" = ${EMPTY_SHA256} ]; then ${OPENSSL_SHA256_FLAG}=1; else ${OPENSSL_SHA256_FLAG}=0; fi; export ${OPENSSL_SHA256_FLAG}; }`

/** POSIX sh: `sha256` hashes its stdin with the filter picked, printing the hex digest first. */
export const SHA256_FUNCTION = `sha256() { if [ "\${${OPENSSL_SHA256_FLAG}:-0}" = 1 ]; then openssl dgst -sha256 -r; else sha256sum; fi; }`
