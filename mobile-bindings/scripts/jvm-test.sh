#!/usr/bin/env bash
# Runs the uniffi-generated Kotlin on the JVM (JNA + the host libshomei_mobile.so):
#   1. regenerates the bindings (generate-bindings.sh),
#   2. builds the `shomei` server binary unless SHOMEI_BIN points at one,
#   3. mvn test in mobile-bindings/jvm-test (scan/payload/error-mapping tests, and the
#      end-to-end test that enrolls and approves against a real `shomei serve`),
#   4. android/check.sh: compiles the Android app's Kotlin against android-all, checks it
#      against the API 28 signature (minSdk), and self-tests the 16 KB alignment checker.
#
# Needs: cargo, Java 17+, Maven 3.8+ (Maven Central reachable, or ~/.m2 already filled).
# Env: CARGO_TARGET_DIR, SHOMEI_BIN, SHOMEI_MOBILE_LIB + UNIFFI_BINDGEN (prebuilt, see
#      generate-bindings.sh; with all three set this script runs no cargo), MVN_ARGS (extra Maven flags, e.g. "-o" offline),
#      SKIP_ANDROID_CHECK=1 to skip step 4.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
jobs="${CARGO_BUILD_JOBS:-2}"

command -v mvn >/dev/null || { echo "jvm-test.sh: maven (mvn) is required" >&2; exit 1; }
command -v java >/dev/null || { echo "jvm-test.sh: java is required" >&2; exit 1; }

lib_dir="$("$here/generate-bindings.sh" | tail -n 1)"

if [[ -z "${SHOMEI_BIN:-}" ]]; then
  (cd "$repo" && cargo build -j "$jobs" -p shomei-server --bin shomei >&2)
  SHOMEI_BIN="$target_dir/debug/shomei"
fi
[[ -x "$SHOMEI_BIN" ]] || { echo "jvm-test.sh: no shomei binary at $SHOMEI_BIN" >&2; exit 1; }

reports="$repo/mobile-bindings/jvm-test/target/surefire-reports"
rm -rf "$reports"
rc=0
# shellcheck disable=SC2086
mvn -B -q ${MVN_ARGS:-} -f "$repo/mobile-bindings/jvm-test/pom.xml" test \
  -Dshomei.lib.dir="$lib_dir" -Dshomei.bin="$SHOMEI_BIN" || rc=$?
# -q hides surefire's summary; print it per test class (and the total) for CI logs.
if compgen -G "$reports/*.txt" >/dev/null; then
  grep -h "Tests run:" "$reports"/*.txt >&2 || true
  awk -F'[:,]' '/Tests run:/ { t += $2; f += $4; e += $6; s += $8 }
    END { printf "Tests run: %d, Failures: %d, Errors: %d, Skipped: %d (Kotlin on the JVM)\n", t, f, e, s }' \
    "$reports"/*.txt >&2
fi
[[ $rc == 0 ]] || { echo "jvm-test: Kotlin bindings tests FAILED" >&2; exit "$rc"; }
echo "jvm-test: Kotlin bindings tests passed" >&2

if [[ "${SKIP_ANDROID_CHECK:-0}" != "1" ]]; then
  # compile check against android-all, API-level (minSdk 28) check, 16 KB alignment checker
  bash "$repo/android/check.sh"
  echo "jvm-test: Android checks passed" >&2
fi
