package jp.shomei.app

import android.app.Activity
import android.app.Application
import android.os.Bundle
import android.util.Log
import jp.shomei.app.flow.ActiveKeyRecord
import jp.shomei.app.flow.EnrollmentAuthority
import jp.shomei.app.flow.EnrollmentCoordinator
import jp.shomei.app.key.BiometricGate
import jp.shomei.app.key.KeystoreDeviceKey
import jp.shomei.app.key.KeystoreKeyring
import jp.shomei.app.key.NoDeviceKey
import jp.shomei.app.state.EnrollmentStore
import jp.shomei.mobile.Authenticator
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.EnrollmentState
import jp.shomei.mobile.Platform
import jp.shomei.mobile.enrollmentAttestationChallenge
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.MainScope

/**
 * Process-wide objects: the keyring and the live device key, the Rust `Authenticator`, the
 * enrollment coordinator, and the activity in front (BiometricPrompt attaches to it).
 * Platform work only; all protocol decisions are in Rust.
 */
class ShomeiApplication : Application(), Application.ActivityLifecycleCallbacks {
    @Volatile private var resumed: Activity? = null

    lateinit var gate: BiometricGate
        private set
    lateinit var keyring: KeystoreKeyring
        private set
    lateinit var store: EnrollmentStore
        private set
    lateinit var enrollment: EnrollmentCoordinator<KeystoreDeviceKey>
        private set

    /** Work that must outlive a screen (an enrollment in flight survives leaving its screen). */
    val scope = MainScope()

    @Volatile lateinit var authenticator: Authenticator
        private set

    /** The alias of the key the stored enrollment uses (null when not enrolled). */
    @Volatile private var activeAlias: String? = null

    override fun onCreate() {
        super.onCreate()
        registerActivityLifecycleCallbacks(this)
        gate = BiometricGate { resumed }
        keyring = KeystoreKeyring(this, gate)
        store = EnrollmentStore(this)
        authenticator = restore()
        enrollment = EnrollmentCoordinator(keyring, ServerEnrollment(), StoredKeyRecord(), Dispatchers.IO)
        // Keys an enrollment left behind when the process died between generating and
        // committing: nothing refers to them.
        val orphans = enrollment.sweepOrphans()
        if (orphans.isNotEmpty()) Log.i(TAG, "deleted ${orphans.size} unused device key(s)")
    }

    private fun placeholder(): Authenticator = Authenticator(NoDeviceKey)

    private fun restore(): Authenticator {
        val saved = try {
            store.load()
        } catch (e: Exception) {
            Log.w(TAG, "stored enrollment unreadable (${e.javaClass.simpleName}); starting unenrolled")
            null
        }
        if (saved != null && keyring.exists(saved.keyAlias)) {
            try {
                val restored = Authenticator.restore(keyring.open(saved.keyAlias), saved.state)
                activeAlias = saved.keyAlias
                return restored
            } catch (e: AuthenticatorException) {
                Log.w(TAG, "stored enrollment rejected (${e.javaClass.simpleName})")
            }
        }
        return placeholder()
    }

    /** Forgets this server: local state and the device key (after KeyInvalidated, or on request). */
    fun unenroll() {
        authenticator.forget()
        store.clear()
        activeAlias?.let { keyring.delete(it) }
        activeAlias = null
        authenticator = placeholder()
    }

    /** The Rust Authenticator as the enrollment coordinator's server side. */
    private inner class ServerEnrollment : EnrollmentAuthority<KeystoreDeviceKey> {
        override fun isEnrolled(): Boolean = authenticator.enrollment() != null

        /** Core's challenge (docs/protocol.md §3.3), needed before the key exists. */
        override fun attestationChallenge(payload: String): ByteArray = enrollmentAttestationChallenge(payload)

        override suspend fun enroll(
            payload: String,
            activationPassword: String,
            deviceName: String,
            key: KeystoreDeviceKey,
        ): EnrollmentState {
            gate.subtitle = "端末の登録"
            // Core refuses AlreadyEnrolled first, signs the proof with `key`, asks it for its
            // attestation chain, and signs with `key` from now on only if the server accepted.
            return authenticator.enroll(payload, activationPassword, deviceName, Platform.ANDROID, key)
        }
    }

    private inner class StoredKeyRecord : ActiveKeyRecord {
        override fun activeAlias(): String? = activeAlias

        override fun commit(alias: String) {
            val state = authenticator.exportState() ?: throw IllegalStateException("no enrollment state to store")
            store.save(alias, state)
            activeAlias = alias
        }
    }

    override fun onActivityResumed(activity: Activity) { resumed = activity }
    override fun onActivityPaused(activity: Activity) { if (resumed === activity) resumed = null }
    override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) {}
    override fun onActivityStarted(activity: Activity) {}
    override fun onActivityStopped(activity: Activity) {}
    override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) {}
    override fun onActivityDestroyed(activity: Activity) {}

    private companion object {
        const val TAG = "Shomei"
    }
}
