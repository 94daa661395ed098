package jp.shomei.app.key

import android.content.Context
import android.content.pm.PackageManager
import android.os.Looper
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.UserNotAuthenticatedException
import android.util.Log
import java.math.BigInteger
import java.security.InvalidKeyException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.ProviderException
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import jp.shomei.app.flow.DeviceKeyring
import jp.shomei.app.platform.Api30
import jp.shomei.mobile.AttestationRequest
import jp.shomei.mobile.PlatformAttestation
import jp.shomei.mobile.PlatformKey
import jp.shomei.mobile.PlatformKeyException

/**
 * Android Keystore as the [DeviceKeyring]: creates device keys under fresh aliases (the
 * enrollment coordinator decides which alias is live) and opens existing ones.
 *
 * Why the key is built this way:
 * - P-256 in secure hardware (StrongBox when the phone has one, else the TEE): the private
 *   key never exists in app memory, so malware that reads the app's files gets nothing.
 * - `setUserAuthenticationRequired(true)` with a validity of 0 seconds and only
 *   BIOMETRIC_STRONG: every single signature needs a fresh Class 3 biometric bound to that
 *   one operation through `BiometricPrompt.CryptoObject`; a device PIN alone cannot approve.
 * - `setInvalidatedByBiometricEnrollment(true)`: someone who learns the PIN and adds their own
 *   fingerprint destroys the key instead of gaining it; the phone must then be enrolled again.
 * - `setAttestationChallenge(core's enrollment challenge)`: the certificate chain proves to
 *   the server that this very key is hardware-backed and made for this enrollment.
 */
class KeystoreKeyring(
    private val context: Context,
    private val gate: BiometricGate,
) : DeviceKeyring<KeystoreDeviceKey> {

    private val keyStore: KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    /** The key under [alias] (which may not exist: its calls then report NotAvailable). */
    fun open(alias: String): KeystoreDeviceKey = KeystoreDeviceKey(keyStore, gate, alias)

    fun exists(alias: String): Boolean = keyStore.containsAlias(alias)

    override fun aliases(): Set<String> = keyStore.aliases().toList().toSet()

    override fun delete(alias: String) {
        if (keyStore.containsAlias(alias)) keyStore.deleteEntry(alias)
    }

    /**
     * Generates the key (seconds with StrongBox and attestation). Refuses the main thread:
     * the enrollment coordinator runs it on Dispatchers.IO.
     */
    override fun generate(alias: String, attestationChallenge: ByteArray): KeystoreDeviceKey {
        check(Looper.myLooper() != Looper.getMainLooper()) { "key generation must not run on the main thread" }
        val strongBox = context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)
        if (strongBox) {
            try {
                generate(alias, attestationChallenge, strongBox = true)
            } catch (e: ProviderException) {
                // StrongBoxUnavailableException is one ProviderException; devices that
                // advertise StrongBox also fail with others ("Failed to generate key pair",
                // attestation errors). The TEE still keeps the key out of the app's reach.
                Log.w(TAG, "StrongBox key generation failed (${e.javaClass.simpleName}); using the TEE")
                delete(alias)
                generate(alias, attestationChallenge, strongBox = false)
            }
        } else {
            generate(alias, attestationChallenge, strongBox = false)
        }
        return KeystoreDeviceKey(keyStore, gate, alias, attestationChallenge.copyOf())
    }

    private fun generate(alias: String, challenge: ByteArray, strongBox: Boolean) {
        val builder = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setUserAuthenticationRequired(true)
            .setInvalidatedByBiometricEnrollment(true)
            .setAttestationChallenge(challenge)
            .setIsStrongBoxBacked(strongBox)
        if (!Api30.perOperationStrongBiometric(builder)) {
            // API 28/29: -1 means per-operation authentication by biometric only.
            @Suppress("DEPRECATION")
            builder.setUserAuthenticationValidityDurationSeconds(-1)
        }
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE).run {
            initialize(builder.build())
            generateKeyPair()
        }
    }

    companion object {
        const val ANDROID_KEYSTORE = "AndroidKeyStore"
        private const val TAG = "Shomei"
    }
}

/**
 * One device key in Android Keystore, implementing the Rust core's `PlatformKey`.
 *
 * `sign` is called by Rust on a worker thread and blocks until the user answers the prompt;
 * [BiometricGate] moves to the main thread to show it. Every failure leaves as a typed
 * [PlatformKeyException] whose reason is at most an exception class name: an undeclared
 * exception would reach the user as a whole stack trace through uniffi.
 */
class KeystoreDeviceKey internal constructor(
    private val keyStore: KeyStore,
    private val gate: BiometricGate,
    val alias: String,
    /** The challenge the key was generated with (null for a key opened from storage). */
    private val attestationChallenge: ByteArray? = null,
) : PlatformKey {

    fun exists(): Boolean = keyStore.containsAlias(alias)

    /** The Keystore attestation chain of this key, DER, leaf first (empty if none). */
    fun certificateChain(): List<ByteArray> = keyStore.getCertificateChain(alias)?.map { it.encoded } ?: emptyList()

    /** The challenge this key was generated with, if it was generated in this process. */
    fun generatedWith(): ByteArray? = attestationChallenge?.copyOf()

    override fun publicKey(): ByteArray = typed {
        val cert = keyStore.getCertificate(alias)
            ?: throw PlatformKeyException.NotAvailable("no device key; enroll this phone first")
        val pub = cert.publicKey as? ECPublicKey
            ?: throw PlatformKeyException.Failed("device key is not an EC key")
        sec1Uncompressed(pub)
    }

    override fun sign(message: ByteArray): ByteArray = typed {
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
        val authorised = gate.authenticate(signature)
        authorised.update(message)
        authorised.sign()
    }

    /**
     * Issue 9: the Keystore attestation chain of this key (DER, leaf first), whose leaf
     * carries the challenge the key was generated with. Core asks with the same challenge it
     * derived for `setAttestationChallenge`; a different one means this key was made for
     * another enrollment and is refused.
     */
    override fun attestation(request: AttestationRequest): PlatformAttestation = typed {
        val generatedWith = attestationChallenge
            ?: throw PlatformKeyException.Failed("the key was not generated for this enrollment")
        if (!java.security.MessageDigest.isEqual(generatedWith, request.challenge)) {
            throw PlatformKeyException.Failed("attestation challenge differs from the key's")
        }
        val chain = certificateChain()
        if (chain.isEmpty()) throw PlatformKeyException.NotAvailable("the Keystore returned no attestation chain")
        PlatformAttestation.AndroidKeyChain(chain)
    }

    companion object {
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

        /** Runs [block]; any exception that is not already typed becomes `Failed(class name)`. */
        internal inline fun <T> typed(block: () -> T): T = try {
            block()
        } catch (e: PlatformKeyException) {
            throw e
        } catch (e: Exception) {
            throw PlatformKeyException.Failed(e.javaClass.simpleName)
        }
    }
}

/** The key of a phone that is not enrolled: every use says so. */
object NoDeviceKey : PlatformKey {
    override fun publicKey(): ByteArray = throw PlatformKeyException.NotAvailable("no device key; enroll this phone first")
    override fun sign(message: ByteArray): ByteArray = throw PlatformKeyException.NotAvailable("no device key; enroll this phone first")
    override fun attestation(request: AttestationRequest): PlatformAttestation = PlatformAttestation.None
}
