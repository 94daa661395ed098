package jp.shomei.app.key

import android.app.Activity
import android.hardware.biometrics.BiometricPrompt
import android.os.CancellationSignal
import android.os.Handler
import android.os.Looper
import java.security.Signature
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import jp.shomei.app.platform.Api29
import jp.shomei.app.platform.Api30
import jp.shomei.mobile.PlatformKeyException

/**
 * Shows the system BiometricPrompt for one signature and hands back the authorised
 * `Signature` object.
 *
 * Called from a Rust worker thread; the prompt must be built and shown on the main thread,
 * so this class posts there and blocks the *calling* thread on a future. The prompt is bound
 * to the operation through `CryptoObject(signature)`, which is what lets a per-operation
 * Keystore key sign exactly once.
 *
 * @param foreground returns the activity currently in front (the prompt attaches to it).
 */
class BiometricGate(private val foreground: () -> Activity?) {

    private val main = Handler(Looper.getMainLooper())

    /**
     * What the next prompt tells the user they are approving (facility, terminal, number);
     * set by the screen right before it starts the action that signs.
     */
    @Volatile var subtitle: String = ""

    fun authenticate(signature: Signature): Signature {
        val subtitle = this.subtitle
        val result = CompletableFuture<Signature>()
        val cancel = CancellationSignal()
        main.post {
            val activity = foreground()
            if (activity == null || activity.isFinishing) {
                result.completeExceptionally(PlatformKeyException.NotAvailable("no screen to show the biometric prompt on"))
                return@post
            }
            val builder = BiometricPrompt.Builder(activity)
                .setTitle("生体認証で承認 / Approve with biometrics")
                .setSubtitle(subtitle)
                .setDescription("この端末でのログインを承認します。心当たりがなければキャンセルしてください。")
            // API 29+: a face match alone must not sign; API 30+: Class 3 biometrics only
            // (on 28/29 BiometricPrompt offers biometrics only anyway, and the key itself
            // accepts only a strong biometric).
            Api29.requireConfirmation(builder)
            Api30.allowStrongBiometricOnly(builder)
            // A negative button is mandatory when device credentials are not allowed.
            builder.setNegativeButton("キャンセル", activity.mainExecutor) { _, _ ->
                result.completeExceptionally(PlatformKeyException.UserCancelled())
            }
            try {
                show(builder, signature, cancel, activity, result)
            } catch (e: RuntimeException) {
                // e.g. IllegalArgumentException from a builder the platform rejects
                result.completeExceptionally(PlatformKeyException.Failed("prompt: ${e.javaClass.simpleName}"))
            }
        }
        try {
            return result.get()
        } catch (e: ExecutionException) {
            throw (e.cause as? PlatformKeyException)
                ?: PlatformKeyException.Failed(e.cause?.javaClass?.simpleName ?: "prompt failed")
        } catch (e: InterruptedException) {
            cancel.cancel()
            Thread.currentThread().interrupt()
            throw PlatformKeyException.UserCancelled()
        }
    }

    private fun show(
        builder: BiometricPrompt.Builder,
        signature: Signature,
        cancel: CancellationSignal,
        activity: Activity,
        result: CompletableFuture<Signature>,
    ) {
        builder.build().authenticate(
            BiometricPrompt.CryptoObject(signature),
            cancel,
            activity.mainExecutor,
            object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(r: BiometricPrompt.AuthenticationResult) {
                    val authorised = r.cryptoObject?.signature
                    if (authorised == null) {
                        result.completeExceptionally(PlatformKeyException.Failed("prompt returned no signature object"))
                    } else {
                        result.complete(authorised)
                    }
                }

                override fun onAuthenticationError(code: Int, message: CharSequence) {
                    result.completeExceptionally(mapError(code, message))
                }

                // onAuthenticationFailed (a finger not recognised) is not final: the prompt
                // stays up and the user may try again, so it is not an error here.
            },
        )
    }

    companion object {
        fun mapError(code: Int, message: CharSequence): PlatformKeyException = when (code) {
            BiometricPrompt.BIOMETRIC_ERROR_USER_CANCELED,
            BiometricPrompt.BIOMETRIC_ERROR_CANCELED,
            BiometricPrompt.BIOMETRIC_ERROR_TIMEOUT -> PlatformKeyException.UserCancelled()
            BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT,
            BiometricPrompt.BIOMETRIC_ERROR_LOCKOUT_PERMANENT -> PlatformKeyException.BiometricLockout()
            BiometricPrompt.BIOMETRIC_ERROR_HW_NOT_PRESENT,
            BiometricPrompt.BIOMETRIC_ERROR_HW_UNAVAILABLE,
            BiometricPrompt.BIOMETRIC_ERROR_NO_BIOMETRICS,
            BiometricPrompt.BIOMETRIC_ERROR_NO_SPACE -> PlatformKeyException.NotAvailable(message.toString())
            else -> PlatformKeyException.Failed("biometric error $code: $message")
        }
    }
}
