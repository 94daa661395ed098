#!/usr/bin/env bash
# Fails unless every PT_LOAD segment of each given ELF shared library is aligned to at
# least 16 KB (p_align >= 0x4000): Android 15+ devices with 16 KB memory pages refuse to load
# a library built for 4 KB pages, and Google Play requires 16 KB alignment for new apps.
# NDK r27 and older toolchains link with 4 KB pages unless told otherwise (build-rust.sh
# passes -z max-page-size=16384); this script is what proves the result.
#
# Usage: check-page-size.sh LIB.so...   (uses llvm-readelf from $READELF, the NDK, or readelf)
#        check-page-size.sh --self-test (links two tiny libraries with cc, one of each kind)
set -euo pipefail

readelf_bin() {
  if [[ -n "${READELF:-}" ]]; then echo "$READELF"; return; fi
  if [[ -n "${ANDROID_NDK_HOME:-}" ]]; then
    local r
    r=$(ls "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/llvm-readelf 2>/dev/null | head -n 1 || true)
    if [[ -n "$r" ]]; then echo "$r"; return; fi
  fi
  command -v llvm-readelf || command -v readelf || { echo "check-page-size.sh: no readelf" >&2; exit 2; }
}

check() {
  local so=$1 re bad=0 aligns
  re=$(readelf_bin)
  # Program headers, wide: "LOAD  off vaddr paddr filesz memsz flags align"; align is last.
  aligns=$("$re" -lW "$so" | awk '$1 == "LOAD" { print $NF }')
  [[ -n "$aligns" ]] || { echo "$so: no LOAD segments (not an ELF shared library?)" >&2; return 1; }
  for a in $aligns; do
    if (( a < 0x4000 )); then bad=1; fi
  done
  if (( bad )); then
    echo "$so: LOAD segment alignment $(echo $aligns | tr '\n' ' ')— below 16 KB" >&2
    return 1
  fi
  echo "$so: 16 KB aligned ($(echo $aligns | tr '\n' ' '))" >&2
}

if [[ "${1:-}" == "--self-test" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo 'int shomei_probe(void) { return 42; }' > "$tmp/probe.c"
  cc -shared -fPIC -Wl,-z,max-page-size=4096 -o "$tmp/four.so" "$tmp/probe.c"
  cc -shared -fPIC -Wl,-z,max-page-size=16384 -o "$tmp/sixteen.so" "$tmp/probe.c"
  if check "$tmp/four.so" 2>/dev/null; then
    echo "check-page-size.sh self-test FAILED: a 4 KB-aligned library passed" >&2
    exit 1
  fi
  check "$tmp/sixteen.so" || { echo "check-page-size.sh self-test FAILED: a 16 KB-aligned library failed" >&2; exit 1; }
  echo "check-page-size.sh self-test passed (4 KB refused, 16 KB accepted)" >&2
  exit 0
fi

[[ $# -gt 0 ]] || { echo "usage: $0 LIB.so... | --self-test" >&2; exit 2; }
rc=0
for so in "$@"; do check "$so" || rc=1; done
exit $rc
