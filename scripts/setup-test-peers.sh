#!/usr/bin/env bash
# The servers the tests talk to: Debian's OpenSSH, Samba and Ceph (radosgw, the S3 gateway, with
# one monitor and one in-memory OSD), and bindfs (a FUSE mount the stalled-disk test freezes) (README's test command runs
# this; `scripts/setup.sh`, which a production install runs, does not: no SSH, Samba or Ceph
# server belongs on a recorder because of callvault). Installed without starting them: the tests start their own,
# with throwaway configs on loopback ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
if [ "$(id -u)" = 0 ] && { ! dpkg -s openssh-server >/dev/null 2>&1 || ! dpkg -s samba >/dev/null 2>&1 || ! dpkg -s radosgw >/dev/null 2>&1; } && [ ! -e /usr/sbin/policy-rc.d ]; then
  # Debian's maintainer scripts would start the system's sshd; policy-rc.d (exit 101) says no.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
ensure_debian_packages test-peers openssh-server openssh-client samba smbclient ceph-mon ceph-osd radosgw ceph-common bindfs
