#!/usr/bin/env bash
# Builds libshomei_mobile.so for the Android ABIs with cargo-ndk into app/src/main/jniLibs,
# then regenerates the uniffi Kotlin the app compiles (mobile-bindings/generated/kotlin).
#
# Needs: Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, and
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# Env: PROFILE=mobile|release|dev (default mobile: the size-optimized profile in the workspace
# Cargo.toml — opt-level "s" with the scanning crates at 3, fat LTO, one codegen unit,
# stripped, panic = "unwind"; docs/scanning.md has its measured size and frame time).
#
# 16 KB pages: Android 15+ devices may use 16 KB memory pages and refuse libraries whose
# LOAD segments are aligned for 4 KB; NDKs before r28 link with 4 KB by default. The linker
# flag below is set for every Android target whatever the NDK, and check-page-size.sh
# verifies the built libraries (the build fails if one is not 16 KB aligned).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
profile="${PROFILE:-mobile}"

command -v cargo-ndk >/dev/null || { echo "cargo-ndk not found: cargo install cargo-ndk" >&2; exit 1; }
[[ -n "${ANDROID_NDK_HOME:-}" ]] || { echo "ANDROID_NDK_HOME is not set" >&2; exit 1; }

cd "$repo"
page_flags="-C link-arg=-Wl,-z,max-page-size=16384"
for t in AARCH64_LINUX_ANDROID ARMV7_LINUX_ANDROIDEABI X86_64_LINUX_ANDROID; do
  var="CARGO_TARGET_${t}_RUSTFLAGS"
  export "$var=${!var:-} $page_flags"
done
# minSdk 28 = the app's minSdk; -P sets the platform level the NDK links against.
cargo ndk \
  -t arm64-v8a -t armeabi-v7a -t x86_64 \
  -P 28 \
  -o "$here/app/src/main/jniLibs" \
  build -p shomei-mobile --profile "$profile"

"$here/check-page-size.sh" "$here"/app/src/main/jniLibs/*/libshomei_mobile.so

# The Kotlin is generated from the host build (same crate, same uniffi metadata).
"$repo/mobile-bindings/scripts/generate-bindings.sh" >/dev/null
echo "jniLibs in $here/app/src/main/jniLibs; Kotlin in $repo/mobile-bindings/generated/kotlin" >&2
