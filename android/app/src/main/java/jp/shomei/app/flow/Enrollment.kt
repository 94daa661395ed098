package jp.shomei.app.flow

import java.util.UUID
import java.util.concurrent.atomic.AtomicBoolean
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.EnrollmentState
import jp.shomei.mobile.PlatformKey
import kotlin.coroutines.cancellation.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.withContext

/**
 * Where device keys live: Android Keystore in the app, java.security in the JVM tests.
 *
 * Keys are addressed by alias. A Keystore entry cannot be renamed, so "swapping" the device
 * key means pointing the [ActiveKeyRecord] at a new alias, never overwriting an alias in use.
 */
interface DeviceKeyring<K : PlatformKey> {
    /**
     * Generates a fresh hardware key under [alias], with [attestationChallenge] in its
     * attestation. Blocking, and slow (StrongBox + attestation take seconds): call it off the
     * main thread.
     */
    fun generate(alias: String, attestationChallenge: ByteArray): K

    /** Deletes the key under [alias]; nothing happens if there is none. */
    fun delete(alias: String)

    /** Every alias this app's keyring holds (to find keys an interrupted enrollment left). */
    fun aliases(): Set<String>
}

/** The enrollment side of the Rust `Authenticator`, as the coordinator needs it. */
interface EnrollmentAuthority<K : PlatformKey> {
    /** True while this phone holds a working enrollment. */
    fun isEnrolled(): Boolean

    /** The 32-byte attestation challenge core derives from the enrollment code. */
    fun attestationChallenge(payload: String): ByteArray

    /**
     * Registers [key] with the server. On success the Authenticator signs with [key] from now
     * on; on failure (typed [AuthenticatorException]) it keeps whatever key it had.
     */
    suspend fun enroll(payload: String, activationPassword: String, deviceName: String, key: K): EnrollmentState
}

/** Persists which alias is the live device key, together with the exported enrollment state. */
interface ActiveKeyRecord {
    /** The alias of the key the stored enrollment uses, or null when nothing is stored. */
    fun activeAlias(): String?

    /** Stores the Authenticator's state (now using the key under [alias]) and [alias], atomically. */
    fun commit(alias: String)
}

/** What came of one tap on "register". */
sealed interface EnrollmentOutcome {
    /** The server accepted the new key; it is now the device key. */
    data class Enrolled(val state: EnrollmentState, val alias: String) : EnrollmentOutcome

    /** This phone is enrolled already: nothing was generated, deleted or sent. */
    data object AlreadyEnrolled : EnrollmentOutcome

    /** Another enrollment is running (a second tap): ignored. */
    data object Busy : EnrollmentOutcome

    /** The platform could not create the key (nothing was sent; the old key is untouched). */
    data class KeyCreationFailed(val cause: Throwable) : EnrollmentOutcome

    /** Core or the server refused; the new key was deleted, the old key is untouched. */
    data class Refused(val error: AuthenticatorException) : EnrollmentOutcome

    /**
     * The server accepted the key but the state could not be stored. The new key is kept
     * (the server and the in-memory Authenticator use it); the app must say so.
     */
    data class NotSaved(val state: EnrollmentState, val alias: String, val cause: Throwable) : EnrollmentOutcome
}

/**
 * One enrollment, in the only order that cannot break a working phone:
 *
 * 1. refuse while enrolled (before any key is touched: an enrollment QR or link plus one tap
 *    must not destroy the key approvals are signed with);
 * 2. refuse a second concurrent run (double tap);
 * 3. generate the new key under a *fresh* alias, off the main thread, with core's challenge;
 * 4. let the Authenticator register it; if that fails, delete the new key and stop;
 * 5. only now commit the new alias with the state, then delete the previous alias.
 *
 * Plain Kotlin (no android.*), so it is unit-tested on the JVM (mobile-bindings/jvm-test).
 */
class EnrollmentCoordinator<K : PlatformKey>(
    private val keyring: DeviceKeyring<K>,
    private val authority: EnrollmentAuthority<K>,
    private val record: ActiveKeyRecord,
    private val keyWork: CoroutineDispatcher,
    private val newAlias: () -> String = { KEY_ALIAS_PREFIX + UUID.randomUUID() },
) {
    private val running = AtomicBoolean(false)

    /** True while an enrollment runs (the screen disables its button meanwhile). */
    val isBusy: Boolean get() = running.get()

    suspend fun enroll(payload: String, activationPassword: String, deviceName: String): EnrollmentOutcome {
        if (authority.isEnrolled()) return EnrollmentOutcome.AlreadyEnrolled
        if (!running.compareAndSet(false, true)) return EnrollmentOutcome.Busy
        try {
            val challenge = try {
                authority.attestationChallenge(payload)
            } catch (e: AuthenticatorException) {
                return EnrollmentOutcome.Refused(e)
            }
            val alias = newAlias()
            val key = try {
                withContext(keyWork) { keyring.generate(alias, challenge) }
            } catch (e: CancellationException) {
                discard(alias)
                throw e
            } catch (e: Exception) {
                discard(alias)
                return EnrollmentOutcome.KeyCreationFailed(e)
            }
            val state = try {
                authority.enroll(payload, activationPassword, deviceName, key)
            } catch (e: AuthenticatorException) {
                discard(alias)
                return if (e is AuthenticatorException.AlreadyEnrolled) {
                    EnrollmentOutcome.AlreadyEnrolled
                } else {
                    EnrollmentOutcome.Refused(e)
                }
            } catch (e: CancellationException) {
                // The server may or may not have the key; the Authenticator did not switch to
                // it, so it is of no use here.
                discard(alias)
                throw e
            }
            val previous = record.activeAlias()
            try {
                record.commit(alias)
            } catch (e: Exception) {
                return EnrollmentOutcome.NotSaved(state, alias, e)
            }
            if (previous != null && previous != alias) discard(previous)
            return EnrollmentOutcome.Enrolled(state, alias)
        } finally {
            running.set(false)
        }
    }

    /**
     * Deletes keys under this app's prefix that the record does not point at: what an
     * enrollment interrupted by a crash or a kill left behind. Call at start-up only (never
     * while an enrollment runs).
     */
    fun sweepOrphans(): List<String> {
        val active = record.activeAlias()
        val orphans = keyring.aliases().filter { it.startsWith(KEY_ALIAS_PREFIX) && it != active }
        orphans.forEach { keyring.delete(it) }
        return orphans
    }

    private suspend fun discard(alias: String) {
        withContext(NonCancellable + keyWork) {
            try {
                keyring.delete(alias)
            } catch (e: Exception) {
                // Left for sweepOrphans at the next start.
            }
        }
    }

    companion object {
        /** Every device key alias starts with this; a fresh suffix per enrollment. */
        const val KEY_ALIAS_PREFIX = "jp.shomei.device-key."
    }
}
