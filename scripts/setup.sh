#!/usr/bin/env bash
# One-shot, idempotent set-up on a fresh Debian 12 machine with Node 20:
# Debian packages, npm packages, a mediasoup worker, the TypeScript build.
# Re-running it when nothing changed takes a few seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }

# Runtime libraries of a worker built here, tools the tests verify with, and
# ffmpeg (an RTP sender we did not write, for the interop test).
source scripts/lib.sh
ensure_debian_packages setup openssl perl ffmpeg libssl3 libuv1 libsrtp2-1 libusrsctp2 systemd

# npm ci only when package-lock.json changed since the last install. The
# mediasoup postinstall is deferred to our installer (which still tries
# mediasoup's own download first).
stamp=node_modules/.callvault-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci"
  MEDIASOUP_WORKER_BIN=deferred npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

bash scripts/install-mediasoup-worker.sh
bash scripts/install-promtool.sh

say "building TypeScript"
npx --no-install tsc -p tsconfig.json
say "ready"
