package jp.shomei.app.state

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.io.File
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Persists which device key alias is live together with the Authenticator's exported
 * enrollment state (server origin, device id,
 * practitioner, and the device *bearer token*) encrypted with an AES-256-GCM key that never
 * leaves Android Keystore.
 *
 * The state must survive restarts without a biometric (listing grants should not prompt), so
 * this key has no user-authentication requirement; what protects approvals is the separate
 * biometric-gated signing key. The file sits in no-backup storage so the token is not copied
 * to cloud backups or another phone.
 */
class EnrollmentStore(context: Context) {
    private val file = File(context.noBackupFilesDir, "enrollment.bin")
    private val keyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    private fun key(): SecretKey {
        (keyStore.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore").run {
            init(spec)
            generateKey()
        }
    }

    /** What is stored: the live key's alias and the Authenticator's state. */
    data class Stored(val keyAlias: String, val state: String)

    /**
     * Stores [keyAlias] and [state] in one file written atomically, so the alias and the
     * state that uses it never disagree (the enrollment "swap" is this write).
     */
    fun save(keyAlias: String, state: String) {
        require('\n' !in keyAlias) { "alias must be one line" }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        val plain = "$FORMAT\n$keyAlias\n$state"
        val sealed = cipher.doFinal(plain.toByteArray(Charsets.UTF_8))
        val iv = cipher.iv
        val tmp = File(file.parentFile, file.name + ".tmp")
        tmp.writeBytes(byteArrayOf(iv.size.toByte()) + iv + sealed)
        // rename is atomic: a crash mid-write never leaves a half-written enrollment behind.
        if (!tmp.renameTo(file)) throw java.io.IOException("cannot store enrollment")
    }

    /** The stored enrollment, or null; throws if the file is unreadable or of another format. */
    fun load(): Stored? {
        if (!file.exists()) return null
        val bytes = file.readBytes()
        val ivLen = bytes[0].toInt()
        val iv = bytes.copyOfRange(1, 1 + ivLen)
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, iv))
        val plain = String(cipher.doFinal(bytes, 1 + ivLen, bytes.size - 1 - ivLen), Charsets.UTF_8)
        val parts = plain.split('\n', limit = 3)
        if (parts.size != 3 || parts[0] != FORMAT) throw java.io.IOException("unknown enrollment file format")
        return Stored(parts[1], parts[2])
    }

    fun clear() {
        file.delete()
    }

    private companion object {
        const val ALIAS = "jp.shomei.state-key"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val FORMAT = "shomei-enrollment-v2"
    }
}
