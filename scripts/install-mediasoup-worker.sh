#!/usr/bin/env bash
# Make sure node_modules/mediasoup has a working mediasoup-worker binary.
#
# Order of preference:
#   1. $MEDIASOUP_WORKER_BIN pointing at an executable (operator's own build);
#   2. a worker already installed in node_modules that runs on this machine;
#   3. our cache (keyed by mediasoup version and architecture);
#   4. mediasoup's own postinstall (prebuilt download, else its meson build),
#      i.e. the normal path on a machine that can reach mediasoup's sources;
#   5. a build of the worker from the npm package's own C++ sources against
#      Debian's system libraries with Debian's meson/ninja: the only path that
#      works where just the npm registry and the Debian archive are reachable.
#
# Env: CALLVAULT_WORKER_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/callvault/mediasoup-worker),
#      JOBS (default nproc), CALLVAULT_SKIP_MEDIASOUP_POSTINSTALL=1 to go straight to step 5.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MS_DIR="$PROJECT_DIR/node_modules/mediasoup"
DEST="$MS_DIR/worker/out/Release/mediasoup-worker"
JOBS="${JOBS:-$(nproc)}"

say() { printf '[mediasoup-worker] %s\n' "$*"; }
die() { printf '[mediasoup-worker] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$MS_DIR/package.json" ] || die "node_modules/mediasoup is missing: run 'npm ci' first"
VERSION="$(node -p "require('$MS_DIR/package.json').version")"
CACHE_ROOT="${CALLVAULT_WORKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callvault/mediasoup-worker}"
CACHED="$CACHE_ROOT/$VERSION-$(uname -m)/mediasoup-worker"

# A worker "runs" when the dynamic loader resolves all its libraries; the
# binary itself refuses to start outside a Node parent, so ldd is the check.
runs_here() { [ -x "$1" ] && ! ldd "$1" 2>/dev/null | grep -q 'not found'; }

install_from() {
  mkdir -p "$(dirname "$DEST")"
  if [ "$1" != "$DEST" ]; then cp "$1" "$DEST.tmp" && mv "$DEST.tmp" "$DEST"; fi
  chmod 0755 "$DEST"
}

remember() {
  mkdir -p "$(dirname "$CACHED")"
  cp "$DEST" "$CACHED.tmp" && mv "$CACHED.tmp" "$CACHED"
}

if [ -n "${MEDIASOUP_WORKER_BIN:-}" ] && runs_here "$MEDIASOUP_WORKER_BIN"; then
  say "using MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN"; exit 0
fi
if runs_here "$DEST"; then
  say "mediasoup $VERSION worker already installed"; [ -x "$CACHED" ] || remember; exit 0
fi
if runs_here "$CACHED"; then
  install_from "$CACHED"; say "mediasoup $VERSION worker restored from cache $CACHED"; exit 0
fi

if [ "${CALLVAULT_SKIP_MEDIASOUP_POSTINSTALL:-}" != 1 ]; then
  say "trying mediasoup's own postinstall (prebuilt download or its own build)"
  if (cd "$MS_DIR" && env -u MEDIASOUP_WORKER_BIN timeout 900 node npm-scripts.mjs postinstall) >"$PROJECT_DIR/.mediasoup-postinstall.log" 2>&1 \
     && runs_here "$DEST"; then
    remember; rm -f "$PROJECT_DIR/.mediasoup-postinstall.log"
    say "mediasoup $VERSION worker installed by mediasoup's postinstall"; exit 0
  fi
  say "mediasoup's postinstall could not provide a worker (log: .mediasoup-postinstall.log); building against Debian libraries"
fi

# ---- step 5: build against Debian's libraries -------------------------------
# shellcheck source=scripts/lib.sh
source "$PROJECT_DIR/scripts/lib.sh"
ensure_debian_packages mediasoup-worker g++ pkg-config meson ninja-build flatbuffers-compiler libflatbuffers-dev \
  libssl-dev libuv1-dev libsrtp2-dev libabsl-dev

BUILD_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/callvault-mediasoup-worker.XXXXXX")"
trap 'rm -rf "$BUILD_ROOT"' EXIT
W="$BUILD_ROOT/worker"
cp -r "$MS_DIR/worker" "$W"
rm -rf "$W/out" "$W/subprojects/packagecache"
# Debian 12 ships meson 1.0.1; the worker asks for >= 1.1 but builds with 1.0.
sed -i "s/meson_version: '>= 1\.[0-9]*\.[0-9]*'/meson_version: '>= 1.0.0'/" "$W/meson.build"
# The worker finds unordered_dense through a wrap's [provide]; the wraps are
# replaced below, so point that lookup at our stand-in subproject instead.
sed -i "s/dependency('unordered_dense')/subproject('unordered-dense').get_variable('ankerl_unordered_dense_dep')/" "$W/meson.build"

# Each meson wrap is replaced by a thin subproject over the Debian library,
# exporting the variable names worker/meson.build reads.
SP="$W/subprojects"
rm -f "$SP"/*.wrap
cp -r "$PROJECT_DIR/scripts/mediasoup-debian-subprojects/." "$SP/"
for d in "$SP"/*/; do echo '/* empty */' > "$d/dummy.c"; done

say "building mediasoup $VERSION worker with $JOBS jobs (about 3 minutes on 2 cores)"
(
  cd "$W"
  meson setup --buildtype release -Db_ndebug=true build
  meson compile -C build flatbuffers-generator
  ninja -C build -j "$JOBS" mediasoup-worker
) >"$BUILD_ROOT/build.log" 2>&1 || {
  tail -n 40 "$BUILD_ROOT/build.log" >&2
  cp "$BUILD_ROOT/build.log" "$PROJECT_DIR/.mediasoup-build.log" 2>/dev/null || true
  die "worker build failed (full log: .mediasoup-build.log)"
}
install_from "$W/build/mediasoup-worker"
runs_here "$DEST" || die "built worker does not load: $(ldd "$DEST" | grep 'not found' | tr '\n' ' ')"
remember
say "mediasoup $VERSION worker built and cached at $CACHED"
