#!/usr/bin/env bash
# Verify a sealed callvault recording with standard tools only (shasum,
# openssl, base64, grep): the SHA256withRSA signature of the checksum file
# under the given certificate first, then that every listed name is one of
# this recording's own files, every file's SHA-256, no unlisted files, and
# that the directory and the signed metadata are this recording's.
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
id=${sum%.sha256}
sig=$sum.SHA256withRSA.sig
status=0

# 1. The checksum file carries a valid signature from the certificate's key:
#    until it does, nothing it lists is opened.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$sig" ]; then
  echo "$sig: signature file missing" >&2
  exit 1
elif ! openssl x509 -in "$cert" -pubkey -noout > "$tmp/pub.pem" 2>/dev/null; then
  echo "$2: not an X.509 certificate" >&2
  exit 2
elif ! base64 -d "$sig" > "$tmp/sig.bin" 2>/dev/null; then
  echo "$sig: not base64" >&2
  exit 1
elif ! openssl dgst -sha256 -verify "$tmp/pub.pem" -signature "$tmp/sig.bin" "$sum" >/dev/null 2>&1; then
  echo "$sig: signature does not verify for $sum with $2" >&2
  exit 1
fi

# 2. Every listed name is a plain file name of this recording's (never a path).
if cut -c67- "$sum" | grep -v "^$id[.-][A-Za-z0-9._-]*\$" >&2; then
  echo "$sum: lists the names above, which are not $id's own files" >&2
  exit 1
fi

# 3. Every listed file is present and unchanged.
if ! shasum -a 256 --strict -c "$sum" >/dev/null 2>&1; then
  shasum -a 256 -c "$sum" 2>&1 | grep -v ': OK$' >&2
  status=1
fi

# 4. Nothing is present that the checksum file does not list.
for f in * .[!.]*; do
  [ "$f" = "$sum" ] || [ "$f" = "$sig" ] && continue
  if ! cut -c67- "$sum" | grep -qxF -- "$f"; then
    echo "$f: UNLISTED (present but not in $sum)" >&2
    status=1
  fi
done

# 5. The recording is in its own directory, and its signed metadata says it is this recording.
base=$(basename "$(pwd)")
if [[ $base =~ ^[0-9a-f]{22}$ ]] && [ "$base" != "$id" ]; then
  echo "$dir: the directory is recording $base's, but holds recording $id" >&2
  status=1
fi
if ! grep -q "^  \"recordingId\": \"$id\",\$" "$id.json" 2>/dev/null; then
  echo "$id.json: the signed metadata is not recording $id's" >&2
  status=1
fi

[ $status -eq 0 ] && echo "$dir: OK"
exit $status
