#!/usr/bin/env bash
# Builds the Rust core for iOS devices and simulators, generates the Swift bindings and packs
# an XCFramework the Swift package links (ios/Generated/, never committed).
#
# Needs macOS with Xcode and:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
# Env: PROFILE=mobile|release|dev (default mobile: the size-optimized profile in the workspace
# Cargo.toml, see docs/scanning.md "Library size").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
profile="${PROFILE:-mobile}"
# cargo's output directory for a profile (`dev` builds into `debug`)
out_dir="$profile"
[[ "$profile" == "dev" ]] && out_dir=debug
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
gen="$here/Generated"
lib=libshomei_mobile.a

[[ "$(uname -s)" == "Darwin" ]] || { echo "build-xcframework.sh needs macOS + Xcode" >&2; exit 1; }


cd "$repo"
export IPHONEOS_DEPLOYMENT_TARGET=16.0
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  cargo build -p shomei-mobile --target "$t" --profile "$profile"
done

# Swift + C header + modulemap, generated from the host build's metadata (identical across
# targets: same crate, same uniffi).
"$repo/mobile-bindings/scripts/generate-bindings.sh" >/dev/null
swift_out="$repo/mobile-bindings/generated/swift"

rm -rf "$gen"
mkdir -p "$gen/headers" "$gen/Sources/ShomeiMobile" "$gen/sim"
cp "$swift_out/ShomeiMobile.swift" "$gen/Sources/ShomeiMobile/"
cp "$swift_out/ShomeiMobileFFI.h" "$gen/headers/"
# An XCFramework's headers directory needs the modulemap named module.modulemap.
cp "$swift_out/ShomeiMobileFFI.modulemap" "$gen/headers/module.modulemap"

# One fat simulator library (arm64 + x86_64): an XCFramework allows one slice per platform.
lipo -create \
  "$target_dir/aarch64-apple-ios-sim/$out_dir/$lib" \
  "$target_dir/x86_64-apple-ios/$out_dir/$lib" \
  -output "$gen/sim/$lib"

xcodebuild -create-xcframework \
  -library "$target_dir/aarch64-apple-ios/$out_dir/$lib" -headers "$gen/headers" \
  -library "$gen/sim/$lib" -headers "$gen/headers" \
  -output "$gen/ShomeiMobileFFI.xcframework"

echo "built $gen/ShomeiMobileFFI.xcframework and $gen/Sources/ShomeiMobile" >&2
