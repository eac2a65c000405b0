# Shared by the set-up scripts. Source it; do not run it.

# ensure_debian_packages TAG PKG…: install the missing ones (as root), or stop
# naming them (as anyone else).
ensure_debian_packages() {
  local tag="$1"; shift
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    printf '[%s] ERROR: missing Debian packages: %s (run: sudo apt-get install %s)\n' "$tag" "${missing[*]}" "${missing[*]}" >&2
    exit 1
  fi
  printf '[%s] installing Debian packages: %s\n' "$tag" "${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { printf '[%s] ERROR: apt-get could not install: %s\n' "$tag" "${missing[*]}" >&2; exit 1; }
}
