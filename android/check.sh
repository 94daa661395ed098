#!/usr/bin/env bash
# The Android app checks that run without an Android SDK (CI, Linux):
#   1. 16 KB page-alignment checker self-test (check-page-size.sh, used by build-rust.sh);
#   2. the API 28 Animal Sniffer signature, built from android-all 9 (api-signature/, mvn install);
#   3. the app's Kotlin + the generated bindings compile against android-all 14, and every
#      compiled class is checked against the API 28 signature (compile-check/, process-classes);
#   4. the probe: an unguarded API 29 call must FAIL step 3's check (so it cannot silently pass).
# Needs the generated Kotlin (mobile-bindings/scripts/generate-bindings.sh), Java 17, Maven.
# Env: MVN_ARGS (extra Maven flags). Run by mobile-bindings/scripts/jvm-test.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$here/check-page-size.sh" --self-test

# shellcheck disable=SC2086
mvn -B -q ${MVN_ARGS:-} -f "$here/api-signature/pom.xml" install
echo "android/check.sh: API 28 signature built from android-all" >&2

# shellcheck disable=SC2086
mvn -B -q ${MVN_ARGS:-} -f "$here/compile-check/pom.xml" process-classes
echo "android/check.sh: Android sources compile against android-all and use no API above minSdk 28 unguarded" >&2

probe_log=$(mktemp)
trap 'rm -f "$probe_log"' EXIT
# shellcheck disable=SC2086
if mvn -B ${MVN_ARGS:-} -Papi-probe -f "$here/compile-check/pom.xml" process-classes >"$probe_log" 2>&1; then
  echo "android/check.sh: FAILED: the API-level check accepted an unguarded API 29 call (api-probe)" >&2
  exit 1
fi
if ! grep -q "Undefined reference: .*setConfirmationRequired" "$probe_log"; then
  echo "android/check.sh: FAILED: the api-probe build failed, but not on the API-level check:" >&2
  tail -n 40 "$probe_log" >&2
  exit 1
fi
echo "android/check.sh: API-level check is live (it refuses the unguarded API 29 probe)" >&2
