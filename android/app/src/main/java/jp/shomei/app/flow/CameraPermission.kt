package jp.shomei.app.flow

/**
 * When the scan screen asks for the camera: once. After a denial it explains and offers the
 * system settings instead of asking again on every `onResume` (the permission dialog itself
 * pauses and resumes the activity, so asking in `onResume` loops after a denial).
 *
 * Plain Kotlin; the activity feeds it `onResume` and the permission result and keeps
 * [asked] in its saved state. JVM-tested in mobile-bindings/jvm-test.
 */
class CameraPermission(asked: Boolean = false) {
    enum class Step {
        /** Permission granted: start the camera. */
        START_CAMERA,

        /** Show the system permission dialog (first time only). */
        REQUEST,

        /** The dialog is up; do nothing until its result arrives. */
        WAIT,

        /** Denied: explain and offer the app's settings page; do not ask again. */
        OFFER_SETTINGS,
    }

    /** Whether the dialog was ever shown on this screen (saved across recreation). */
    var asked: Boolean = asked
        private set
    private var requestInFlight = false

    fun onResume(granted: Boolean): Step = when {
        granted -> Step.START_CAMERA
        requestInFlight -> Step.WAIT
        !asked -> {
            asked = true
            requestInFlight = true
            Step.REQUEST
        }
        else -> Step.OFFER_SETTINGS
    }

    fun onResult(granted: Boolean): Step {
        requestInFlight = false
        return if (granted) Step.START_CAMERA else Step.OFFER_SETTINGS
    }
}
