package jp.shomei.app.platform

import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricPrompt
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.view.WindowInsets

/**
 * The app's only calls above minSdk 28, each behind its own `SDK_INT` test (see [SinceApi]).
 * One object per API level, so the runtime verifier on an older phone meets the unknown
 * method references only in these small classes.
 */
@SinceApi(29)
internal object Api29 {
    /**
     * Passive biometrics (face) need an explicit tap to approve: a glance must not sign.
     * API 28 has no such switch (and no passive Class 3 biometrics in BiometricPrompt).
     */
    fun requireConfirmation(builder: BiometricPrompt.Builder) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) builder.setConfirmationRequired(true)
    }
}

@SinceApi(30)
internal object Api30 {
    /** Only Class 3 biometrics may open the prompt (no device credential). True if applied. */
    fun allowStrongBiometricOnly(builder: BiometricPrompt.Builder): Boolean {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.R) return false
        builder.setAllowedAuthenticators(BiometricManager.Authenticators.BIOMETRIC_STRONG)
        return true
    }

    /** Per-operation auth (timeout 0) by a Class 3 biometric only. True if applied. */
    fun perOperationStrongBiometric(builder: KeyGenParameterSpec.Builder): Boolean {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.R) return false
        builder.setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
        return true
    }

    /** System bars, display cutout and keyboard, as one padding; null below API 30. */
    fun safeInsets(insets: WindowInsets): IntArray? {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.R) return null
        val types = WindowInsets.Type.systemBars() or WindowInsets.Type.displayCutout() or WindowInsets.Type.ime()
        val i = insets.getInsets(types)
        return intArrayOf(i.left, i.top, i.right, i.bottom)
    }
}
