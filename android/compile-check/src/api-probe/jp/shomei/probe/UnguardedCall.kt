package jp.shomei.probe

import android.content.Context
import android.hardware.biometrics.BiometricPrompt

/**
 * Deliberately wrong: BiometricPrompt.Builder.setConfirmationRequired is API 29, called here
 * without a guard or @SinceApi. `mvn -Papi-probe process-classes` must fail on it; if it ever
 * passes, the API-level check has stopped working (mobile-bindings/scripts/jvm-test.sh).
 */
fun unguarded(context: Context): BiometricPrompt.Builder =
    BiometricPrompt.Builder(context).setConfirmationRequired(true)
