#!/usr/bin/env bash
# Builds libshomei_mobile.so for the Android ABIs with cargo-ndk into app/src/main/jniLibs,
# then regenerates the uniffi Kotlin the app compiles (mobile-bindings/generated/kotlin).
#
# Needs: Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, and
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# Env: PROFILE=mobile|release|dev (default mobile: the size-optimized profile in the workspace
# Cargo.toml — opt-level "z" with the scanning crates at 3, fat LTO, one codegen unit,
# stripped, panic = "unwind"; docs/scanning.md has its measured size).
#
# 16 KB pages: Android 15+ devices may use 16 KB memory pages and refuse libraries whose
# LOAD segments are aligned for 4 KB; NDKs before r28 link with 4 KB by default. The linker
# flag below is set for every Android target whatever the NDK, and check-page-size.sh
# verifies the built libraries (the build fails if one is not 16 KB aligned).
#
# Packed relative relocations (RELR): the library's ~4,500 relative relocations take 24 bytes
# each as RELA entries and a few bytes in all as a RELR bitmap. Android loads RELR from API 28
# (our minSdk) under the Android-specific tags (--use-android-relr-tags; the standard DT_RELR
# tags only from API 30). Clang's Android driver passes exactly these two flags itself for
# API >= 28 since LLVM 20 (llvm-project PR 117624); they are set here so that NDKs with an
# older clang pack too.
# (On the x86_64 host library the same packing saves 106 KB: docs/scanning.md.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
profile="${PROFILE:-mobile}"

command -v cargo-ndk >/dev/null || { echo "cargo-ndk not found: cargo install cargo-ndk" >&2; exit 1; }
[[ -n "${ANDROID_NDK_HOME:-}" ]] || { echo "ANDROID_NDK_HOME is not set" >&2; exit 1; }

cd "$repo"
link_flags="-C link-arg=-Wl,-z,max-page-size=16384"
link_flags+=" -C link-arg=-Wl,--pack-dyn-relocs=relr -C link-arg=-Wl,--use-android-relr-tags"
for t in AARCH64_LINUX_ANDROID ARMV7_LINUX_ANDROIDEABI X86_64_LINUX_ANDROID; do
  var="CARGO_TARGET_${t}_RUSTFLAGS"
  export "$var=${!var:-} $link_flags"
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
