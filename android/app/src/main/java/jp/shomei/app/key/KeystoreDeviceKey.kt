package jp.shomei.app.key

import android.content.pm.PackageManager
import android.content.Context
import android.os.Build
import android.os.Looper
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.security.keystore.UserNotAuthenticatedException
import java.math.BigInteger
import java.security.InvalidKeyException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import jp.shomei.mobile.PlatformKey
import jp.shomei.mobile.PlatformKeyException

/**
 * The device key in Android Keystore, implementing the Rust core's `PlatformKey`.
 *
 * Why it is built this way:
 * - P-256 in secure hardware (StrongBox when the phone has one, else the TEE): the private
 *   key never exists in app memory, so malware that reads the app's files gets nothing.
 * - `setUserAuthenticationRequired(true)` with a validity of 0 seconds and only
 *   BIOMETRIC_STRONG: every single signature needs a fresh Class 3 biometric bound to that
 *   one operation through `BiometricPrompt.CryptoObject`; a device PIN alone cannot approve.
 * - `setInvalidatedByBiometricEnrollment(true)`: someone who learns the PIN and adds their own
 *   fingerprint destroys the key instead of gaining it; the phone must then be enrolled again.
 * - an attestation challenge: the certificate chain proves to the server that the key is
 *   hardware-backed (stored with the enrollment).
 *
 * `sign` is called by Rust on a worker thread and blocks until the user answers the prompt;
 * [BiometricGate] moves to the main thread to show it.
 */
class KeystoreDeviceKey(
    private val context: Context,
    private val gate: BiometricGate,
    private val alias: String = DEFAULT_ALIAS,
) : PlatformKey {

    private val keyStore: KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    /** What the biometric prompt tells the user they are approving (set before approve). */
    @Volatile var promptSubtitle: String = ""

    fun exists(): Boolean = keyStore.containsAlias(alias)

    fun delete() {
        if (keyStore.containsAlias(alias)) keyStore.deleteEntry(alias)
    }

    /**
     * Creates a fresh key (replacing any old one) and returns its attestation certificate
     * chain, DER encoded, leaf first.
     */
    fun create(attestationChallenge: ByteArray): List<ByteArray> {
        delete()
        val wantStrongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
            context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)
        try {
            generate(attestationChallenge, strongBox = wantStrongBox)
        } catch (e: StrongBoxUnavailableException) {
            // Advertised but unusable (seen on some devices): the TEE still keeps the key
            // out of the app's reach.
            generate(attestationChallenge, strongBox = false)
        }
        return keyStore.getCertificateChain(alias)?.map { it.encoded } ?: emptyList()
    }

    private fun generate(challenge: ByteArray, strongBox: Boolean) {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setUserAuthenticationRequired(true)
            .setInvalidatedByBiometricEnrollment(true)
            .setAttestationChallenge(challenge)
            .setIsStrongBoxBacked(strongBox)
            .apply {
                if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                    // 0 = authorise each operation individually (needs a CryptoObject).
                    setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
                } else {
                    // API 28/29: -1 means per-operation authentication by biometric only.
                    @Suppress("DEPRECATION")
                    setUserAuthenticationValidityDurationSeconds(-1)
                }
            }
            .build()
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE).run {
            initialize(spec)
            generateKeyPair()
        }
    }

    override fun publicKey(): ByteArray {
        val cert = keyStore.getCertificate(alias)
            ?: throw PlatformKeyException.NotAvailable("no device key; enroll this phone first")
        val pub = cert.publicKey as? ECPublicKey
            ?: throw PlatformKeyException.Failed("device key is not an EC key")
        return sec1Uncompressed(pub)
    }

    override fun sign(message: ByteArray): ByteArray {
        if (Looper.myLooper() == Looper.getMainLooper()) {
            // Waiting here for a prompt that needs this very thread would deadlock.
            throw PlatformKeyException.Failed("sign must not be called on the main thread")
        }
        val privateKey = keyStore.getKey(alias, null) as? PrivateKey
            ?: throw PlatformKeyException.NotAvailable("no device key; enroll this phone first")
        val signature = Signature.getInstance("SHA256withECDSA")
        try {
            signature.initSign(privateKey)
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw PlatformKeyException.KeyInvalidated()
        } catch (e: UserNotAuthenticatedException) {
            // Cannot happen for per-operation keys, but if it does the prompt below fixes it.
        } catch (e: InvalidKeyException) {
            throw PlatformKeyException.Failed("cannot use the device key: ${e.javaClass.simpleName}")
        }
        val authorised = gate.authenticate(signature, promptSubtitle)
        authorised.update(message)
        return authorised.sign()
    }

    companion object {
        const val ANDROID_KEYSTORE = "AndroidKeyStore"
        const val DEFAULT_ALIAS = "jp.shomei.device-key"

        /** SEC1 uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes). */
        fun sec1Uncompressed(key: ECPublicKey): ByteArray {
            val out = ByteArray(65)
            out[0] = 0x04
            fixed32(key.w.affineX).copyInto(out, 1)
            fixed32(key.w.affineY).copyInto(out, 33)
            return out
        }

        private fun fixed32(v: BigInteger): ByteArray {
            val raw = v.toByteArray()
            val src = if (raw.size > 32) raw.copyOfRange(raw.size - 32, raw.size) else raw
            return ByteArray(32).also { src.copyInto(it, 32 - src.size) }
        }
    }
}
