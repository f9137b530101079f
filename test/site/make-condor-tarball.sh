#!/bin/bash
# make-condor-tarball.sh OUT.tar.gz - the small HTCondor tarball of the
# loopback site: one top directory condor-test-<version>/ laid out like a
# release, whose sbin/condor_master is the test double in condor-double/
# (it advertises the pilot to the fake condor tools' collector; see
# test/site/README.md). Everything else the generated back-end and pilot do
# with a release (unpack, check sbin/condor_master, hard-link into the pilot
# directory, exec condor_master -f) stays real. The tarball is reproducible:
# the same inputs give the same sha256. Prints that sha256.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: make-condor-tarball.sh OUT.tar.gz"
out=$1
version=$(sed -n 's/^VERSION=//p' "$SITE_TOOLS/condor-double/condor_master")
top=condor-test-$version
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/$top"/{bin,sbin,lib,libexec,etc/examples}
install -m 755 "$SITE_TOOLS/condor-double/condor_master" "$work/$top/sbin/condor_master"
cat > "$work/$top/README" <<TXT
HTCondor $version TEST DOUBLE made by hpc-annex's test/site/make-condor-tarball.sh.
sbin/condor_master only advertises the pilot to the fake condor tools'
collector and exits on condor_off, at the end of its lifetime or on SIGTERM.
TXT
cat > "$work/$top/bin/condor_version" <<TXT
#!/bin/sh
echo '\$CondorVersion: $version (hpc-annex test double) \$'
echo '\$CondorPlatform: X86_64-Debian_12 \$'
TXT
chmod 755 "$work/$top/bin/condor_version"
chmod 644 "$work/$top/README"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf - "$top" |
    gzip -n -9 > "$out.tmp"
mv -f "$out.tmp" "$out"
sha256sum "$out" | cut -d' ' -f1
