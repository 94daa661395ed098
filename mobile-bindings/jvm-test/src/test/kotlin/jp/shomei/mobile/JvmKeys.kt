package jp.shomei.mobile

import java.math.BigInteger
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.atomic.AtomicInteger

/**
 * The JVM stand-in for the phone's hardware key: a real P-256 key pair from java.security,
 * signing exactly as Android Keystore does ("SHA256withECDSA", DER output), so the bytes the
 * Rust core sends to the server are the same shape a phone produces.
 */
class JvmEcKey : PlatformKey {
    private val pair: KeyPair = KeyPairGenerator.getInstance("EC").run {
        initialize(ECGenParameterSpec("secp256r1"))
        generateKeyPair()
    }
    val signCount = AtomicInteger()
    /** What core asked for at enrollment (a JVM key has no platform attestation). */
    val attestationRequests: MutableList<AttestationRequest> = java.util.Collections.synchronizedList(mutableListOf())
    /** What `attestation` returns; a test may hand the server evidence to judge. */
    @Volatile var attestationToReturn: PlatformAttestation = PlatformAttestation.None

    override fun publicKey(): ByteArray = sec1Uncompressed(pair.public as ECPublicKey)

    override fun attestation(request: AttestationRequest): PlatformAttestation {
        attestationRequests.add(request)
        return attestationToReturn
    }

    override fun sign(message: ByteArray): ByteArray {
        signCount.incrementAndGet()
        return Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
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
            val raw = v.toByteArray() // big-endian, may carry a sign byte or be short
            val out = ByteArray(32)
            val src = if (raw.size > 32) raw.copyOfRange(raw.size - 32, raw.size) else raw
            src.copyInto(out, 32 - src.size)
            return out
        }
    }
}

/** A key whose biometric prompt the user dismisses: sign throws the typed cancellation. */
class CancellingKey(private val inner: JvmEcKey) : PlatformKey {
    override fun publicKey(): ByteArray = inner.publicKey()
    override fun sign(message: ByteArray): ByteArray = throw PlatformKeyException.UserCancelled()
    override fun attestation(request: AttestationRequest): PlatformAttestation = inner.attestation(request)
}

/** A key whose platform code fails with an exception the bindings never declared. */
class ExplodingKey(private val inner: JvmEcKey) : PlatformKey {
    override fun publicKey(): ByteArray = inner.publicKey()
    override fun sign(message: ByteArray): ByteArray = throw IllegalStateException("keystore exploded")
    override fun attestation(request: AttestationRequest): PlatformAttestation = inner.attestation(request)
}

/** Delegates until told otherwise, so one enrolled key can later refuse. */
class SwitchableKey(private val inner: JvmEcKey) : PlatformKey {
    @Volatile var failure: (() -> Nothing)? = null
    override fun publicKey(): ByteArray = inner.publicKey()
    override fun sign(message: ByteArray): ByteArray {
        failure?.invoke()
        return inner.sign(message)
    }
    override fun attestation(request: AttestationRequest): PlatformAttestation = inner.attestation(request)
}
