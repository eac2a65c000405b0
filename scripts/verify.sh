#!/usr/bin/env bash
# Verify a sealed callvault recording with standard tools only (shasum,
# openssl, base64): every file's SHA-256, no unlisted files, and the
# SHA256withRSA signature of the checksum file under the given certificate.
#
#   scripts/verify.sh RECORDING_DIR CERT.pem
#
# Exit 0 only if everything holds; otherwise 1, one line per problem on stderr.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 RECORDING_DIR CERT.pem" >&2
  exit 2
fi
dir=$1
cert=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
[ -d "$dir" ] || { echo "$dir: not a directory" >&2; exit 2; }
[ -r "$cert" ] || { echo "$2: cannot read certificate" >&2; exit 2; }
cd "$dir" || exit 2

shopt -s nullglob
sums=( *.sha256 )
if [ ${#sums[@]} -ne 1 ]; then
  echo "$dir: expected exactly one *.sha256 checksum file, found ${#sums[@]}" >&2
  exit 1
fi
sum=${sums[0]}
sig=$sum.SHA256withRSA.sig
status=0

# 1. Every listed file is present and unchanged.
if ! shasum -a 256 --strict -c "$sum" >/dev/null 2>&1; then
  shasum -a 256 -c "$sum" 2>&1 | grep -v ': OK$' >&2
  status=1
fi

# 2. Nothing is present that the checksum file does not list.
for f in * .[!.]*; do
  [ "$f" = "$sum" ] || [ "$f" = "$sig" ] && continue
  if ! cut -c67- "$sum" | grep -qxF -- "$f"; then
    echo "$f: UNLISTED (present but not in $sum)" >&2
    status=1
  fi
done

# 3. The checksum file carries a valid signature from the certificate's key.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$sig" ]; then
  echo "$sig: signature file missing" >&2
  status=1
elif ! openssl x509 -in "$cert" -pubkey -noout > "$tmp/pub.pem" 2>/dev/null; then
  echo "$2: not an X.509 certificate" >&2
  exit 2
elif ! base64 -d "$sig" > "$tmp/sig.bin" 2>/dev/null; then
  echo "$sig: not base64" >&2
  status=1
elif ! openssl dgst -sha256 -verify "$tmp/pub.pem" -signature "$tmp/sig.bin" "$sum" >/dev/null 2>&1; then
  echo "$sig: signature does not verify for $sum with $2" >&2
  status=1
fi

[ $status -eq 0 ] && echo "$dir: OK"
exit $status
