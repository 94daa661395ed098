package jp.shomei.app

import android.app.Activity
import android.app.Application
import android.os.Bundle
import android.util.Log
import jp.shomei.app.key.BiometricGate
import jp.shomei.app.key.KeystoreDeviceKey
import jp.shomei.app.state.EnrollmentStore
import jp.shomei.mobile.Authenticator
import jp.shomei.mobile.AuthenticatorException

/**
 * Process-wide objects: the device key, the Rust `Authenticator`, and the activity in front
 * (BiometricPrompt attaches to it). Platform work only; all protocol decisions are in Rust.
 */
class ShomeiApplication : Application(), Application.ActivityLifecycleCallbacks {
    @Volatile private var resumed: Activity? = null

    lateinit var deviceKey: KeystoreDeviceKey
        private set
    lateinit var store: EnrollmentStore
        private set
    lateinit var authenticator: Authenticator
        private set

    override fun onCreate() {
        super.onCreate()
        registerActivityLifecycleCallbacks(this)
        deviceKey = KeystoreDeviceKey(this, BiometricGate { resumed })
        store = EnrollmentStore(this)
        authenticator = restore()
    }

    private fun restore(): Authenticator {
        val saved = try {
            store.load()
        } catch (e: Exception) {
            Log.w(TAG, "stored enrollment unreadable (${e.javaClass.simpleName}); starting unenrolled")
            null
        }
        if (saved != null && deviceKey.exists()) {
            try {
                return Authenticator.restore(deviceKey, saved)
            } catch (e: AuthenticatorException) {
                Log.w(TAG, "stored enrollment rejected: ${e.message}")
            }
        }
        return Authenticator(deviceKey)
    }

    /** Persists the authenticator's state after enrollment. */
    fun persist() {
        authenticator.exportState()?.let { store.save(it) } ?: store.clear()
    }

    /** Forgets this server: local state and the device key (used after a KeyInvalidated). */
    fun unenroll() {
        authenticator.forget()
        store.clear()
        deviceKey.delete()
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
