#!/usr/bin/env bash
# Builds the phone library for this host with the `mobile` profile (the profile
# android/build-rust.sh and ios/build-xcframework.sh build with: "z", fat LTO, stripped) and
# reports its size, its largest sections and its relocations (docs/scanning.md, "Library
# size"). Exits 1 if the library is not below LIMIT bytes.
#
# The host library is a stand-in for the phones' (same code, same profile, another
# instruction set). It is linked without packed relocations; the Android libraries are
# linked with them (build-rust.sh), which removes the 24-byte RELA entries counted below.
#
# A fat-LTO build: ~15 minutes on two busy cores from scratch, a few when only the
# workspace's crates changed. Not part of scripts/test for that reason.
#
# Env: CARGO_TARGET_DIR (default <repo>/target), CARGO_BUILD_JOBS (default 2),
#      LIMIT (default 4000000, i.e. 4 MB in decimal; 4 MiB would be 4194304).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
jobs="${CARGO_BUILD_JOBS:-2}"
limit="${LIMIT:-4000000}"

cd "$repo"
cargo build -j "$jobs" -p shomei-mobile --profile mobile >&2
case "$(uname -s)" in
  Darwin) lib="$target_dir/mobile/libshomei_mobile.dylib" ;;
  *)      lib="$target_dir/mobile/libshomei_mobile.so" ;;
esac
[[ -f "$lib" ]] || { echo "mobile-size.sh: no library at $lib" >&2; exit 1; }

bytes=$(wc -c < "$lib" | tr -d ' ')
echo "$lib: $bytes bytes (limit $limit)"
if command -v size >/dev/null && [[ "$(uname -s)" != Darwin ]]; then
  echo "largest sections (bytes):"
  size -A "$lib" | awk 'NR > 2 && $1 != "Total" && $2 > 0 { print }' | sort -k2 -nr | head -n 8
fi
if command -v readelf >/dev/null && [[ "$(uname -s)" != Darwin ]]; then
  relative=$(readelf -rW "$lib" | grep -c '_RELATIVE' || true)
  echo "relative relocations as RELA entries: $relative ($((relative * 24)) bytes; packed on Android)"
fi
(( bytes < limit )) || { echo "mobile-size.sh: $bytes bytes, not below $limit" >&2; exit 1; }
