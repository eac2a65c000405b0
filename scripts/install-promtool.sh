#!/usr/bin/env bash
# Puts Prometheus' `promtool` (used by the tests to lint /metrics) at
# node_modules/.bin/promtool without installing the Prometheus server: the
# Debian package is downloaded and only its promtool binary is extracted, so
# no service is installed or started. Cached per package version.
# Env: CALLVAULT_PROMTOOL_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/callvault/promtool).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[promtool] %s\n' "$*"; }
link=node_modules/.bin/promtool

if command -v promtool >/dev/null 2>&1 && [ "$(command -v promtool)" != "$PWD/$link" ]; then
  ln -sf "$(command -v promtool)" "$link"; say "using $(command -v promtool)"; exit 0
fi

version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  [ "$(id -u)" = 0 ] && apt-get update -qq
  version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
fi
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  say "WARNING: Debian's prometheus package is not available; the promtool lint test will be skipped" >&2; exit 0
fi

cache="${CALLVAULT_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callvault/promtool}/${version//[:~]/_}"
if [ ! -x "$cache/promtool" ]; then
  tmp=$(mktemp -d); chmod 0755 "$tmp"; trap 'rm -rf "$tmp"' EXIT
  say "downloading Debian prometheus $version for its promtool"
  (cd "$tmp" && apt-get download -qq "prometheus=$version" >/dev/null) \
    || { say "WARNING: apt-get download prometheus failed; the promtool lint test will be skipped" >&2; exit 0; }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p "$cache"
  install -m 0755 "$tmp/x/usr/bin/promtool" "$cache/promtool.new" && mv "$cache/promtool.new" "$cache/promtool"
fi
ln -sf "$cache/promtool" "$link"
say "promtool $("$link" --version 2>&1 | head -1 | awk '{print $3}') at $link"
