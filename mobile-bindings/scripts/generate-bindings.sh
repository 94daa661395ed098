#!/usr/bin/env bash
# Builds the host cdylib of shomei-mobile and generates the Kotlin and Swift bindings from it
# in uniffi "library mode" (the metadata embedded in the library is the single source of
# truth, so the bindings can never drift from the Rust code). Output:
#   mobile-bindings/generated/kotlin/jp/shomei/mobile/shomei_mobile.kt
#   mobile-bindings/generated/swift/{ShomeiMobile.swift, ShomeiMobileFFI.h, ShomeiMobileFFI.modulemap}
# Generated code is never committed (.gitignore); run this script instead.
#
# Env: CARGO_TARGET_DIR (default <repo>/target), PROFILE (debug|release, default debug),
#      CARGO_BUILD_JOBS (default 2),
#      SHOMEI_MOBILE_LIB + UNIFFI_BINDGEN: an already built host library and bindgen (both
#      set: no cargo build here; scripts/test builds the whole workspace once and hands
#      them over, so CI does not compile the dependency graph again with other features).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
profile="${PROFILE:-debug}"
jobs="${CARGO_BUILD_JOBS:-2}"
out="$repo/mobile-bindings/generated"

profile_flag=()
[[ "$profile" == "release" ]] && profile_flag=(--release)

cd "$repo"
if [[ -n "${SHOMEI_MOBILE_LIB:-}" && -n "${UNIFFI_BINDGEN:-}" ]]; then
  lib="$SHOMEI_MOBILE_LIB"
  bindgen="$UNIFFI_BINDGEN"
  [[ -f "$lib" ]] || { echo "generate-bindings.sh: no library at SHOMEI_MOBILE_LIB=$lib" >&2; exit 1; }
  [[ -x "$bindgen" ]] || { echo "generate-bindings.sh: no bindgen at UNIFFI_BINDGEN=$bindgen" >&2; exit 1; }
else
  # Two separate builds on purpose: built together, cargo would unify uniffi's features (the
  # bindgen's "cli") into the library too, a different feature set than either alone.
  cargo build -j "$jobs" "${profile_flag[@]}" -p uniffi-bindgen >&2
  cargo build -j "$jobs" "${profile_flag[@]}" -p shomei-mobile >&2
  case "$(uname -s)" in
    Darwin) lib="$target_dir/$profile/libshomei_mobile.dylib" ;;
    *)      lib="$target_dir/$profile/libshomei_mobile.so" ;;
  esac
  bindgen="$target_dir/$profile/uniffi-bindgen"
fi

rm -rf "$out/kotlin" "$out/swift"
mkdir -p "$out/kotlin" "$out/swift"
"$bindgen" generate --library "$lib" --language kotlin --out-dir "$out/kotlin" --no-format >&2
"$bindgen" generate --library "$lib" --language swift --out-dir "$out/swift" --no-format >&2

echo "generated bindings from $lib into $out" >&2
# The library directory, for callers that need to load it (JNA: jna.library.path).
echo "$(dirname "$lib")"
