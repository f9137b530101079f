#!/bin/bash
# Installs, from Debian's packages, what the integration tests' loopback site
# needs (sshd, SLURM + munge, the TOTP PAM module, oathtool, shellcheck), and
# the libraries the real HTCondor release of the tests runs with (its README).
# Does nothing when all are present. Starts no service: openssh-server's and
# munge's post-install scripts are kept from starting the machine's own daemons.
set -euo pipefail

PACKAGES=(openssh-server openssh-client slurm-wlm munge libpam-google-authenticator
          oathtool shellcheck iproute2 iptables openssl
          libstdc++6 libgcc-s1 libc6 libssl3 libsqlite3-0 libpcre2-8-0 libuuid1 libgomp1 libcurl4)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "test/site/install.sh: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3 4 5 6; do
    apt-get -o DPkg::Lock::Timeout=600 update -qq && break
    echo "apt-get update failed (try $try); retrying in 10 s" >&2
    sleep 10
done
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
